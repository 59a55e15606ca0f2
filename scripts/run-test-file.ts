/**
 * Runs one test file and leaves nothing behind. Usage (from the runner,
 * scripts/test-each-file.ts): bun scripts/run-test-file.ts <file>
 *
 * - We are a child subreaper, so whatever the file orphans comes to us.
 * - The file runs in a session (and process group) of its own, with a
 *   per-file timeout scaled by ORPHAN_REAPER_TEST_SCALE: a *.test.ts file as
 *   `bun test` with bun's per-test timeout (scaled too); a *.node.mjs file
 *   (test/node/, the Node half) as `node --test` under the node named by
 *   $ORPHAN_REAPER_TEST_NODE (scripts/test-node.mjs passes its own), else
 *   the one on PATH. Node 20's --test-timeout bounds the whole file, not
 *   each test, so each Node test sets its own scaled timeout.
 * - When the file ends or times out, or our stdin closes (the runner holds its
 *   other end: it died or gave up), or we get SIGINT/SIGTERM, its group is
 *   killed, then every descendant left, and the adopted zombies are reaped.
 * Exits with the file's exit code (1 when it was killed). A file that left a
 * process behind fails (exit 1) even if its tests passed: each of its tests
 * must end what it started (test/suite/runner.test.ts pins that).
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

const isNodeFile = file.endsWith(".node.mjs");
const [command, ...args] = isNodeFile
  ? [process.env.ORPHAN_REAPER_TEST_NODE || "node", "--test", "--test-reporter=spec", file]
  : [process.execPath, "test", "--timeout", String(scaled(PER_TEST_TIMEOUT_MS)), file];
const test = spawn(command!, args, {
  detached: true,
  stdio: ["ignore", "inherit", "inherit"],
});
const testEnded = new Promise<number>((resolve) => {
  test.on("exit", (code) => resolve(code ?? 1));
  test.on("error", (error) => {
    console.error(`cannot start ${[command, ...args].join(" ")}: ${error.message}`);
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
if (killed > 0) console.error(`${file}: killed ${killed} process(es) it left behind; a test file must leave none: failed`);
process.exit(killed > 0 && exitCode === 0 ? 1 : exitCode);
