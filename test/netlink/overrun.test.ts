/**
 * ENOBUFS for real: the smallest receive queue the kernel grants, and 2000
 * orphans SIGKILLed while the event loop cannot read. Lost events are
 * counted, warned about once, answered with a scan, and reading goes on.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { startOrphanReaper } from "../../src/index.ts";
import { capturingLogger } from "../helpers/logs.ts";
import { waitUntil } from "../helpers/processes.ts";

const ORPHANS = 2000;

function isZombie(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").slice(readFileSync(`/proc/${pid}/stat`, "utf8").lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}

/** Blocks the loop until `count` of `pids` are zombies (or 20 s pass): their exit events queue meanwhile. */
function blockUntilZombies(pids: readonly number[], count: number): void {
  const deadline = performance.now() + 20_000;
  while (pids.filter(isZombie).length < count && performance.now() < deadline);
}

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
    // sh forks the sleeps and exits: they are our orphans, alive.
    const parent = Bun.spawn(["sh", "-c", `for i in $(seq ${ORPHANS}); do sleep 600 >/dev/null 2>&1 & echo $!; done`], { stdout: "pipe" });
    const orphans = (await new Response(parent.stdout).text()).trim().split("\n").map(Number);
    await parent.exited;
    expect(orphans).toHaveLength(ORPHANS);
    // All die while the loop cannot read: the receive queue overflows.
    for (const pid of orphans) process.kill(pid, "SIGKILL");
    blockUntilZombies(orphans.slice(-200), 200);
    expect(await waitUntil(() => orphans.every((pid) => reaped.has(pid)), 60_000)).toBe(true);
    expect(reaper.stats().overruns).toBeGreaterThan(0);
    const warnings = lines.filter((line) => line.level === 40 && String(line.msg).includes("ENOBUFS"));
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings.length).toBeLessThanOrEqual(2); // one per 10 s at most
    expect(String(warnings[0]?.msg)).toContain("netlinkReceiveBufferBytes");
    expect(warnings[0]?.receiveBufferBytes).toBeGreaterThan(0);

    // Still reading: a later orphan is reaped from its exit event.
    const late = Bun.spawn(["sh", "-c", "(sleep 0.05; exit 3) >/dev/null & echo $!"], { stdout: "pipe" });
    const latePid = Number((await new Response(late.stdout).text()).trim());
    await late.exited;
    expect(await waitUntil(() => reaped.has(latePid), 20_000)).toBe(true);
  } finally {
    await reaper.stop();
  }
}, 120_000);
