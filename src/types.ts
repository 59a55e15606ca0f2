/**
 * The records shared across the reaper, in one leaf module that imports
 * nothing: source names, what a reap reports, what a veto is asked about,
 * and the counters stats() shows.
 */

/** Every source, listed once: the chooser's preference order, then the safety net. */
export const SOURCE_NAMES = ["netlink", "sigchld", "sweep"] as const;
export type SourceName = (typeof SOURCE_NAMES)[number];

/** A zombie the reaper could not prove adopted: reaped only after the grace window. */
export type ReapProvenance = "adopted" | "unknown";

/** One reaped orphan, as reported to `onReap` and in the log line. */
export interface ReapedProcess {
  readonly pid: number;
  /** The process name from /proc/PID/stat, read only when a listener wants it (else ""). */
  readonly comm: string;
  readonly exitCode: number | null;
  readonly signal: number | null;
  readonly coreDumped: boolean;
  /** The source whose event led to the reap. */
  readonly source: SourceName;
  readonly provenance: ReapProvenance;
  /** From the kernel's exit time to the reap, when the source knew the exit time. */
  readonly lifetimeMs?: number;
  /** From the reaper's first sight of the zombie to the reap. */
  readonly seenForMs: number;
}

/** A zombie the reaper is about to reap; `shouldReap` may veto it. */
export interface ReapCandidate {
  readonly pid: number;
  readonly comm: string;
  readonly provenance: ReapProvenance;
}

/** The exit of one child of ours, as the proc connector reported it. */
export interface ExitNotice {
  readonly pid: number;
  /** When it exited, in performance.now() milliseconds. */
  readonly exitedAt: number;
}

/** Counts since start, as stats() shows them. */
export interface ReaperCounts {
  readonly reaped: number;
  readonly reapedBySource: Readonly<Record<SourceName, number>>;
  readonly overruns: number;
  readonly malformed: number;
  /** Zombies that shouldReap vetoed (each counted once). */
  readonly vetoed: number;
  readonly failures: number;
}

export function zeroBySource(): Record<SourceName, number> {
  return Object.fromEntries(SOURCE_NAMES.map((name) => [name, 0])) as Record<SourceName, number>;
}
