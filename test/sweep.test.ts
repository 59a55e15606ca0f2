/**
 * The sweep's timer, on real timers: alone it keeps its interval; beside an
 * event source it doubles its wait after each quiet sweep, up to the ceiling,
 * and any activity brings it back to the interval.
 */
import { afterEach, expect, test } from "bun:test";
import type { EventSource } from "../src/sources/source.ts";
import { startSweepSource } from "../src/sources/sweep.ts";

/** A core that only records when the sweep asked for a scan. */
function recordingCore(): { sweep(): void; sweeps: number[]; lastActivityAt: number } {
  const sweeps: number[] = [];
  return { lastActivityAt: -Infinity, sweeps, sweep: () => void sweeps.push(performance.now()) };
}

const gapsOf = (times: readonly number[]) => times.slice(1).map((time, i) => time - times[i]!);
// Timers fire late on a loaded machine, never much early.
const EARLY_MS = 2;

let sweep: EventSource | undefined;
afterEach(async () => {
  await sweep?.stop();
  sweep = undefined;
});

test("alone, the sweep keeps its interval", async () => {
  const core = recordingCore();
  sweep = startSweepSource(core, { intervalMs: 40 });
  await Bun.sleep(450);
  expect(core.sweeps.length).toBeGreaterThanOrEqual(6); // one at start, then about one per 40 ms
  for (const gap of gapsOf(core.sweeps.slice(1))) expect(gap).toBeGreaterThanOrEqual(40 - EARLY_MS);
  expect(Math.max(...gapsOf(core.sweeps.slice(1)))).toBeLessThan(80 + 200);
});

test("beside an event source it backs off while quiet, up to the ceiling, and comes back after activity", async () => {
  const core = recordingCore();
  sweep = startSweepSource(core, { intervalMs: 30, maxIntervalMs: 240 });
  await Bun.sleep(1000);
  // At start, then after 30, 60, 120, 240, 240 ms: quiet doubles the wait up to 240.
  const quietGaps = gapsOf(core.sweeps.slice(1));
  expect(quietGaps.length).toBeGreaterThanOrEqual(3);
  expect(quietGaps.length).toBeLessThanOrEqual(5);
  for (const [i, gap] of quietGaps.entries()) expect(gap).toBeGreaterThanOrEqual(Math.min(60 * 2 ** i, 240) - EARLY_MS);

  core.lastActivityAt = performance.now();
  const before = core.sweeps.length;
  // The wait already under way ends, that sweep sees the activity, and the next comes 30 ms later.
  await Bun.sleep(240 + 30 + 100);
  const afterActivity = core.sweeps.slice(before);
  expect(afterActivity.length).toBeGreaterThanOrEqual(2);
  expect(gapsOf(afterActivity)[0]).toBeLessThan(30 + 100);
});
