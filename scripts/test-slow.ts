/**
 * `npm run test:slow`: the suite as a slow, busy machine runs it. Everything
 * is pinned to CPU 0 (taskset), with a busy loop on the same CPU, so the
 * tests get about half of one core. The busy loop ends when the suite does,
 * whatever happens: it is killed in `finally`, and it checks (shell
 * builtins, no fork) that we are still its parent, so it ends by itself if we
 * are killed. Arguments are passed to scripts/test-each-file.ts (e.g. files).
 */
import { spawn } from "node:child_process";
import { whenAncestorEnds } from "./descendants.ts";

const CPU = "0";

if (!Bun.which("taskset")) {
  console.error("test:slow needs taskset (util-linux), which is not installed");
  process.exit(1);
}

// Spins while its parent (taskset exec'd into sh, so: us) is still its parent; reads its own stat with builtins only.
const spinWhileParentLives = 'while read -r stat < /proc/$$/stat && set -- $stat && [ "$4" = "$PARENT" ]; do :; done';
const busyLoop = spawn("taskset", ["-c", CPU, "sh", "-c", spinWhileParentLives], {
  stdio: "ignore",
  env: { ...process.env, PARENT: String(process.pid) },
});
let exitCode = 1;
try {
  const suite = spawn("taskset", ["-c", CPU, process.execPath, "scripts/test-each-file.ts", ...process.argv.slice(2)], { stdio: "inherit" });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => suite.kill(signal));
  whenAncestorEnds(() => suite.kill("SIGTERM")); // the runner then stops and cleans up
  exitCode = await new Promise<number>((resolve) => suite.on("exit", (code) => resolve(code ?? 1)));
} finally {
  busyLoop.kill("SIGKILL");
}
process.exit(exitCode);
