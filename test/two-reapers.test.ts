/**
 * Two reapers in one process (two libraries of one daemon, each starting
 * one): the child subreaper flag is held by both, so stopping the first never
 * disarms the second. If it did, new orphans would go to init and the second
 * reaper would see none of them.
 */
import { expect, test } from "bun:test";
import { startOrphanReaper, type ReapedProcess } from "../src/index.ts";
import { loadLibc } from "../src/runtime/index.ts";
import { capturingLogger } from "./helpers/logs.ts";
import { waitUntil, zombieChildren } from "./helpers/processes.ts";
import { spawnOrphans } from "./helpers/orphans.ts";
import { scaled, sleep, TEST_SCALE } from "./helpers/time.ts";

const libc = loadLibc();
const ORPHANS = 20;

test("two reapers, the first stopped: the flag stays set and the second reaps every new orphan", async () => {
  expect(libc.isChildSubreaper()).toBe(false);
  const reapedBySecond: ReapedProcess[] = [];
  const first = await startOrphanReaper({ logger: capturingLogger("warn").logger });
  const second = await startOrphanReaper({ logger: capturingLogger("warn").logger, onReap: (p) => reapedBySecond.push(p) });
  let orphans: Awaited<ReturnType<typeof spawnOrphans>> | undefined;
  try {
    expect([first.stats().role, second.stats().role]).toEqual(["subreaper", "subreaper"]);
    await first.stop();
    expect(libc.isChildSubreaper()).toBe(true);
    expect(second.stats().role).toBe("subreaper");

    orphans = await spawnOrphans(ORPHANS, { hold: true, body: "exit 7" });
    expect(orphans.pids).toHaveLength(ORPHANS);
    orphans.release();
    expect(await waitUntil(() => reapedBySecond.length >= ORPHANS, 20_000)).toBe(true);
    expect(reapedBySecond.map((p) => p.pid).sort()).toEqual([...orphans.pids].sort());
    expect(reapedBySecond.every((p) => p.exitCode === 7 && p.provenance === "adopted")).toBe(true);
    expect(first.stats().reaped).toBe(0);
    expect(await zombieChildren()).toEqual([]);
  } finally {
    orphans?.kill();
    await first.stop();
    await second.stop();
  }
  // The last hold gone, the flag the reapers set is cleared.
  expect(libc.isChildSubreaper()).toBe(false);
}, 40_000 * TEST_SCALE);

test("a flag the daemon set itself before any reaper is left set when the reapers stop", async () => {
  libc.setChildSubreaper(true);
  try {
    const reapers = [
      await startOrphanReaper({ source: "sigchld", logger: capturingLogger("warn").logger }),
      await startOrphanReaper({ source: "sweep", logger: capturingLogger("warn").logger }),
    ];
    for (const reaper of reapers) await reaper.stop();
    expect(libc.isChildSubreaper()).toBe(true);
  } finally {
    libc.setChildSubreaper(false);
  }
}, 30_000 * TEST_SCALE);

test("two reapers running together: each orphan is reaped once, by one of them, and neither counts a failure", async () => {
  const reaped: ReapedProcess[] = [];
  const reapers = [
    await startOrphanReaper({ logger: capturingLogger("warn").logger, onReap: (p) => reaped.push(p) }),
    await startOrphanReaper({ source: "sigchld", logger: capturingLogger("warn").logger, onReap: (p) => reaped.push(p) }),
  ];
  let orphans: Awaited<ReturnType<typeof spawnOrphans>> | undefined;
  try {
    orphans = await spawnOrphans(ORPHANS, { hold: true, body: "exit 9" });
    orphans.release();
    expect(await waitUntil(() => reaped.length >= ORPHANS, 20_000)).toBe(true);
    // Let the slower reaper finish its pass over the same exits (its owed empty peek
    // comes 25 ms after the last SIGCHLD): a second report or a failure would show
    // then. A window for something that must not happen, scaled for a slow loop.
    await sleep(scaled(200));
    expect(reaped.map((p) => p.pid).sort()).toEqual([...orphans.pids].sort());
    expect(reapers.map((r) => r.stats().failures)).toEqual([0, 0]);
    expect(reapers[0]!.stats().reaped + reapers[1]!.stats().reaped).toBe(ORPHANS);
    expect(await zombieChildren()).toEqual([]);
  } finally {
    orphans?.kill();
    for (const reaper of reapers) await reaper.stop();
  }
  expect(libc.isChildSubreaper()).toBe(false);
}, 40_000 * TEST_SCALE);

test("a zombie one reaper waits out a grace for and the other reaps: the first forgets it when its time comes", async () => {
  const graceMs = scaled(1_000);
  // The first listens first, so it sees the zombie first and keeps it pending; its sweep would only come in a minute.
  const waiting = await startOrphanReaper({
    source: "sigchld", alwaysGrace: true, graceMs, sweepIntervalMs: 60_000, sweepMaxIntervalMs: 60_000, logger: capturingLogger("warn").logger,
  });
  const reaping = await startOrphanReaper({ source: "sigchld", logger: capturingLogger("warn").logger });
  let orphans: Awaited<ReturnType<typeof spawnOrphans>> | undefined;
  try {
    orphans = await spawnOrphans(1, { hold: true, body: "exit 0" });
    orphans.release();
    expect(await waitUntil(() => reaping.stats().reaped === 1, 20_000)).toBe(true);
    expect(waiting.stats().pending).toBeGreaterThanOrEqual(1);
    // Once its due time has come (the grace), the first finds nothing to pin: forgotten, not retried over and over.
    expect(await waitUntil(() => waiting.stats().pending === 0, 10_000)).toBe(true);
    expect(waiting.stats()).toMatchObject({ reaped: 0, failures: 0 });
  } finally {
    orphans?.kill();
    await waiting.stop();
    await reaping.stop();
  }
}, 40_000 * TEST_SCALE);
