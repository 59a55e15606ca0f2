/**
 * orphan-reaper: the public entry. startOrphanReaper never throws for the
 * machine it runs on and never blocks the daemon: where it cannot serve it
 * logs one line saying why and returns a reaper whose source is "off".
 * Start-up is a transaction (src/startup.ts): a step that fails undoes the
 * ones before it. Only invalid options reject, at once, naming the option.
 */
import { isMainThread } from "node:worker_threads";
import type { Logger } from "pino";
import { chooseSources } from "./chooser.ts";
import { Core } from "./core.ts";
import { messageOf } from "./errno.ts";
import type { Libc } from "./libc.ts";
import { reaperLogger } from "./log.ts";
import { exportToRegistry, ReaperMetrics, type LifetimeSummary, type MetricsRegistry } from "./metrics.ts";
import { normalizeOptions, type NormalizedOptions, type OrphanReaperOptions } from "./options.ts";
import { whyProcIsNotOurs } from "./procfs.ts";
import { loadLibc, markRuntimeChildren, whySigchldIsNotOurs } from "./runtime/index.ts";
import { probeRuntimePidfds } from "./runtime-mark-probe.ts";
import { SourceWiring, type ProbeRetry, type SourceChange } from "./source-wiring.ts";
import { UndoStack } from "./startup.ts";
import { takeOrphans, type ReaperRole } from "./subreaper.ts";
import { zeroBySource, type SourceName } from "./types.ts";

export { readReaperConfig, type ReaperConfig } from "./config.ts";
export { ErrnoError } from "./errno.ts";
export type { LifetimeSummary, MetricsRegistry } from "./metrics.ts";
export type { OrphanReaperOptions } from "./options.ts";
export type { ProbeRetry, SourceChange } from "./source-wiring.ts";
export type { ReapCandidate, ReapedProcess, SourceName } from "./types.ts";
export type { ReaperRole } from "./subreaper.ts";

export type ReaperSource = SourceName | "off";

export interface ReaperStats {
  /** The source in use now (it changes when a retried probe succeeds: see sourceChanges). */
  readonly source: ReaperSource;
  readonly role: ReaperRole | undefined;
  readonly reaped: number;
  readonly reapedBySource: Readonly<Record<SourceName, number>>;
  /** Zombies seen but not reapable yet (grace window, or threads still running). */
  readonly pending: number;
  readonly overruns: number;
  readonly malformed: number;
  readonly vetoed: number;
  readonly failures: number;
  /** Date.now() at start, and at the last sweep (undefined before the first). */
  readonly startedAt: number;
  readonly lastSweepAt: number | undefined;
  /** Why reaping is failing right now (say /proc unreadable), or undefined while it works. */
  readonly problem: string | undefined;
  /** Why the reaper is off, or why each source not in use is not. */
  readonly notChosen: Readonly<Partial<Record<ReaperSource, string>>>;
  /** What each source that runs beside `source` is there for. */
  readonly alongside: Readonly<Partial<Record<SourceName, string>>>;
  /** A preferred source whose probe failed for time, and when it is probed again. */
  readonly retry: ProbeRetry | undefined;
  /** Switches of `source` since start. */
  readonly sourceChanges: readonly SourceChange[];
  /** Whether a zombie with no runtime pidfd counts as adopted, and why. */
  readonly runtimePidfds: { readonly holds: boolean; readonly reason: string } | undefined;
  /** Zombie lifetime percentiles per source: from the exit when known (netlink), else from first sight. */
  readonly lifetimes: Readonly<Partial<Record<SourceName, LifetimeSummary>>>;
}

export interface OrphanReaper {
  /** The source in use now. */
  readonly source: ReaperSource;
  stats(): ReaperStats;
  /** Idempotent: undoes every step of start-up (timers, fds, listeners, the subreaper flag, metrics). */
  stop(): Promise<void>;
}

/** Off because disabled is news (info); off because something failed or cannot work here is a warning. */
function offReaper(reason: string, logger: Logger, level: "info" | "warn"): OrphanReaper {
  logger[level]({ source: "off", reason }, `orphan reaper off: ${reason}`);
  const stats: ReaperStats = {
    source: "off", role: undefined, reaped: 0, reapedBySource: zeroBySource(), pending: 0, overruns: 0,
    malformed: 0, vetoed: 0, failures: 0, startedAt: Date.now(), lastSweepAt: undefined, problem: undefined, notChosen: { off: reason },
    alongside: {}, retry: undefined, sourceChanges: [], runtimePidfds: undefined, lifetimes: {},
  };
  return { source: "off", stats: () => stats, stop: async () => {} };
}

