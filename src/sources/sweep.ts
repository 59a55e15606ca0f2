/**
 * The sweep: on a timer, the core drains the proc connector and looks at
 * every child. It runs under every other source as the safety net for what
 * they miss (lost events, broken sources). Beside an event source it backs
 * off while nothing happens: each sweep that follows no activity (no SIGCHLD,
 * no reap since the last sweep) doubles the wait before the next, up to
 * `maxIntervalMs`; a sweep that follows activity comes back to `intervalMs`.
 * Alone, it keeps its interval.
 */
import type { EventSource } from "./source.ts";

export interface SweepSchedule {
  readonly intervalMs: number;
  /** The longest wait while quiet; undefined keeps `intervalMs` (the sweep is the only source). */
  readonly maxIntervalMs?: number;
}

export interface Sweepable {
  sweep(): void;
  /** performance.now() of the last SIGCHLD or reap. */
  readonly lastActivityAt: number;
}

export function startSweepSource(core: Sweepable, { intervalMs, maxIntervalMs = intervalMs }: SweepSchedule): EventSource {
  const longestWaitMs = Math.max(intervalMs, maxIntervalMs);
  let waitMs = intervalMs;
  let lastSweepAt = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const sweep = () => {
    const quiet = core.lastActivityAt <= lastSweepAt;
    waitMs = quiet ? Math.min(waitMs * 2, longestWaitMs) : intervalMs;
    lastSweepAt = performance.now();
    core.sweep();
    schedule();
  };
  const schedule = () => {
    timer = setTimeout(sweep, waitMs);
    // unref: the safety net must never keep the daemon alive on its own.
    timer.unref();
  };
  core.sweep();
  schedule();
  return {
    name: "sweep",
    stop: () => clearTimeout(timer),
  };
}
