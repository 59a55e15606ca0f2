/**
 * The sweep's schedule, on bun's fake timers (they drive setTimeout and
 * performance.now together), so the test checks the waits the sweep chose,
 * not how late a busy machine ran them: alone it keeps its interval; beside
 * an event source it doubles its wait after each quiet sweep, up to the
 * ceiling, and a sweep that sees activity goes back to the interval.
 */
import { afterEach, beforeEach, expect, jest, test } from "bun:test";
import type { EventSource } from "../src/sources/source.ts";
import { startSweepSource } from "../src/sources/sweep.ts";

/** What the sweep wakes: it records the (fake) time of each sweep. */
function recordingCore(): { sweep(): void; sweeps: number[]; lastActivityAt: number } {
  const sweeps: number[] = [];
  return { lastActivityAt: -Infinity, sweeps, sweep: () => void sweeps.push(performance.now()) };
}

let sweep: EventSource | undefined;
beforeEach(() => jest.useFakeTimers());
afterEach(() => {
  sweep?.stop();
  sweep = undefined;
  jest.useRealTimers();
});

/** The times (fake performance.now()) of each sweep, relative to its start. */
function sweepTimes(core: ReturnType<typeof recordingCore>, startedAt: number): number[] {
  return core.sweeps.map((at) => at - startedAt);
}

test("alone, the sweep keeps its interval", () => {
  const core = recordingCore();
  const startedAt = performance.now();
  sweep = startSweepSource(core, { intervalMs: 40 });
  jest.advanceTimersByTime(200);
  expect(sweepTimes(core, startedAt)).toEqual([0, 40, 80, 120, 160, 200]);
});

test("beside an event source it backs off while quiet, up to the ceiling, and comes back after activity", () => {
  const core = recordingCore();
  const startedAt = performance.now();
  sweep = startSweepSource(core, { intervalMs: 30, maxIntervalMs: 240 });
  jest.advanceTimersByTime(1000);
  // At start, then waits of 30, 60, 120, 240, 240: quiet doubles the wait up to 240.
  expect(sweepTimes(core, startedAt)).toEqual([0, 30, 90, 210, 450, 690, 930]);

  core.lastActivityAt = performance.now();
  // The wait under way ends (at 1170), that sweep sees the activity, and the next comes 30 later.
  jest.advanceTimersByTime(1200 - 1000);
  expect(sweepTimes(core, startedAt).slice(7)).toEqual([1170, 1200]);
});

test("a sweep stopped is not run again", async () => {
  const core = recordingCore();
  sweep = startSweepSource(core, { intervalMs: 40 });
  sweep.stop();
  jest.advanceTimersByTime(1000);
  expect(core.sweeps).toHaveLength(1);
});
