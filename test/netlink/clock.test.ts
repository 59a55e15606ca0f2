/**
 * The proc connector stamps an exit with CLOCK_MONOTONIC; the source turns
 * it into performance.now() time with its clock offset, and a lifetime is
 * the reap's performance.now() minus that. No lifetime may come out
 * negative, so a kernel time turned must never be later than a
 * performance.now() read after it (reaper-netlink.test.ts saw -0.011 ms).
 */
import { expect, test } from "bun:test";
import { loadLibc } from "../../src/runtime/index.ts";
import { monotonicOffsetMs } from "../../src/sources/netlink.ts";

const libc = loadLibc();

test("a kernel clock read, turned with the offset, is never later than performance.now() read after it", () => {
  const later: number[] = [];
  for (let offsets = 0; offsets < 50; offsets++) {
    const offsetMs = monotonicOffsetMs(libc);
    for (let read = 0; read < 2_000; read++) {
      // As the parser turns an event's timestamp (src/sources/netlink.ts).
      const turned = Number(libc.monotonicNs()) / 1e6 - offsetMs;
      const after = performance.now();
      if (turned > after) later.push(turned - after);
    }
  }
  expect({ later: later.length, worstMs: Math.max(0, ...later) }).toEqual({ later: 0, worstMs: 0 });
});
