/**
 * The proc connector stamps each event with ktime_get_ns() (CLOCK_MONOTONIC,
 * <linux/cn_proc.h> timestamp_ns); lifetimes are measured in
 * performance.now() time, so event times are turned into it.
 */
import type { Libc } from "../libc.ts";

/** Reads of the two clocks: the closest pair is kept, so one preempted read does not skew every exit time. */
const OFFSET_SAMPLES = 5;

/**
 * CLOCK_MONOTONIC (the clock of event timestamps) minus performance.now(), in
 * ms: an upper bound, the kernel clock read after `before`, the least of a
 * few. An exit time turned with it is never later than a performance.now()
 * read after the event, so no lifetime comes out negative; it errs early by
 * the read's time, which must stay small: an exit read long after its time
 * counts as a blocked event loop (src/core.ts).
 */
export function monotonicOffsetMs(libc: Libc): number {
  let offset = Infinity;
  for (let sample = 0; sample < OFFSET_SAMPLES; sample++) {
    const before = performance.now();
    offset = Math.min(offset, Number(libc.monotonicNs()) / 1e6 - before);
  }
  return offset;
}

/** A CLOCK_MONOTONIC time (ns), as an event stamps it, in performance.now() ms. */
export function monotonicToNowMs(monotonicNs: number, offsetMs: number): number {
  return monotonicNs / 1e6 - offsetMs;
}
