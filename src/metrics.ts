/**
 * Metrics: zombie lifetimes per source (percentiles for stats()), and, when
 * the daemon passes a prom-client registry, Prometheus metrics: reaped
 * orphans by source, overruns, malformed messages, a histogram of zombie
 * lifetime and a gauge of orphan zombies right now. prom-client is imported
 * only when a registry is passed, so it is never a hard dependency.
 * Fed by the core with each reap's source and lifetime; counters are read from the core itself.
 */
import { listOwnChildren, readStats } from "./procfs.ts";
import { runtimeHoldsPidfd } from "./runtime-pidfds.ts";
import type { ReaperCounts, SourceName } from "./types.ts";

export interface LifetimeSummary {
  /** Reaps counted since start (the percentiles cover the most recent ones). */
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** What prom-client's Registry offers that we use; typed here so prom-client stays optional. */
export interface MetricsRegistry {
  registerMetric(metric: unknown): void;
  removeSingleMetric(name: string): void;
}

/** Recent lifetimes kept per source for the percentiles: bounded memory in a long-lived daemon. */
const RECENT_LIFETIMES = 4096;
/** Histogram buckets in seconds: sub-millisecond event reaps up to sweep-bound minutes. */
const LIFETIME_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export const METRIC_NAMES = {
  reaped: "orphan_reaper_reaped_total",
  overruns: "orphan_reaper_overruns_total",
  malformed: "orphan_reaper_malformed_total",
  lifetime: "orphan_reaper_zombie_lifetime_seconds",
  zombies: "orphan_reaper_zombies",
} as const;

/** Nearest-rank percentile of ascending `sorted` values; 0 for none. */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(fraction * sorted.length)));
  return sorted[rank - 1] ?? 0;
}

export function summarizeLifetimes(values: ArrayLike<number> & Iterable<number>, count = values.length): LifetimeSummary {
  const sorted = [...values].sort((a, b) => a - b);
  return { count, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), maxMs: sorted.at(-1) ?? 0 };
}

/** The most recent RECENT_LIFETIMES values, in a ring that never grows: add() runs once per reap. */
class RecentValues {
  readonly #values = new Float64Array(RECENT_LIFETIMES);
  count = 0;

  add(value: number): void {
    this.#values[this.count % RECENT_LIFETIMES] = value;
    this.count += 1;
  }

  summary(): LifetimeSummary {
    return summarizeLifetimes(this.#values.subarray(0, Math.min(this.count, RECENT_LIFETIMES)), this.count);
  }
}

type LifetimeListener = (source: SourceName, lifetimeMs: number) => void;

export class ReaperMetrics {
  /** By source, made at its first reap: a property load per reap, no map lookup. */
  readonly #lifetimes: Partial<Record<SourceName, RecentValues>> = {};
  readonly #listeners = new Set<LifetimeListener>();

  /** One reap: `lifetimeMs` from the kernel's exit time when the source knew it, else from the reaper's first sight. */
  recordLifetime(source: SourceName, lifetimeMs: number): void {
    (this.#lifetimes[source] ??= new RecentValues()).add(lifetimeMs);
    if (this.#listeners.size > 0) for (const listener of this.#listeners) listener(source, lifetimeMs);
  }

  /** Lifetime percentiles per source that reaped anything. */
  lifetimes(): Partial<Record<SourceName, LifetimeSummary>> {
    return Object.fromEntries(Object.entries(this.#lifetimes).map(([source, recent]) => [source, recent.summary()]));
  }

  onLifetime(listener: LifetimeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** Our zombie children that the runtime does not own (it reaps its own): the orphans waiting right now. */
export async function countOrphanZombies(selfPid = process.pid): Promise<number> {
  const stats = await readStats(await listOwnChildren(selfPid));
  const zombies = stats.filter((stat) => stat.state === "Z" && stat.ppid === selfPid).map((stat) => stat.pid);
  const runtimePids = await runtimeHoldsPidfd(zombies);
  return zombies.filter((pid) => !runtimePids.has(pid)).length;
}

/**
 * Registers the reaper's metrics in `registry`; returns a function that
 * removes them (on stop, so a restarted reaper can register again).
 */
export async function exportToRegistry(
  registry: MetricsRegistry,
  metrics: ReaperMetrics,
  counts: () => ReaperCounts,
  selfPid: number,
): Promise<() => void> {
  const { Counter, Gauge, Histogram } = await import("prom-client");
  // Counters mirror the core's own at scrape time: one source of truth.
  const reaped = new Counter({
    name: METRIC_NAMES.reaped,
    help: "Orphaned zombies reaped, by the source whose event led to the reap",
    labelNames: ["source"] as const,
    registers: [],
    collect() {
      this.reset();
      for (const [source, value] of Object.entries(counts().reapedBySource)) this.inc({ source }, value);
    },
  });
  const mirrored = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers: [],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  const overruns = mirrored(
    METRIC_NAMES.overruns,
    "Proc connector receive overruns (events lost; a sweep recovers)",
    () => counts().overruns,
  );
  const malformed = mirrored(
    METRIC_NAMES.malformed,
    "Proc connector messages that could not be parsed",
    () => counts().malformed,
  );
  const lifetime = new Histogram({
    name: METRIC_NAMES.lifetime,
    help: "From an orphan's exit (or first sight when the exit time is unknown) to its reap",
    labelNames: ["source"] as const,
    buckets: LIFETIME_BUCKETS_S,
    registers: [],
  });
  const zombies = new Gauge({
    name: METRIC_NAMES.zombies,
    help: "Orphaned zombie children of this process right now, not yet reaped",
    registers: [],
    async collect() {
      this.set(await countOrphanZombies(selfPid));
    },
  });
  const unregister = registerAll(registry, {
    [METRIC_NAMES.reaped]: reaped,
    [METRIC_NAMES.overruns]: overruns,
    [METRIC_NAMES.malformed]: malformed,
    [METRIC_NAMES.lifetime]: lifetime,
    [METRIC_NAMES.zombies]: zombies,
  });
  const unsubscribe = metrics.onLifetime((source, lifetimeMs) => lifetime.observe({ source }, lifetimeMs / 1000));
  return () => {
    unsubscribe();
    unregister();
  };
}

/**
 * Registers each metric, or none: a name the registry holds already (the
 * daemon's own, another reaper's) makes it throw, and the ones registered
 * before it are taken out again, so the registry is left as it was.
 */
function registerAll(registry: MetricsRegistry, metrics: Readonly<Record<string, unknown>>): () => void {
  const registered: string[] = [];
  const unregister = () => {
    for (const name of registered) registry.removeSingleMetric(name);
  };
  try {
    for (const [name, metric] of Object.entries(metrics)) {
      registry.registerMetric(metric);
      registered.push(name);
    }
  } catch (error) {
    unregister();
    throw error;
  }
  return unregister;
}
