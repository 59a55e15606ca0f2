/**
 * Start-up in fresh processes: as PID 1 of a new PID namespace (the container
 * case), the ways it declines to start (off, with one reason, no throw), and
 * start-up as a transaction: whatever fails, nothing it did stays behind.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UndoStack } from "../src/startup.ts";
import { PID1_PREFIX } from "./helpers/cli.ts";
import { capturingLogger } from "./helpers/logs.ts";
import { hasCommand } from "./helpers/processes.ts";
import { scaled } from "./helpers/time.ts";

const reaperRun = `${import.meta.dir}/fixtures/reaper-run.ts`;
const startupRun = `${import.meta.dir}/fixtures/startup-run.ts`;
const emptyDir = mkdtempSync(join(tmpdir(), "orphan-reaper-empty-path-"));
afterAll(() => rmSync(emptyDir, { recursive: true, force: true }));

function lastJsonLine(run: { stdout: Buffer; stderr: Buffer; exitCode: number | null }) {
  const stdout = run.stdout.toString().trim();
  if (run.exitCode !== 0 || !stdout) throw new Error(`fixture failed (${run.exitCode}): ${run.stderr}`);
  return JSON.parse(stdout.split("\n").at(-1)!);
}

function runFixture(options: object, prefix: readonly string[] = []) {
  return lastJsonLine(Bun.spawnSync([...prefix, process.execPath, reaperRun, JSON.stringify(options)]));
}

function runStartup(setup: { options: object; failSweepTimer?: boolean }, env: Record<string, string> = {}) {
  const run = Bun.spawnSync([process.execPath, startupRun, JSON.stringify(setup)], { env: { ...process.env, ...env } });
  return lastJsonLine(run);
}

const unshareMissing = hasCommand("unshare") ? undefined : "unshare (util-linux) is not installed";
if (unshareMissing) console.warn(`skipping PID 1 tests: ${unshareMissing}`);

test.skipIf(!!unshareMissing)("as PID 1 of a new PID namespace, orphans are reaped and Bun.spawn and child_process children keep their codes", () => {
  for (const source of ["sigchld", "sweep"]) {
    const result = runFixture({ source, sweepIntervalMs: 200 }, PID1_PREFIX);
    expect(result).toMatchObject({ pid: 1, role: "pid1", source, reaped: 100, zombiesLeft: 0, exitCodesTrue: true });
  }
}, scaled(60_000));

// PID1_PREFIX without --mount-proc: the /proc of the parent namespace names other processes.
test.skipIf(!!unshareMissing)("as PID 1 of a new PID namespace that kept its parent's /proc: off, with the reason; the runtime's children keep their codes", () => {
  const result = runFixture({}, PID1_PREFIX.filter((flag) => flag !== "--mount-proc"));
  expect(result).toMatchObject({ pid: 1, source: "off", reaped: 0, exitCodesTrue: true });
  expect(result.notChosen.off).toMatch(/^\/proc is another PID namespace's \(it names this process \d+, not 1\)/);
}, scaled(60_000));

test("subreaper: false in a process that is neither PID 1 nor a subreaper: off at warn, with the reason", () => {
  const { stats, lines, after } = runStartup({ options: { subreaper: false } });
  expect(stats.source).toBe("off");
  expect(stats.notChosen.off).toMatch(/neither PID 1 nor a child subreaper/);
  expect(lines).toEqual([expect.objectContaining({ level: 40, source: "off" })]);
  expect(after.subreaper).toBe(false);
}, scaled(30_000));

test("enabled: false: off at info, with the reason", () => {
  const { stats, lines } = runStartup({ options: { enabled: false } });
  expect(stats).toMatchObject({ source: "off", notChosen: { off: "disabled by the enabled option" } });
  expect(lines).toEqual([expect.objectContaining({ level: 30, msg: "orphan reaper off: disabled by the enabled option" })]);
}, scaled(30_000));

test("PATH set to an empty directory: an event-driven source serves, and stop() leaves nothing behind", () => {
  const { stats, before, during, after } = runStartup({ options: {} }, { PATH: emptyDir });
  expect(["netlink", "sigchld"]).toContain(stats.source);
  expect(during.subreaper).toBe(true);
  expect(after).toEqual(before);
}, scaled(30_000));

test("a step of start-up that throws: off at warn with the cause, and every earlier step undone", () => {
  const { stats, lines, before, after } = runStartup({ options: { sweepIntervalMs: 777_777 }, failSweepTimer: true });
  expect(stats.source).toBe("off");
  expect(stats.notChosen.off).toBe("cannot start: injected fault: no timer for the sweep");
  expect(lines.filter((line: { level: number }) => line.level >= 40)).toEqual([
    expect.objectContaining({ level: 40, source: "off", reason: "cannot start: injected fault: no timer for the sweep" }),
  ]);
  // The subreaper flag, the sources' fds and the SIGCHLD listener were taken before the fault.
  expect(before.subreaper).toBe(false);
  expect(after).toEqual(before);
}, scaled(30_000));

test("the undo stack: last step first, each once, and an undo that throws neither stops the others nor goes unsaid", async () => {
  const { logger, lines } = capturingLogger("info");
  const undone: string[] = [];
  const undo = new UndoStack(logger);
  undo.push("first", () => void undone.push("first"));
  undo.push("second", () => {
    throw new Error("cannot");
  });
  undo.push("third", async () => void undone.push("third"));
  await Promise.all([undo.run(), undo.run()]);
  await undo.run();
  expect(undone).toEqual(["third", "first"]);
  expect(lines).toEqual([expect.objectContaining({ level: 40, step: "second", msg: "orphan reaper could not undo: second" })]);
});
