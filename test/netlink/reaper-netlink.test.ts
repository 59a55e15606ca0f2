/**
 * The whole reaper on the netlink path, through the public API: adopted
 * orphans are reaped with their exit codes and a lifetime measured from
 * their kernel exit time, while Bun.spawn and child_process children running
 * at the same time (forked by us, so never "adopted") keep their true exit
 * codes. How fast is the benchmark's business (BENCHMARKS.md), not this test's.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startOrphanReaper, type OrphanReaper, type ReapedProcess } from "../../src/index.ts";
import { loadLibc } from "../../src/runtime/index.ts";
import { capturingLogger } from "../helpers/logs.ts";
import { makeOrphans } from "../helpers/orphans.ts";
import { spawnRuntimeChildren, zombieChildren } from "../helpers/processes.ts";
import { scaled, waitUntil } from "../helpers/time.ts";
import { PROBE_HOOK_TIMEOUT_MS, PROBE_TIMEOUT_MS } from "./harness.ts";

let reaper: OrphanReaper;
const reaped: ReapedProcess[] = [];
beforeAll(async () => {
  loadLibc().setChildSubreaper(true);
  reaper = await startOrphanReaper({
    source: "netlink", netlinkProbeTimeoutMs: PROBE_TIMEOUT_MS, sweepIntervalMs: 3_600_000,
    logger: capturingLogger("warn").logger, onReap: (p) => reaped.push(p),
  });
}, PROBE_HOOK_TIMEOUT_MS);
afterAll(() => reaper.stop());

test("the proc connector serves here (root, initial namespaces)", () => {
  expect(reaper.source).toBe("netlink");
  expect(reaper.stats().alongside.sigchld).toMatch(/beside netlink/);
});

test("200 orphans reaped with their exit codes and lifetimes, next to 100 Bun.spawn and 50 child_process children", async () => {
  const children = spawnRuntimeChildren(100, 50);
  const orphans = await makeOrphans(200, 6);
  expect(await children.exitCodes).toEqual(children.expected);
  expect(await waitUntil(() => reaped.length >= 200, 30_000)).toBe(true);
  expect(reaped.map((p) => p.pid).sort()).toEqual([...orphans].sort());
  expect(await zombieChildren()).toEqual([]);
  expect(reaped.filter((p) => !(p.exitCode === 6 && p.provenance === "adopted"))).toEqual([]);
  // The exit event and SIGCHLD (which stays on beside netlink) race: either may reap first;
  // a reap that came from an exit event reports the lifetime since the kernel's exit.
  const viaNetlink = reaped.filter((p) => p.lifetimeMs !== undefined);
  expect(viaNetlink.every((p) => p.source === "netlink" && p.lifetimeMs! >= 0)).toBe(true);
  const lifetimes = viaNetlink.map((p) => p.lifetimeMs!).sort((a, b) => a - b);
  console.log(`${viaNetlink.length} of 200 reaped from their exit event; lifetimes p50 ${lifetimes[lifetimes.length >> 1]?.toFixed(2)} ms, max ${lifetimes.at(-1)?.toFixed(2)} ms`);
}, scaled(60_000));
