/**
 * Runtime safety as PID 1 of a new PID namespace (the container case): the
 * same Workers, orphan storm and main-thread spawning as subreaper.test.ts.
 * The proc connector does not serve inside a new PID namespace, so the
 * default options must fall back to sigchld and say why netlink was not taken.
 */
import { expect, test } from "bun:test";
import { unshareUnavailable } from "../helpers/cli.ts";
import { AS_PID1, BASE_PLAN, MAIN_SPAWNS_EVERY_API, problems, runDaemon, runTimeoutMs, summary, type DaemonPlan } from "./run-daemon.ts";

const noNamespace = unshareUnavailable(AS_PID1.slice(1));
if (noNamespace) console.warn(`skipping the PID 1 runs: ${noNamespace}`);

const runs: { name: string; reaper: DaemonPlan["reaper"]; expectSource: string; main?: DaemonPlan["main"] }[] = [
  { name: "default options (falls back to sigchld)", reaper: {}, expectSource: "sigchld" },
  { name: "sweep only, every 1 ms", reaper: { source: "sweep", sweepIntervalMs: 1 }, expectSource: "sweep" },
  { name: "graceMs 0 with alwaysGrace", reaper: { graceMs: 0, alwaysGrace: true }, expectSource: "sigchld" },
  { name: "default options, the main thread spawning through every API too", reaper: {}, expectSource: "sigchld", main: MAIN_SPAWNS_EVERY_API },
];

for (const { name, reaper, expectSource, main = BASE_PLAN.main } of runs) {
  const plan: DaemonPlan = { ...BASE_PLAN, reaper, main };
  test.skipIf(!!noNamespace)(`as PID 1, ${name}: no runtime child taken, every code right, every orphan reaped, no zombie left`, async () => {
    const run = await runDaemon(plan, AS_PID1);
    console.log(`runtime-safety PID 1 ${name}: ${JSON.stringify(summary(run))}`);
    expect(run.report).toMatchObject({ pid: 1, role: "pid1", source: expectSource });
    // Chosen by evidence: the probe names the namespace as the reason netlink cannot serve.
    if (expectSource === "sigchld") expect(run.report?.notChosen.netlink).toMatch(/namespace/);
    expect(problems(run, plan)).toEqual([]);
  }, runTimeoutMs(plan));
}
