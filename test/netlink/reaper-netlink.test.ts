/**
 * The whole reaper on the netlink path, through the public API: adopted
 * orphans are reaped within a generous bound of their kernel exit time, while
 * Bun.spawn and child_process children running at the same time (forked by
 * us, so never "adopted") keep their true exit codes.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { execFile } from "node:child_process";
import { startOrphanReaper, type OrphanReaper, type ReapedProcess } from "../../src/index.ts";
import { loadLibc } from "../../src/runtime/index.ts";
import { capturingLogger } from "../helpers/logs.ts";
import { makeOrphans, waitUntil, zombieChildren } from "../helpers/processes.ts";

let reaper: OrphanReaper;
const reaped: ReapedProcess[] = [];
beforeAll(async () => {
  loadLibc().setChildSubreaper(true);
  reaper = await startOrphanReaper({ source: "netlink", sweepIntervalMs: 3_600_000, logger: capturingLogger("warn").logger, onReap: (p) => reaped.push(p) });
});
afterAll(() => reaper.stop());

test("the proc connector serves here (root, initial namespaces)", () => {
  expect(reaper.source).toBe("netlink");
  expect(reaper.stats().alongside.sigchld).toMatch(/beside netlink/);
});

test("200 orphans reaped within 50 ms of their exit events, next to 100 Bun.spawn and 50 child_process children", async () => {
  const bun = Array.from({ length: 100 }, (_, i) => Bun.spawn(["sh", "-c", `sleep 0.1; exit ${i % 7}`]).exited);
  const cp = Array.from({ length: 50 }, (_, i) =>
    new Promise<number>((resolve) => execFile("sh", ["-c", `sleep 0.1; exit ${i % 5}`], (error) => resolve(error ? (error.code as number) : 0))),
  );
  await makeOrphans(200, 6, 0.2);
  expect(await Promise.all(bun)).toEqual(Array.from({ length: 100 }, (_, i) => i % 7));
  expect(await Promise.all(cp)).toEqual(Array.from({ length: 50 }, (_, i) => i % 5));
  expect(await waitUntil(() => reaped.length >= 200, 5000)).toBe(true);
  expect(reaped.length).toBe(200);
  expect(await zombieChildren()).toEqual([]);
  // The exit event and SIGCHLD (which stays on beside netlink) race: either may reap first.
  const viaNetlink = reaped.filter((p) => p.lifetimeMs !== undefined);
  expect(viaNetlink.length).toBeGreaterThan(0);
  const late = reaped.filter((p) => !(p.exitCode === 6 && p.provenance === "adopted" && p.seenForMs < 50));
  expect(late).toEqual([]);
  expect(viaNetlink.every((p) => p.source === "netlink")).toBe(true);
  expect(viaNetlink.filter((p) => p.lifetimeMs! >= 50).map((p) => [p.lifetimeMs, p.seenForMs])).toEqual([]);
  const lifetimes = viaNetlink.map((p) => p.lifetimeMs!).sort((a, b) => a - b);
  console.log(`${viaNetlink.length} of 200 reaped from their exit event; lifetimes p50 ${lifetimes[lifetimes.length >> 1]!.toFixed(2)} ms, max ${lifetimes.at(-1)!.toFixed(2)} ms`);
});
