/**
 * scripts/test-each-file.ts leaves nothing behind: what a file leaves (in its
 * group, or setsid'd into another session) is killed when the file ends (and
 * the file fails), when it runs past the per-file timeout, and when the runner
 * itself is SIGKILLed.
 * The closing line keeps its format; a failed file's output is repeated
 * before it. "Left" means still running: a zombie waits for its adopter
 * (under the suite's own runner, the file's guard reaps it when this file
 * ends).
 */
import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isLive } from "../helpers/processes.ts";
import { scaled, TEST_SCALE, waitUntil } from "../helpers/time.ts";

const RUNNER = join(import.meta.dir, "../../scripts/test-each-file.ts");
const LEAKY = join(import.meta.dir, "../fixtures/suite/leaky-test.ts");
const dir = mkdtempSync(join(tmpdir(), "orphan-reaper-runner-"));
const pidsFile = join(dir, "pids.json");
let runner: ReturnType<typeof Bun.spawn> | undefined;

afterEach(async () => {
  runner?.kill("SIGKILL");
  await runner?.exited;
  rmSync(pidsFile, { force: true });
});

function startRunner(env: Record<string, string> = {}) {
  runner = Bun.spawn([process.execPath, RUNNER, LEAKY], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, LEAKY_PIDS_FILE: pidsFile, ...env },
  });
  return runner as Bun.Subprocess<"ignore", "pipe", "pipe">;
}

async function outputOf(run: Bun.Subprocess<"ignore", "pipe", "pipe">) {
  const [stdout, stderr, exitCode] = await Promise.all([new Response(run.stdout).text(), new Response(run.stderr).text(), run.exited]);
  return { stdout, output: stdout + stderr, exitCode };
}

function startedPids(): { test: number; guard: number; leaked: number[] } {
  return JSON.parse(readFileSync(pidsFile, "utf8"));
}

test("a file whose tests pass but leave processes behind fails, and what it left is killed; the closing line keeps its format", async () => {
  const { stdout, output, exitCode } = await outputOf(startRunner());
  expect(exitCode).toBe(1);
  expect(output).toContain("killed 2 process(es) it left behind; a test file must leave none: failed");
  expect(stdout).toContain("failed files:\n  " + LEAKY + " (exit 1)");
  expect(stdout).toMatch(/\n1 passed, 0 failed, 0 skipped\n$/);
  expect(startedPids().leaked.filter(isLive)).toEqual([]);
}, scaled(60_000));

test("a file past its per-file timeout is killed with all it started, and fails", async () => {
  // 300 s per file at scale 1: 0.05 of the scale here is 15 s.
  const { stdout, output, exitCode } = await outputOf(startRunner({ LEAKY_HANG: "1", ORPHAN_REAPER_TEST_SCALE: String(0.05 * TEST_SCALE) }));
  expect(exitCode).toBe(1);
  expect(output).toMatch(/timed out after \d+ ms; killing what it started/);
  expect(stdout).toContain("failed files:\n  " + LEAKY + " (exit 1)");
  // Why, repeated at the end: a CI log may keep only its tail.
  expect(stdout).toMatch(/\nwhat \S+leaky-test\.ts printed, passing tests left out:\n[^]*timed out after \d+ ms[^]*\n\nfailed files:/);
  expect(stdout).toMatch(/\n0 passed, 0 failed, 0 skipped\n$/);
  const { test, leaked } = startedPids();
  expect([test, ...leaked].filter(isLive)).toEqual([]);
}, scaled(90_000));

test("when the runner is SIGKILLed, its guard kills the file and everything it started", async () => {
  const run = startRunner({ LEAKY_HANG: "1" });
  expect(await waitUntil(() => existsSync(pidsFile) && readFileSync(pidsFile, "utf8") !== "", 30_000)).toBe(true);
  const { test, guard, leaked } = startedPids();
  expect([guard, test, ...leaked].every(isLive)).toBe(true);
  run.kill("SIGKILL");
  await run.exited;
  expect(await waitUntil(() => ![guard, test, ...leaked].some(isLive), 15_000)).toBe(true);
}, scaled(60_000));
