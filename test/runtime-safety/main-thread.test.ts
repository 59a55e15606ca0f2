/**
 * Runtime safety for children spawned on the reaper's own thread: the main
 * thread spawns through every API, with no Worker, beside an orphan storm,
 * for each source. The reaper shares this thread with the runtime, so it can
 * never look between a spawn and the runtime's pidfd on the child; this run
 * guards that no change to how the reaper waits breaks that.
 */
import { expect, test } from "bun:test";
import { SPAWN_APIS } from "../fixtures/runtime-safety/spawners.ts";
import { BASE_PLAN, problems, runDaemon, runTimeoutMs, summary, type DaemonPlan } from "./run-daemon.ts";

const runs: { name: string; reaper: DaemonPlan["reaper"] }[] = [
  { name: "default options", reaper: {} },
  { name: "sigchld", reaper: { source: "sigchld" } },
  { name: "sweep only, every 1 ms", reaper: { source: "sweep", sweepIntervalMs: 1 } },
  { name: "graceMs 0 with alwaysGrace", reaper: { graceMs: 0, alwaysGrace: true } },
];

for (const { name, reaper } of runs) {
  const plan: DaemonPlan = { ...BASE_PLAN, reaper, durationMs: 4_000, workers: [], main: { apis: SPAWN_APIS, concurrency: 4 } };
  test(`main thread only, ${name}: no runtime child taken, every code right, every orphan reaped, no zombie left`, async () => {
    const run = await runDaemon(plan);
    console.log(`runtime-safety main thread ${name}: ${JSON.stringify(summary(run))}`);
    expect(run.report?.role).toBe("subreaper");
    expect(problems(run, plan)).toEqual([]);
  }, runTimeoutMs(plan));
}
