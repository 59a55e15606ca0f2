/**
 * The proc connector stamps each event with ktime_get_ns() (CLOCK_MONOTONIC,
 * <linux/cn_proc.h> timestamp_ns); lifetimes are measured in
 * performance.now() time, so event times are turned into it.
 */
import type { Libc } from "../libc.ts";

/**
 * CLOCK_MONOTONIC (the clock of event timestamps) minus performance.now(), in
 * ms: its upper bound, the kernel clock read after `before`. An exit time
 * turned with it is never later than a performance.now() read after the
 * event, so no lifetime comes out negative (it errs high by the read's time).
 */
export function monotonicOffsetMs(libc: Libc): number {
  const before = performance.now();
  return Number(libc.monotonicNs()) / 1e6 - before;
}

/** A CLOCK_MONOTONIC time (ns), as an event stamps it, in performance.now() ms. */
export function monotonicToNowMs(monotonicNs: number, offsetMs: number): number {
  return monotonicNs / 1e6 - offsetMs;
}
