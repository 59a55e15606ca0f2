/**
 * Timer options past what setTimeout holds (2^31-1 ms) used to fire every
 * millisecond: sweepIntervalMs 2**31 cost 68 ms of CPU a second, graceMs 1e12
 * with a zombie waiting 210 ms. Such values are now rejected, and the
 * largest accepted ones leave the daemon idle. What is compared is a count,
 * not a speed: how often the event loop's thread woke up over 2 s, against an
 * idle daemon's over the same 2 s. A timer firing every millisecond wakes it
 * about 1800 times (even on one busy CPU); an idle daemon, about 5 times.
 */
import { expect, test } from "bun:test";
import { startOrphanReaper } from "../src/index.ts";
import { scaled } from "./helpers/time.ts";

const fixture = `${import.meta.dir}/fixtures/idle-cpu.ts`;
const TIMER_MAX_MS = 2 ** 31 - 1;
/** Wakeups over 2 s that still count as idle: generous beside an idle daemon's (about 5), far below a 1 ms timer's (about 1800). */
const idleBound = (idleWakeups: number) => idleWakeups * 4 + 100;

function over2s(options: object): { wakeups: number; cpuMs: number; pending: number; source: string } {
  const run = Bun.spawnSync([process.execPath, fixture, JSON.stringify(options)]);
  const stdout = run.stdout.toString().trim();
  if (run.exitCode !== 0 || !stdout) throw new Error(`fixture failed (${run.exitCode}): ${run.stderr}`);
  return JSON.parse(stdout.split("\n").at(-1)!);
}

test("sweepIntervalMs 2**31 and graceMs 1e12 are rejected, naming the option and the bound", async () => {
  await expect(startOrphanReaper({ sweepIntervalMs: 2 ** 31 })).rejects.toThrow(/"sweepIntervalMs" must be an integer from 1 to 2147483647/);
  await expect(startOrphanReaper({ graceMs: 1e12 })).rejects.toThrow(/"graceMs" must be an integer from 0 to 2147483647/);
});

test("with the largest timer options and a zombie waiting out its grace, the daemon stays idle", () => {
  const idle = over2s({ enabled: false });
  for (const source of ["auto", "sigchld"]) {
    const largest = { source, sweepIntervalMs: TIMER_MAX_MS, sweepMaxIntervalMs: TIMER_MAX_MS, graceMs: TIMER_MAX_MS, alwaysGrace: true };
    const result = over2s(largest);
    console.log(`idle-cpu ${source}: ${JSON.stringify(result)}; idle daemon: ${JSON.stringify(idle)}`);
    expect({ source, pending: result.pending }).toEqual({ source, pending: 1 });
    expect(result.wakeups).toBeLessThan(idleBound(idle.wakeups));
  }
}, scaled(60_000));
