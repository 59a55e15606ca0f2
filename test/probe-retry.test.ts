/**
 * A slow host does not lock in a worse source: a netlink probe that failed
 * for time is probed again later, with a longer timeout, while sigchld
 * serves; when it succeeds netlink becomes the source, and the switch shows
 * in stats(). A probe that failed for good is not retried.
 */
import { afterEach, expect, test } from "bun:test";
import { PROBES, chooseSources, type Probe } from "../src/chooser.ts";
import type { ReapedProcess } from "../src/index.ts";
import { loadLibc } from "../src/runtime/index.ts";
import { normalizeOptions } from "../src/options.ts";
import { Core } from "../src/core.ts";
import { RETRY_FIRST_DELAY_MS, SourceWiring } from "../src/source-wiring.ts";
import { capturingLogger } from "./helpers/logs.ts";
import { waitUntil, zombieChildren } from "./helpers/processes.ts";
import { spawnOrphans } from "./helpers/orphans.ts";
import { scaled, TEST_SCALE } from "./helpers/time.ts";

const libc = loadLibc();
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (let cleanup = cleanups.pop(); cleanup; cleanup = cleanups.pop()) await cleanup();
});

function contextWith(logger = capturingLogger("warn").logger, onReap?: (p: ReapedProcess) => void) {
  const core = new Core({ libc, logger, graceMs: 2000, alwaysGrace: false, reapLogLevel: "debug", runtimeMarksChildrenWithPidfd: true, onReap });
  cleanups.push(() => core.stop());
  return { core, libc, logger };
}

/** The real netlink probe, except that its first attempt reports a time-out. */
function timingOutOnce(retryable: boolean): { probe: Probe; timeouts: number[] } {
  const timeouts: number[] = [];
  const probe: Probe = async (context, options, settings) => {
    timeouts.push(settings.timeoutMs);
    if (timeouts.length === 1) return { ok: false, reason: `no subscription ack within ${settings.timeoutMs} ms`, retryable };
    return PROBES.netlink(context, options, settings);
  };
  return { probe, timeouts };
}

test("a netlink probe that timed out: sigchld now, netlink after a retry, the switch in the wiring's state", async () => {
  libc.setChildSubreaper(true);
  cleanups.push(() => libc.setChildSubreaper(false));
  const { logger, lines } = capturingLogger("info");
  const reaped: ReapedProcess[] = [];
  const context = contextWith(logger, (p) => reaped.push(p));
  const options = normalizeOptions({ netlinkProbeTimeoutMs: 50 });
  const { probe, timeouts } = timingOutOnce(true);
  const probes = { ...PROBES, netlink: probe };
  const plan = await chooseSources(context, options, probes);
  expect(plan.primary?.name).toBe("sigchld");
  expect(plan.retry).toBe("netlink");
  const wiring = new SourceWiring(context, options, plan, probes);
  cleanups.push(() => wiring.stop());
  wiring.start();
  expect(wiring.source).toBe("sigchld");
  expect(wiring.retry).toMatchObject({ source: "netlink", attempts: 0 });
  expect(wiring.notChosen.netlink).toBe("no subscription ack within 50 ms");

  expect(await waitUntil(() => wiring.source === "netlink", 60_000)).toBe(true);
  // A busy host may need more than one retry: each allows 4 times longer.
  expect(timeouts).toEqual(timeouts.map((_, attempt) => Math.min(50 * 4 ** attempt, 10_000)));
  expect(timeouts.length).toBeGreaterThanOrEqual(2);
  expect(wiring.retry).toBeUndefined();
  expect(wiring.changes).toEqual([expect.objectContaining({ from: "sigchld", to: "netlink" })]);
  expect(wiring.alongside.sigchld).toMatch(/beside netlink/);
  expect(wiring.notChosen.netlink).toBeUndefined();
  expect(lines).toContainEqual(expect.objectContaining({ level: 30, msg: "orphan reaper switched source: sigchld -> netlink" }));
  expect(context.core.exactSource?.name).toBe("netlink");

  // Netlink serves: adopted orphans are reaped with the kernel's exit time.
  const orphans = await spawnOrphans(10, { hold: true, body: "exit 4" });
  cleanups.push(() => orphans.kill());
  orphans.release();
  expect(await waitUntil(() => reaped.length >= 10, 10_000)).toBe(true);
  expect(reaped.every((p) => p.exitCode === 4)).toBe(true);
  expect(reaped.some((p) => p.source === "netlink")).toBe(true);
  expect(await zombieChildren()).toEqual([]);
}, 90_000 * TEST_SCALE);

test("a probe that failed for good is not retried", async () => {
  const context = contextWith();
  const options = normalizeOptions({});
  const { probe, timeouts } = timingOutOnce(false);
  const probes = { ...PROBES, netlink: probe };
  const plan = await chooseSources(context, options, probes);
  expect(plan.retry).toBeUndefined();
  const wiring = new SourceWiring(context, options, plan, probes);
  cleanups.push(() => wiring.stop());
  wiring.start();
  expect(wiring.retry).toBeUndefined();
  await Bun.sleep(RETRY_FIRST_DELAY_MS * 1.5);
  expect(timeouts).toHaveLength(1);
  expect(wiring.source).toBe("sigchld");
}, scaled(20_000));

test("a probe that throws (its spawn failed) falls back to the next source with the reason", async () => {
  const context = contextWith();
  const throwing: Probe = async () => {
    throw new Error('Executable not found in $PATH: "true"');
  };
  const plan = await chooseSources(context, normalizeOptions({}), { ...PROBES, netlink: throwing });
  cleanups.push(() => plan.primary?.source.stop());
  expect(plan.primary?.name).toBe("sigchld");
  expect(plan.notChosen.netlink).toBe('the probe failed: Executable not found in $PATH: "true"');
  expect(plan.retry).toBeUndefined();
});
