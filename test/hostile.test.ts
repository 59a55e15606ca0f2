/**
 * Hostile conditions on real processes, each in a daemon of its own: /proc
 * unmounted under a running reaper, and a full fd table while 1000 orphans
 * exit. Nothing is reaped blind, nothing crashes, the problem shows in
 * stats(), errors are logged a bounded number of times, and reaping resumes
 * once the condition ends.
 */
import { afterEach, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { killDescendants, killIfAlive, liveDescendants } from "../scripts/descendants.ts";
import { loadLibc } from "../src/runtime/index.ts";
import { logLines, unshareUnavailable } from "./helpers/cli.ts";
import { scaled } from "./helpers/time.ts";

const FIXTURE = new URL("./fixtures/hostile-daemon.ts", import.meta.url).pathname;
const noMountNamespace = unshareUnavailable(["-m", "--propagation", "private"]);
if (noMountNamespace) console.warn(`skipping the /proc test: ${noMountNamespace}`);
const prlimit = Bun.which("prlimit");
if (!prlimit) console.warn("skipping the EMFILE test: prlimit (util-linux) is not installed");

// The fixture's orphans (up to 1000 `sleep 600`) are its children while it
// runs; if it dies first (bun test kills it when a test times out), they come
// to us, the nearest subreaper, where liveDescendants finds them.
const libc = loadLibc();
libc.setChildSubreaper(true);

let fixture: Subprocess | undefined;

/**
 * Kills the fixture's process group (its orphans are in it) and whatever else
 * lives below us, and reaps the orphans that came to us. Runs after every
 * test, passed, failed or timed out (bun test runs no finally of a test it
 * timed out).
 */
async function killFixture(): Promise<void> {
  const child = fixture;
  fixture = undefined;
  if (!child) return;
  // Not reaped yet: its PID, and so its group's, names nothing else.
  if (child.exitCode === null && child.signalCode === null) killIfAlive(-child.pid);
  // The fixture's zombie, if any, is Bun's to reap.
  await killDescendants(child.pid);
  const left = liveDescendants();
  if (left.length > 0) throw new Error(`still alive after the fixture was killed: ${left.join(" ")}`);
}

afterEach(killFixture);

async function runFixture(prefix: string[], mode: string) {
  // A group of its own (prlimit and unshare exec the fixture: the group is its).
  const child = Bun.spawn([...prefix, process.execPath, FIXTURE, mode], { stdout: "pipe", stderr: "pipe", detached: true });
  fixture = child;
  try {
    const [stdout, stderr, exitCode] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    return { exitCode, result: JSON.parse(stdout.trim().split("\n").at(-1) || "{}"), logs: logLines(stderr), stderr };
  } finally {
    await killFixture();
  }
}

test.skipIf(Boolean(noMountNamespace))("/proc unmounted: nothing reaped, no crash, the problem in stats(); mounted again: every orphan reaped", async () => {
  const { exitCode, result, logs, stderr } = await runFixture(["unshare", "-m", "--propagation", "private"], "no-proc");
  expect(exitCode, stderr).toBe(0);
  expect(result.source).toBe("sigchld");
  expect(result.umounted).toBe(true);
  expect(result.runtimeChildSignal).toBe("SIGKILL");
  expect(result.whileNoProc.reaped).toBe(0);
  expect(result.whileNoProc.failures).toBeGreaterThan(0);
  expect(result.whileNoProc.problem).toMatch(/reaping failed/);
  expect(result.allReapedAfter).toBe(true);
  expect(result.problemAfter).toBeNull();
  const errors = logs.filter((line) => line.msg === "orphan reaping failed; looking again shortly");
  expect(errors.length).toBeGreaterThanOrEqual(1);
  expect(errors.length).toBeLessThanOrEqual(2);
}, scaled(120_000));

test.skipIf(!prlimit)("a full fd table while 1000 orphans exit: a bounded number of log lines, then every orphan reaped", async () => {
  const { exitCode, result, logs, stderr } = await runFixture([prlimit!, "--nofile=256"], "emfile");
  expect(exitCode, stderr).toBe(0);
  expect(result.filled).toBe("EMFILE");
  expect(result.whileFull.reaped).toBeLessThan(1000);
  expect(result.whileFull.failures).toBeGreaterThan(0);
  expect(result.whileFull.problem).toMatch(/EMFILE/);
  expect(result.allReapedAfter).toBe(true);
  // One line per 10 s at most, each saying how many it stood for.
  const errors = logs.filter((line) => line.level === 50);
  expect(errors.length).toBeGreaterThanOrEqual(1);
  expect(errors.length).toBeLessThanOrEqual(3);
}, scaled(180_000));

test.skipIf(!prlimit)("a full fd table while a zombie waits out its grace: a pass a second at most, then it is reaped", async () => {
  const { exitCode, result, stderr } = await runFixture([prlimit!, "--nofile=256"], "emfile-pending");
  expect(exitCode, stderr).toBe(0);
  expect(result.filled).toBe("EMFILE");
  expect(result.whileFull.reaped).toBe(0);
  expect(result.whileFull.problem).toMatch(/EMFILE/);
  // The fixture's window is 3 s of the reaper's clock after the first failure; FAILURE_RETRY_MS is 1 s.
  expect(result.whileFull.failures).toBeGreaterThan(0);
  expect(result.whileFull.failures).toBeLessThanOrEqual(5);
  expect(result.allReapedAfter).toBe(true);
}, scaled(120_000));
