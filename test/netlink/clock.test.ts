/**
 * The proc connector stamps an exit with CLOCK_MONOTONIC; the source turns
 * it into performance.now() time with its clock offset, and a lifetime is
 * the reap's performance.now() minus that. No lifetime may come out
 * negative, so a kernel time turned must never be later than a
 * performance.now() read after it (reaper-netlink.test.ts saw -0.011 ms).
 * Nor may it be earlier than the offset's own read can explain: the offset
 * errs high by at most the time its read took.
 */
import { expect, test } from "bun:test";
import { loadLibc } from "../../src/runtime/index.ts";
import { monotonicOffsetMs, monotonicToNowMs } from "../../src/netlink/clock.ts";

const libc = loadLibc();
/** performance.now() and the ms division round; a microsecond is far above that and far below any real error. */
const ROUNDING_MS = 0.001;

test("a kernel clock read, turned with the offset, falls between performance.now() reads around it, less the offset read's time", () => {
  const later: number[] = [];
  const earlier: number[] = [];
  for (let offsets = 0; offsets < 50; offsets++) {
    const offsetReadStart = performance.now();
    const offsetMs = monotonicOffsetMs(libc);
    const offsetReadMs = performance.now() - offsetReadStart;
    for (let read = 0; read < 2_000; read++) {
      const before = performance.now();
      const turned = monotonicToNowMs(Number(libc.monotonicNs()), offsetMs);
      const after = performance.now();
      if (turned > after) later.push(turned - after);
      if (turned < before - offsetReadMs - ROUNDING_MS) earlier.push(before - offsetReadMs - turned);
    }
  }
  expect({ later: later.length, worstLaterMs: Math.max(0, ...later), earlier: earlier.length, worstEarlierMs: Math.max(0, ...earlier) })
    .toEqual({ later: 0, worstLaterMs: 0, earlier: 0, worstEarlierMs: 0 });
});
