/**
 * Start-up in fresh processes: as PID 1 of a new PID namespace (the container
 * case), and the ways it declines to start (off, with one reason, no throw).
 */
import { expect, test } from "bun:test";
import { hasCommand } from "./helpers/processes.ts";
import { scaled } from "./helpers/time.ts";

const fixture = `${import.meta.dir}/fixtures/reaper-run.ts`;

function runFixture(options: object, prefix: string[] = []) {
  const run = Bun.spawnSync([...prefix, process.execPath, fixture, JSON.stringify(options)], { timeout: scaled(60_000) });
  const stdout = run.stdout.toString().trim();
  if (run.exitCode !== 0 || !stdout) throw new Error(`fixture failed (${run.exitCode}): ${run.stderr}`);
  return JSON.parse(stdout.split("\n").at(-1)!);
}

const unshareMissing = hasCommand("unshare") ? undefined : "unshare (util-linux) is not installed";
if (unshareMissing) console.warn(`skipping PID 1 tests: ${unshareMissing}`);

test.skipIf(!!unshareMissing)("as PID 1 of a new PID namespace, orphans are reaped and Bun.spawn and child_process children keep their codes", () => {
  for (const source of ["sigchld", "sweep"]) {
    const result = runFixture({ source, sweepIntervalMs: 200 }, ["unshare", "-p", "-f", "--mount-proc"]);
    expect(result).toMatchObject({ pid: 1, role: "pid1", source, reaped: 100, zombiesLeft: 0, exitCodesTrue: true });
  }
}, scaled(90_000));

test("subreaper: false in a process that is neither PID 1 nor a subreaper: off, with the reason", () => {
  const result = runFixture({ subreaper: false });
  expect(result.source).toBe("off");
  expect(result.notChosen.off).toMatch(/neither PID 1 nor a child subreaper/);
}, scaled(30_000));

test("enabled: false: off, with the reason", () => {
  const result = runFixture({ enabled: false });
  expect(result).toMatchObject({ source: "off", notChosen: { off: "disabled by the enabled option" } });
}, scaled(30_000));
