/**
 * The sweep: every `sweepIntervalMs`, list our own zombie children and hand
 * them to the core. It runs under every other source as the safety net for
 * whatever they miss (lost netlink events, merged or lost signals).
 */
import type { EventSource, ReaperCore } from "./source.ts";

export function startSweepSource(core: ReaperCore, intervalMs: number): EventSource {
  // unref: the safety net must never keep the daemon alive on its own.
  const timer = setInterval(() => core.requestScan("sweep"), intervalMs);
  timer.unref();
  core.requestScan("sweep");
  return {
    name: "sweep",
    stop: async () => clearInterval(timer),
  };
}
