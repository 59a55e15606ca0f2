/**
 * One time scale for every deadline in the suite. ORPHAN_REAPER_TEST_SCALE is
 * a multiplier (default 1) for slow or busy machines, as pino's test helpers
 * have: every wait, every test timeout and every per-file timeout goes through
 * `scaled`. Deadlines bound how long a test may wait for something that must
 * happen; they are never a measure of speed.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { scaled } from "./scale.mjs";

export { sleep };
export { parseTestScale, scaled, TEST_SCALE } from "./scale.mjs";

/**
 * Polls `condition` every 10 ms until it holds or `budgetMs` (scaled) passes;
 * returns whether it held. It never forks: conditions read /proc or memory.
 */
export async function waitUntil(condition: () => boolean | Promise<boolean>, budgetMs: number): Promise<boolean> {
  const deadline = performance.now() + scaled(budgetMs);
  while (performance.now() < deadline) {
    if (await condition()) return true;
    await sleep(10);
  }
  return condition();
}

/**
 * Spins the event loop's thread for `ms` (not scaled: it is the thing under
 * test, e.g. "the loop was late"), so that timers, signals and child exits
 * queue up behind it.
 */
export function blockEventLoop(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/**
 * Spins the event loop's thread until `condition` holds, without yielding
 * (so the runtime cannot reap its children meanwhile), for at most `budgetMs`
 * (scaled). Replaces "block 200 ms and hope the child has exited by then".
 */
export function blockEventLoopUntil(condition: () => boolean, budgetMs: number): boolean {
  const deadline = performance.now() + scaled(budgetMs);
  while (performance.now() < deadline) if (condition()) return true;
  return condition();
}
