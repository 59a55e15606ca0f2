/**
 * Runs every test file (or the files named as arguments: scripts/test-node.mjs
 * names test/node/*.node.mjs, which run under node --test) in a process of its
 * own. The tests change process-wide kernel state (child subreaper flag,
 * adopted orphans, SIGCHLD listeners, netlink sockets), which bun test would
 * otherwise share between files. Each file runs under scripts/run-test-file.ts,
 * which gives it a process group, a timeout and a clean-up of everything it
 * left behind. Prints bun's own output, then one closing line with the totals.
 *
 * Nothing it started outlives it: each run-test-file holds a pipe from us and
 * cleans up when it closes (we died, even by SIGKILL); we are a subreaper and
 * clean up after each file; and we stop when our parent or its parent ends
 * (npm runs us through `sh -c`, and sh outlives a SIGKILLed npm).
 */
import { loadLibc } from "../src/runtime/index.ts";
import { killDescendants, whenAncestorEnds } from "./descendants.ts";

const RUN_FILE = new URL("./run-test-file.ts", import.meta.url).pathname;
/** A failed file's lines repeated at the end, where a CI log that keeps only its tail still shows why. */
const FAILURE_LINES_REPEATED = 60;

const named = process.argv.slice(2);
const files = named.length > 0 ? named : [...new Bun.Glob("test/**/*.test.ts").scanSync(".")].sort();
const totals = { passed: 0, failed: 0, skipped: 0 };
const failedFiles: string[] = [];
const failureReports: string[] = [];
let current: Bun.Subprocess<"pipe", "pipe", "pipe"> | undefined;
let stopping = false;

loadLibc().setChildSubreaper(true);

/** Closing the pipe tells the file's guard to kill what it runs; then we end. */
function stop(why: string): void {
  if (stopping) return;
  stopping = true;
  console.error(`\ntest run stopped: ${why}`);
  void current?.stdin.end();
  void (current?.exited ?? Promise.resolve()).then(() => killDescendants()).then(() => process.exit(1));
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => stop(`got ${signal}`));
whenAncestorEnds((pid) => stop(`its ancestor ${pid} is gone`));

for (const file of files) {
  if (stopping) break;
  current = Bun.spawn([process.execPath, RUN_FILE, file], { stdin: "pipe", stdout: "pipe", stderr: "pipe", env: process.env });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(current.stdout).text(), new Response(current.stderr).text(), current.exited]);
  await killDescendants(); // what its guard could not (it was killed itself)
  process.stdout.write(stdout);
  process.stderr.write(stderr);
  const counted = countsOf(stderr + stdout);
  totals.passed += counted.passed;
  totals.failed += counted.failed;
  totals.skipped += counted.skipped;
  if (exitCode !== 0) {
    failedFiles.push(`${file} (exit ${exitCode})`);
    failureReports.push(failureReport(file, stdout + stderr));
  }
}
if (stopping) await new Promise(() => undefined); // stop() exits

if (failedFiles.length > 0) console.log(`\n${failureReports.join("\n\n")}\n\nfailed files:\n  ${failedFiles.join("\n  ")}`);
console.log(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(failedFiles.length > 0 || totals.failed > 0 || totals.passed === 0 ? 1 : 0);

/**
 * A file's totals from bun test's summary (" 3 pass") or from node --test's
 * spec reporter ("ℹ pass 3"; its cancelled tests, e.g. timed out, count as failed).
 */
function countsOf(output: string): typeof totals {
  const bun = (word: string) => Number(new RegExp(`^\\s*(\\d+) ${word}$`, "m").exec(output)?.[1] ?? 0);
  const node = (word: string) => Number(new RegExp(`^ℹ ${word} (\\d+)$`, "m").exec(output)?.[1] ?? 0);
  return { passed: bun("pass") + node("pass"), failed: bun("fail") + node("fail") + node("cancelled"), skipped: bun("skip") + node("skipped") };
}

/** What a failed file printed, but for its passing tests (bun's "(pass)", node's "✔") and blank lines: its errors and what it logged. */
function failureReport(file: string, output: string): string {
  const lines = output.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("(pass)") && !/^\s*✔ /.test(line));
  return `what ${file} printed, passing tests left out:\n${lines.slice(-FAILURE_LINES_REPEATED).join("\n")}`;
}
