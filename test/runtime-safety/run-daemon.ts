/**
 * Runs the runtime-safety daemon (test/fixtures/runtime-safety/daemon.ts) in
 * its own process group, kills the whole group when it overruns or when the
 * run ends, and turns its report into a list of problems: an empty list is
 * the only pass. Shared by the suite and scripts/soak.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DaemonPlan, DaemonReport } from "../fixtures/runtime-safety/daemon.ts";
import { SPAWN_APIS, type SpawnApi } from "../fixtures/runtime-safety/spawners.ts";
import { scaled } from "../helpers/time.ts";

export type { DaemonPlan, DaemonReport };

const DAEMON = `${import.meta.dir}/../fixtures/runtime-safety/daemon.ts`;

/** PID 1 of a new PID namespace; --kill-child takes the namespace down with unshare. */
export { PID1_PREFIX as AS_PID1 } from "../helpers/cli.ts";

/**
 * The APIs whose child the runtime marks only after the spawn returns, on the
 * Worker's own thread: a child that exits at once can be a zombie without a
 * pidfd while the main thread looks. Workers looping on them make the race
 * happen often enough to be caught in seconds.
 */
const FAST_ASYNC_APIS: readonly SpawnApi[] = ["Bun.spawn", "child_process.spawn"];

/** Every API from Workers, beside a storm: the suite's shape. */
export const BASE_PLAN: DaemonPlan = {
  reaper: {},
  durationMs: 6_000,
  settleMs: 5_000, // scaled by the daemon
  workers: [
    { apis: SPAWN_APIS, concurrency: 2 },
    ...Array.from({ length: 4 }, () => ({ apis: FAST_ASYNC_APIS, concurrency: 4 })),
  ],
  // The main thread runs the reaper and the storm only: its own spawning (see
  // MAIN_SPAWNS_EVERY_API) keeps the reaper's loop busy and makes the race rarer.
  main: { apis: [], concurrency: 0 },
  liveEvery: 8,
  livesMs: 50,
  forkEvery: 10,
  orphansPerShell: 50,
  shellsPerWave: 4,
};

/**
 * Where Bun gets no pidfds the sweep reaps alone, and every zombie waits out
 * the grace window (no mark proves provenance): a storm of the base plan's
 * rate would hold thousands of zombies at once (it ran a machine of 32,768
 * PIDs out of them), so runs there use this milder one.
 */
export const MILD_STORM = { forkEvery: 100, shellsPerWave: 1 } as const satisfies Partial<DaemonPlan>;

/** The main thread spawning through every API too (sync ones block the reaper's loop meanwhile). */
export const MAIN_SPAWNS_EVERY_API: DaemonPlan["main"] = { apis: SPAWN_APIS, concurrency: 2 };

export interface DaemonRun {
  readonly exitCode: number | null;
  readonly signal: string | number | null;
  readonly timedOut: boolean;
  readonly stderrTail: string;
  readonly report: DaemonReport | undefined;
}

/** What the run must allow a test to wait for: its own duration, settling (scaled by the daemon), start-up, and a margin. */
export function runTimeoutMs(plan: DaemonPlan): number {
  return scaled(plan.durationMs + plan.settleMs + 30_000);
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, "SIGKILL");
  } catch {
    // ESRCH: the group is gone already.
  }
}

export async function runDaemon(plan: DaemonPlan, prefix: readonly string[] = []): Promise<DaemonRun> {
  const gateDir = mkdtempSync(join(tmpdir(), "runtime-safety-"));
  const watchdogMs = runTimeoutMs(plan) - scaled(10_000); // before our own kill, so it can say why
  const child = Bun.spawn([...prefix, process.execPath, DAEMON, JSON.stringify({ ...plan, gateDir, watchdogMs })], {
    stdin: "ignore", stdout: "pipe", stderr: "pipe", detached: true,
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child.pid);
  }, runTimeoutMs(plan) - scaled(5_000));
  try {
    const [stdout, stderr] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    const last = stdout.trim().split("\n").at(-1);
    return {
      exitCode: child.exitCode,
      signal: child.signalCode,
      timedOut,
      stderrTail: stderr.slice(-2_000),
      report: last?.startsWith("{") ? (JSON.parse(last) as DaemonReport) : undefined,
    };
  } finally {
    clearTimeout(timer);
    killGroup(child.pid); // whatever the daemon left in its group (its orphans if it died)
    rmSync(gateDir, { recursive: true, force: true });
  }
}

