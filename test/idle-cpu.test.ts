/**
 * Timer options past what setTimeout holds (2^31-1 ms) used to fire every
 * millisecond: sweepIntervalMs 2**31 cost 68 ms of CPU a second, graceMs 1e12
 * with a zombie waiting 210 ms. Such values are now rejected, and the
 * largest accepted ones leave the daemon idle. CPU is compared with an idle
 * daemon's over the same 2 s, with a generous margin (it is not a latency).
 */
import { expect, test } from "bun:test";
import { startOrphanReaper } from "../src/index.ts";

const fixture = `${import.meta.dir}/fixtures/idle-cpu.ts`;
const TIMER_MAX_MS = 2 ** 31 - 1;
/** CPU over 2 s above the idle daemon's that still counts as idle; the bugs cost 136 and 420 ms. */
const IDLE_MARGIN_MS = 60;

function cpuOver2s(options: object): { cpuMs: number; pending: number; source: string } {
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
  const idle = cpuOver2s({ enabled: false });
  for (const source of ["auto", "sigchld"]) {
    const largest = { source, sweepIntervalMs: TIMER_MAX_MS, sweepMaxIntervalMs: TIMER_MAX_MS, graceMs: TIMER_MAX_MS, alwaysGrace: true };
    const result = cpuOver2s(largest);
    expect({ source, pending: result.pending }).toEqual({ source, pending: 1 });
    expect(result.cpuMs).toBeLessThan(idle.cpuMs + IDLE_MARGIN_MS);
  }
}, 60_000);
