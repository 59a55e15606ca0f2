/**
 * orphan-reaper: the public entry. startOrphanReaper never throws for the
 * machine it runs on and never blocks the daemon: where it cannot serve it
 * logs one line saying why and returns a reaper whose source is "off".
 * Only invalid options reject, at once, naming the option.
 */
import type { Logger } from "pino";
import { chooseSource } from "./chooser.ts";
import type { Libc } from "./libc.ts";
import { reaperLogger } from "./log.ts";
import { exportToRegistry, ReaperMetrics, type LifetimeSummary, type MetricsRegistry } from "./metrics.ts";
import { normalizeOptions, type NormalizedOptions, type OrphanReaperOptions } from "./options.ts";
import { Core } from "./reaper.ts";
import { loadLibc, markRuntimeChildren } from "./runtime/index.ts";
import { probeRuntimePidfds } from "./runtime-pidfds.ts";
import { startSweepSource } from "./sources/sweep.ts";
import type { EventSource, SourceName } from "./sources/source.ts";

export { readReaperConfig, type ReaperConfig } from "./config.ts";
export { ErrnoError } from "./errno.ts";
export type { LifetimeSummary, MetricsRegistry } from "./metrics.ts";
export type { OrphanReaperOptions, ReapCandidate, ReapedProcess } from "./options.ts";
export type { SourceName } from "./sources/source.ts";

export type ReaperSource = SourceName | "off";
/** How this process came to receive orphans. */
export type ReaperRole = "pid1" | "subreaper";

export interface ReaperStats {
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
  /** Why the reaper is off, or why each source other than `source` is not in use. */
  readonly notChosen: Readonly<Partial<Record<ReaperSource, string>>>;
  /** Whether a zombie with no runtime pidfd counts as adopted, and why. */
  readonly runtimePidfds: { readonly holds: boolean; readonly reason: string } | undefined;
  /** Zombie lifetime percentiles per source: from the exit when known (netlink), else from first sight. */
  readonly lifetimes: Readonly<Partial<Record<SourceName, LifetimeSummary>>>;
}

export interface OrphanReaper {
  readonly source: ReaperSource;
  stats(): ReaperStats;
  /** Idempotent: clears every timer, closes every fd, removes every listener. */
  stop(): Promise<void>;
}

const NO_REAPS: Record<SourceName, number> = { netlink: 0, sigchld: 0, sweep: 0 };

function offReaper(reason: string, logger: Logger): OrphanReaper {
  logger.info({ source: "off", reason }, `orphan reaper off: ${reason}`);
  const startedAt = Date.now();
  const stats: ReaperStats = {
    source: "off", role: undefined, reaped: 0, reapedBySource: NO_REAPS, pending: 0, overruns: 0,
    malformed: 0, vetoed: 0, failures: 0, startedAt, lastSweepAt: undefined, notChosen: { off: reason },
    runtimePidfds: undefined, lifetimes: {},
  };
  return { source: "off", stats: () => stats, stop: async () => {} };
}

/** Makes sure orphans come to us: PID 1 gets them; otherwise become a child subreaper. */
function takeOrphans(libc: Libc, options: NormalizedOptions): { role: ReaperRole; restore?: () => void } | string {
  if (libc.getpid() === 1) return { role: "pid1" };
  if (libc.isChildSubreaper()) return { role: "subreaper" };
  if (!options.subreaper) return "neither PID 1 nor a child subreaper, and the subreaper option is false";
  libc.setChildSubreaper(true);
  return { role: "subreaper", restore: () => libc.setChildSubreaper(false) };
}

export async function startOrphanReaper(options?: OrphanReaperOptions): Promise<OrphanReaper> {
  const normalized = normalizeOptions(options);
  const logger = reaperLogger(normalized.logger);
  if (!normalized.enabled) return offReaper("disabled by the enabled option", logger);
  if (process.platform !== "linux") return offReaper(`platform ${process.platform} is not Linux`, logger);
  try {
    return await startOn(loadLibc(), normalized, logger);
  } catch (err) {
    return offReaper(`cannot start: ${err instanceof Error ? err.message : String(err)}`, logger);
  }
}

/** Metrics are an extra: when they cannot be exported the reaper still runs, and says why. */
async function exportMetrics(registry: MetricsRegistry, metrics: ReaperMetrics, core: Core, logger: Logger) {
  try {
    return await exportToRegistry(registry, metrics, core.counters, core.libc, core.selfPid);
  } catch (err) {
    logger.warn({ err }, "metricsRegistry was given but the metrics cannot be exported: install prom-client, or pass a registry without orphan_reaper_* metrics already in it");
    return undefined;
  }
}

async function startOn(libc: Libc, options: NormalizedOptions, logger: Logger): Promise<OrphanReaper> {
  const taken = takeOrphans(libc, options);
  if (typeof taken === "string") return offReaper(taken, logger);
  const unmarkChildren = markRuntimeChildren(libc);
  const runtimePidfds = options.alwaysGrace ? undefined : await probeRuntimePidfds(libc);
  const metrics = new ReaperMetrics();
  const core = new Core({
    libc, logger, options, runtimeMarksChildrenWithPidfd: runtimePidfds?.holds ?? false,
    onReaped: (reaped) => metrics.recordReap(reaped),
  });
  const choice = await chooseSource(core, options);
  const unexport = options.metricsRegistry && (await exportMetrics(options.metricsRegistry, metrics, core, logger));
  if (choice.source === "netlink") core.exactSource = choice.primary;
  // Beside an event source the sweep may back off while nothing happens; alone it may not.
  const maxIntervalMs = choice.primary ? options.sweepMaxIntervalMs : undefined;
  const sources: EventSource[] = [startSweepSource(core, { intervalMs: options.sweepIntervalMs, maxIntervalMs })];
  if (choice.primary) sources.push(choice.primary, ...choice.companions);
  const startedAt = Date.now();
  logger.info(
    { source: choice.source, role: taken.role, notChosen: choice.notChosen, runtimePidfds },
    `orphan reaper started: source ${choice.source}, as ${taken.role === "pid1" ? "PID 1" : "child subreaper"}`,
  );

  let stopping: Promise<void> | undefined;
  return {
    source: choice.source,
    stats: () => ({
      source: choice.source, role: taken.role, ...core.counters, pending: core.pendingCount,
      reapedBySource: { ...core.counters.reapedBySource }, startedAt, lastSweepAt: core.lastSweepAt,
      notChosen: choice.notChosen, runtimePidfds, lifetimes: metrics.lifetimes(),
    }),
    stop: () =>
      (stopping ??= (async () => {
        core.stop();
        await Promise.all(sources.map((source) => source.stop()));
        taken.restore?.();
        unmarkChildren();
        unexport?.();
        logger.info({ reaped: core.counters.reaped }, "orphan reaper stopped");
      })()),
  };
}