function echildCount(report: DaemonReport): number {
  const wrong = report.runtime.flatMap((r) => r.wrong.map((w) => String(w.got)));
  const died = report.runtime.flatMap((r) => r.died ?? []);
  return [...wrong, ...died, ...report.errors].filter((text) => text.includes("ECHILD")).length;
}

/** One line of counts, for logs and the soak. */
export function summary(run: DaemonRun): Record<string, unknown> {
  const report = run.report;
  if (!report) return { crashed: true, exitCode: run.exitCode, signal: run.signal, timedOut: run.timedOut };
  return {
    source: report.source, role: report.role, orphansMade: report.orphansMade, orphansReaped: report.orphansReaped,
    runtimeSpawned: report.runtimeSpawned, stolen: report.stolen.length, echild: echildCount(report),
    wrongExitCodes: report.runtime.reduce((sum, r) => sum + r.wrong.length, 0) + report.orphansWrongExit,
    zombiesLeft: report.zombiesLeft.length, errors: report.errors.length,
    threadsDied: report.runtime.filter((r) => r.died).length,
  };
}

/** Problems listed in full; past this, the rest are counted (a broken reaper can steal hundreds). */
const PROBLEMS_SHOWN = 20;

/** Everything that went wrong in a run; empty means safe. */
export function problems(run: DaemonRun, plan: DaemonPlan): string[] {
  const found = allProblems(run, plan);
  if (found.length <= PROBLEMS_SHOWN) return found;
  return [...found.slice(0, PROBLEMS_SHOWN), `... and ${found.length - PROBLEMS_SHOWN} more; counts: ${JSON.stringify(summary(run))}`];
}

function allProblems(run: DaemonRun, plan: DaemonPlan): string[] {
  const report = run.report;
  if (!report) {
    return [`daemon gave no report (exit ${run.exitCode}, signal ${run.signal}${run.timedOut ? ", timed out" : ""}): ${run.stderrTail}`];
  }
  const found: string[] = [];
  if (run.exitCode !== 0) found.push(`daemon exited ${run.exitCode}`);
  for (const reaped of report.stolen) found.push(`stolen: reap report for a runtime child ${JSON.stringify(reaped)}`);
  for (const r of report.runtime) for (const w of r.wrong) found.push(`wrong exit: ${w.thread} ${w.api} expected ${w.expected}, got ${w.got}`);
  for (const error of report.errors) found.push(`error: ${error}`);
  for (const r of report.runtime) if (r.died) found.push(`${r.thread} died: ${r.died}`);
  if (report.orphansWrongExit > 0) found.push(`${report.orphansWrongExit} orphans reported with a wrong exit code`);
  if (report.orphansReaped !== report.orphansMade) found.push(`orphans reaped ${report.orphansReaped} of ${report.orphansMade}`);
  if (report.zombiesLeft.length > 0) found.push(`zombies left: ${report.zombiesLeft.join(" ")}`);
  if (report.reaperFailures > 0) found.push(`reaper failures: ${report.reaperFailures}`);
  if (report.orphansMade === 0) found.push("no orphan was made: the run proves nothing");
  const threads = plan.workers.length + (plan.main.apis.length > 0 ? 1 : 0);
  if (report.runtime.length !== threads) found.push(`${report.runtime.length} of ${threads} spawning threads reported`);
  for (const r of report.runtime.filter((r) => !r.died)) {
    const unused = r.apis.filter((api) => !r.spawned[api]);
    if (unused.length > 0) found.push(`${r.thread} never spawned through ${unused.join(", ")}: the run proves nothing for them`);
  }
  return found;
}
