/**
 * The grace rule on real zombies: a zombie of unknown provenance is reaped
 * only after `graceMs` on a running event loop; when the loop was blocked,
 * the window starts again after it, so the runtime gets its turn first.
 */
import { afterEach, beforeAll, expect, test } from "bun:test";
import { loadLibc } from "../src/runtime/index.ts";
import { startOrphanReaper, type OrphanReaper, type ReapedProcess } from "../src/index.ts";
import { capturingLogger } from "./helpers/logs.ts";
import { makeOrphans, spawnOrphans } from "./helpers/orphans.ts";
import { isZombie } from "./helpers/processes.ts";
import { blockEventLoop, blockEventLoopUntil, scaled, waitUntil } from "./helpers/time.ts";

let reaper: OrphanReaper | undefined;
beforeAll(() => loadLibc().setChildSubreaper(true));
afterEach(async () => {
  await reaper?.stop();
  reaper = undefined;
});

const graceMs = 300;

/** Starts a grace-rule reaper; each reap lands in `reaped` with the time it happened. */
async function startGraceReaper(reaped: (ReapedProcess & { at: number })[], source: "sigchld" | "netlink" | "sweep" = "sigchld") {
  reaper = await startOrphanReaper({
    source, alwaysGrace: true, graceMs, sweepIntervalMs: source === "sweep" ? 1_000 : 3_600_000,
    logger: capturingLogger("warn").logger, onReap: (p) => reaped.push({ ...p, at: performance.now() }),
  });
}

test("an unknown zombie waits out graceMs, then is reaped", async () => {
  const reaped: (ReapedProcess & { at: number })[] = [];
  await startGraceReaper(reaped);
  await makeOrphans(1, 0);
  expect(await waitUntil(() => reaper!.stats().pending === 1, 10_000)).toBe(true);
  expect(await waitUntil(() => reaped.length === 1, 10_000)).toBe(true);
  expect(reaped[0]!.provenance).toBe("unknown");
  expect(reaped[0]!.seenForMs).toBeGreaterThanOrEqual(graceMs);
}, scaled(30_000));

// The sweep (every 1 s here) finds them; the window (graceMs) ends before the next sweep, on the core's timer.
test("a zombie reaped when its window ends counts for the source that found it: the sweep, when it serves alone", async () => {
  const reaped: (ReapedProcess & { at: number })[] = [];
  await startGraceReaper(reaped, "sweep");
  expect(reaper!.source).toBe("sweep");
  await makeOrphans(3, 0);
  expect(await waitUntil(() => reaped.length === 3, 10_000)).toBe(true);
  expect(reaped.map((p) => p.source)).toEqual(["sweep", "sweep", "sweep"]);
  expect(reaper!.stats().reapedBySource).toEqual({ netlink: 0, sigchld: 0, sweep: 3 });
  expect(Object.keys(reaper!.stats().lifetimes)).toEqual(["sweep"]);
}, scaled(30_000));

test("a blocked event loop restarts the window: the reap comes graceMs after the loop runs again", async () => {
  const reaped: (ReapedProcess & { at: number })[] = [];
  await startGraceReaper(reaped);
  await makeOrphans(1, 0);
  expect(await waitUntil(() => reaper!.stats().pending === 1, 10_000)).toBe(true);
  blockEventLoop(graceMs + 300); // the grace timer fires at least 300 ms late
  const loopFreeAt = performance.now();
  expect(await waitUntil(() => reaped.length === 1, 10_000)).toBe(true);
  expect(reaped[0]!.at - loopFreeAt).toBeGreaterThanOrEqual(graceMs);
}, scaled(30_000));

test("with the proc connector, an exit read after a blocked loop gets a whole window from then, not from its exit time", async () => {
  // Ours before the reaper started: of unknown origin to the proc connector, so its EXIT is kept with its time.
  const orphans = await spawnOrphans(1, { hold: true });
  try {
    const reaped: (ReapedProcess & { at: number })[] = [];
    await startGraceReaper(reaped, "netlink");
    expect(reaper!.source).toBe("netlink");
    // It exits while the loop is blocked: its EXIT is stamped then, and read only after the block.
    orphans.release();
    expect(blockEventLoopUntil(() => isZombie(orphans.pids[0]!), 10_000)).toBe(true);
    blockEventLoop(graceMs + 300);
    const loopFreeAt = performance.now();
    expect(await waitUntil(() => reaped.length === 1, 10_000)).toBe(true);
    expect(reaped[0]!.at - loopFreeAt).toBeGreaterThanOrEqual(graceMs);
  } finally {
    orphans.kill();
  }
}, scaled(30_000));
