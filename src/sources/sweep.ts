/**
 * The sweep: list our own zombie children and hand them to the core, on a
 * timer. It runs under every other source as the safety net for whatever they
 * miss (lost netlink events, merged or lost signals). Beside an event source
 * it backs off while nothing happens: doubling the wait after each quiet
 * sweep, up to `maxIntervalMs`, so an idle daemon is not woken for nothing;
 * any activity brings it back to `intervalMs`. Alone, it keeps its interval.
 */
import type { EventSource, ReaperCore } from "./source.ts";

export interface SweepSchedule {
  readonly intervalMs: number;
  /** The longest wait while quiet; undefined keeps `intervalMs` (the sweep is the only source). */
  readonly maxIntervalMs?: number;
}

export function startSweepSource(core: ReaperCore, { intervalMs, maxIntervalMs = intervalMs }: SweepSchedule): EventSource {
  const longestWaitMs = Math.max(intervalMs, maxIntervalMs);
  let waitMs = intervalMs;
  let lastSweepAt = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const sweep = () => {
    const quiet = core.lastActivityAt <= lastSweepAt;
    waitMs = quiet ? Math.min(waitMs * 2, longestWaitMs) : intervalMs;
    lastSweepAt = performance.now();
    core.requestScan("sweep");
    schedule();
  };
  const schedule = () => {
    timer = setTimeout(sweep, waitMs);
    // unref: the safety net must never keep the daemon alive on its own.
    timer.unref();
  };
  core.requestScan("sweep");
  schedule();
  return {
    name: "sweep",
    stop: async () => clearTimeout(timer),
  };
}
