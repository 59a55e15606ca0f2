/**
 * ENOBUFS for real: the smallest receive queue the kernel grants, and 2000
 * orphans SIGKILLed while the event loop cannot read. Lost events are
 * counted, warned about once, answered with a scan, and reading goes on.
 */
import { expect, test } from "bun:test";
import { startOrphanReaper } from "../../src/index.ts";
import { capturingLogger } from "../helpers/logs.ts";
import { makeOrphans, spawnOrphans } from "../helpers/orphans.ts";
import { isZombie } from "../helpers/processes.ts";
import { blockEventLoopUntil, scaled, waitUntil } from "../helpers/time.ts";

const ORPHANS = 2000;

test(`ENOBUFS while ${ORPHANS} orphans exit: counted, warned about once, scanned, and reading goes on`, async () => {
  const { logger, lines } = capturingLogger("debug");
  const reaped = new Set<number>();
  const reaper = await startOrphanReaper({
    source: "netlink",
    netlinkReceiveBufferBytes: 1024, // the kernel rounds it up to its minimum: a few events
    sweepIntervalMs: 600_000,
    logger,
    reapLogLevel: "debug",
    onReap: (orphan) => void reaped.add(orphan.pid),
  });
  try {
    expect(reaper.source).toBe("netlink");
    // Our orphans, alive, waiting on a gate (they end by themselves should this test die).
    const { pids: orphans } = await spawnOrphans(ORPHANS, { hold: true });
    expect(orphans).toHaveLength(ORPHANS);
    // All die while the loop cannot read: the receive queue overflows.
    for (const pid of orphans) process.kill(pid, "SIGKILL");
    // Block until the last 200 are zombies: their exit events queue meanwhile.
    blockEventLoopUntil(() => orphans.slice(-200).every(isZombie), 20_000);
    expect(await waitUntil(() => orphans.every((pid) => reaped.has(pid)), 60_000)).toBe(true);
    expect(reaper.stats().overruns).toBeGreaterThan(0);
    const warnings = lines.filter((line) => line.level === 40 && String(line.msg).includes("ENOBUFS"));
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings.length).toBeLessThanOrEqual(2); // one per 10 s at most
    expect(String(warnings[0]?.msg)).toContain("netlinkReceiveBufferBytes");
    expect(warnings[0]?.receiveBufferBytes).toBeGreaterThan(0);

    // Still reading: a later orphan is reaped from its exit event.
    const [latePid] = await makeOrphans(1, 3);
    expect(await waitUntil(() => reaped.has(latePid!), 20_000)).toBe(true);
  } finally {
    await reaper.stop();
  }
}, scaled(120_000));