/** Why this process cannot reap at all, before anything is touched. */
function unfitPlace(): string | undefined {
  if (process.platform !== "linux") return `platform ${process.platform} is not Linux`;
  if (!isMainThread)
    return "started inside a Worker: adopted orphans are children of the main thread, and a thread may only wait for its own children, so it could reap nothing; start it from the main thread";
  // Every judgement reads /proc (children, stats, the runtime's pidfds): a foreign one would mislead each.
  return whyProcIsNotOurs(process.pid);
}

export async function startOrphanReaper(options?: OrphanReaperOptions): Promise<OrphanReaper> {
  const normalized = normalizeOptions(options);
  const logger = reaperLogger(normalized.logger);
  const { enabled, reason, failed } = normalized.enabled;
  if (!enabled) return offReaper(reason, logger, failed ? "warn" : "info");
  const unfit = unfitPlace();
  if (unfit) return offReaper(unfit, logger, "warn");
  const undo = new UndoStack(logger);
  try {
    return await startOn(loadLibc(), normalized, logger, undo);
  } catch (err) {
    await undo.run();
    return offReaper(`cannot start: ${messageOf(err)}`, logger, "warn");
  }
}

/** Metrics are an extra: when they cannot be exported the reaper still runs, and says why. */
async function exportMetrics(registry: MetricsRegistry, metrics: ReaperMetrics, core: Core, logger: Logger) {
  try {
    return await exportToRegistry(registry, metrics, () => core.counts(), core.selfPid);
  } catch (err) {
    logger.warn({ err }, "metricsRegistry was given but the metrics cannot be exported: install prom-client, or pass a registry without orphan_reaper_* metrics already in it");
    return undefined;
  }
}

/** Each step that changes the process pushes its undo before the next step runs. */
async function startOn(libc: Libc, options: NormalizedOptions, logger: Logger, undo: UndoStack): Promise<OrphanReaper> {
  const intake = takeOrphans(libc, options.subreaper);
  if (typeof intake === "string") return offReaper(intake, logger, "warn");
  undo.push("release the child subreaper flag", intake.release);
  undo.push("stop marking the runtime's children", await markRuntimeChildren(libc));
  const runtimePidfds = options.alwaysGrace ? undefined : await probeRuntimePidfds(libc);
  const metrics = new ReaperMetrics();
  const core = new Core({
    libc, logger, graceMs: options.graceMs, alwaysGrace: options.alwaysGrace, reapLogLevel: options.reapLogLevel,
    onReap: options.onReap, shouldReap: options.shouldReap, runtimeMarksChildrenWithPidfd: runtimePidfds?.holds ?? false,
    lifetimes: metrics,
  });
  undo.push("stop the core", () => core.stop());
  const context = { core, libc, logger, sigchldNotOurs: whySigchldIsNotOurs(libc) };
  const plan = await chooseSources(context, options);
  const sources = new SourceWiring(context, options, plan);
  undo.push("stop the sources", () => sources.stop());
  sources.start();
  const unexport = options.metricsRegistry && (await exportMetrics(options.metricsRegistry, metrics, core, logger));
  if (unexport) undo.push("remove the exported metrics", unexport);
  const startedAt = Date.now();
  logger.info(
    { source: sources.source, role: intake.role, notChosen: sources.notChosen, alongside: sources.alongside, retry: sources.retry, runtimePidfds },
    `orphan reaper started: source ${sources.source}, as ${intake.role === "pid1" ? "PID 1" : "child subreaper"}`,
  );

  let stopping: Promise<void> | undefined;
  return {
    get source() {
      return sources.source;
    },
    stats: () => ({
      source: sources.source, role: intake.role, ...core.counts(), pending: core.pendingCount,
      startedAt, lastSweepAt: core.lastSweepAt, problem: core.problem,
      notChosen: sources.notChosen, alongside: sources.alongside, retry: sources.retry,
      sourceChanges: [...sources.changes], runtimePidfds, lifetimes: metrics.lifetimes(),
    }),
    stop: () =>
      (stopping ??= undo.run().then(() => logger.info({ reaped: core.counts().reaped }, "orphan reaper stopped"))),
  };
}
