/**
 * Runs one test file and leaves nothing behind. Usage (from the runner,
 * scripts/test-each-file.ts): bun scripts/run-test-file.ts <file>
 *
 * - We are a child subreaper, so whatever the file orphans comes to us.
 * - The file runs as `bun test` in a session (and process group) of its own,
 *   with bun's per-test timeout and a per-file timeout, both scaled by
 *   ORPHAN_REAPER_TEST_SCALE.
 * - When the file ends or times out, or our stdin closes (the runner holds its
 *   other end: it died or gave up), or we get SIGINT/SIGTERM, its group is
 *   killed, then every descendant left, and the adopted zombies are reaped.
 * Exits with the file's exit code (1 when it was killed).
 */
import { spawn } from "node:child_process";
import { loadLibc } from "../src/runtime/index.ts";
import { scaled } from "../test/helpers/time.ts";
import { killDescendants } from "./descendants.ts";

/** bun's own default per-test timeout, before scaling. */
const PER_TEST_TIMEOUT_MS = 5_000;
const PER_FILE_TIMEOUT_MS = 300_000;

const file = process.argv[2];
if (!file) {
  console.error("usage: bun scripts/run-test-file.ts <test file>");
  process.exit(2);
}
loadLibc().setChildSubreaper(true);

const test = spawn(process.execPath, ["test", "--timeout", String(scaled(PER_TEST_TIMEOUT_MS)), file], {
  detached: true,
  stdio: ["ignore", "inherit", "inherit"],
});
const testEnded = new Promise<number>((resolve) => {
  test.on("exit", (code) => resolve(code ?? 1));
  test.on("error", (error) => {
    console.error(`cannot start bun test ${file}: ${error.message}`);
    resolve(1);
  });
});

/** Kills the file's process group; its exit then ends the run. */
function stopTest(why: string): void {
  console.error(`\n${file}: ${why}; killing what it started`);
  try {
    process.kill(-test.pid!, "SIGKILL");
  } catch {
    // the group is empty already
  }
}

const timeout = setTimeout(() => stopTest(`timed out after ${scaled(PER_FILE_TIMEOUT_MS)} ms`), scaled(PER_FILE_TIMEOUT_MS));
process.stdin.on("end", () => stopTest("the runner is gone"));
process.stdin.on("error", () => stopTest("the runner is gone"));
process.stdin.resume();
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => stopTest(`got ${signal}`));

const exitCode = await testEnded;
clearTimeout(timeout);
// Its group, and whatever left it (setsid), descend from it: all are below us now.
const killed = await killDescendants();
if (killed > 0) console.error(`${file}: killed ${killed} process(es) it left behind`);
process.exit(exitCode);
