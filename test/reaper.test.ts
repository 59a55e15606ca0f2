/**
 * The reaper on real processes: real orphans (double fork) reparented to this
 * test process as a child subreaper, next to real Bun.spawn and child_process
 * children whose exit codes must survive. If the reaper ever took a child the
 * runtime tracks, Bun would die of ECHILD and the whole run would fail.
 */
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { loadLibc } from "../src/runtime/index.ts";
import { startOrphanReaper, type OrphanReaper, type ReapedProcess } from "../src/index.ts";
import { capturingLogger } from "./helpers/logs.ts";
import { makeOrphans, spawnOrphans } from "./helpers/orphans.ts";
import { fdsOpenedSince, isZombie, openFds, spawnRuntimeChildren, zombieChildren } from "./helpers/processes.ts";
import { scaled, sleep, waitUntil } from "./helpers/time.ts";

let reaper: OrphanReaper | undefined;
// Orphans must come to this process even between reapers (a reaper that made
// us a subreaper would undo it on stop).
beforeAll(() => loadLibc().setChildSubreaper(true));
afterEach(async () => {
  await reaper?.stop();
  reaper = undefined;
});

describe.each([
  { source: "sweep", alwaysGrace: true },
  { source: "sweep", alwaysGrace: false },
  { source: "sigchld", alwaysGrace: false },
] as const)("source $source, alwaysGrace $alwaysGrace", ({ source, alwaysGrace }) => {
  test("200 orphans are reaped while 200 Bun.spawn and 50 child_process children keep their exit codes", async () => {
    const reaped: ReapedProcess[] = [];
    reaper = await startOrphanReaper({
      source, alwaysGrace, sweepIntervalMs: 1000, graceMs: 500, logger: capturingLogger("warn").logger,
      onReap: (process) => reaped.push(process),
    });
    expect(reaper.source).toBe(source);
    const children = spawnRuntimeChildren(200, 50);
    const orphans = await makeOrphans(200, 3);
    expect(await children.exitCodes).toEqual(children.expected);
    expect(await waitUntil(() => reaped.length === 200, 30_000)).toBe(true);
    expect(reaped.map((p) => p.pid).sort()).toEqual([...orphans].sort());
    expect(await zombieChildren()).toEqual([]);
    expect(reaped.every((p) => p.exitCode === 3 && p.signal === null && p.comm === "sh")).toBe(true);
    expect(new Set(reaped.map((p) => p.provenance))).toEqual(new Set([alwaysGrace ? "unknown" : "adopted"]));
    // Zombies of runtime children that were pending when Bun reaped them leave the list at the next look.
    expect(await waitUntil(() => reaper!.stats().pending === 0, 10_000)).toBe(true);
    expect(reaper.stats()).toMatchObject({ source, reaped: 200, pending: 0, failures: 0 });
  }, scaled(60_000));
});

test("a killed orphan is reported with its signal, and the reap is logged at info", async () => {
  const { logger, lines } = capturingLogger("info");
  const reaped: ReapedProcess[] = [];
  reaper = await startOrphanReaper({ source: "sigchld", logger, onReap: (p) => reaped.push(p) });
  const { pids: [orphanPid] } = await spawnOrphans(1, { hold: true });
  process.kill(orphanPid!, "SIGKILL");
  expect(await waitUntil(() => reaped.length === 1, 10_000)).toBe(true);
  expect(reaped[0]).toMatchObject({ pid: orphanPid, comm: "sh", exitCode: null, signal: 9, source: "sigchld" });
  expect(lines.find((line) => line.msg === "reaped orphan")).toMatchObject({ level: 30, orphan: { pid: orphanPid, signal: 9 } });
  expect(lines[0]).toMatchObject({ msg: expect.stringContaining("orphan reaper started: source sigchld") });
}, scaled(20_000));

test("shouldReap can veto a PID: it stays a zombie and is counted", async () => {
  reaper = await startOrphanReaper({ source: "sigchld", logger: capturingLogger("warn").logger, shouldReap: () => false });
  const orphans = await makeOrphans(3, 0);
  expect(await waitUntil(() => reaper!.stats().vetoed >= 3, 10_000)).toBe(true);
  expect((await zombieChildren()).sort()).toEqual([...orphans].sort());
  await reaper.stop();
  reaper = await startOrphanReaper({ source: "sigchld", logger: capturingLogger("warn").logger });
  expect(await waitUntil(async () => (await zombieChildren()).length === 0, 10_000)).toBe(true);
}, scaled(30_000));

test("a shouldReap that throws vetoes that zombie, with a warning; the other orphans are still reaped", async () => {
  const { logger, lines } = capturingLogger("warn");
  const { pids: [cursed] } = await spawnOrphans(1, { hold: true });
  const reaped: number[] = [];
  reaper = await startOrphanReaper({
    source: "sigchld", logger, onReap: (p) => reaped.push(p.pid),
    shouldReap: ({ pid }) => {
      if (pid === cursed) throw new Error("the user's bug");
      return true;
    },
  });
  process.kill(cursed!, "SIGKILL");
  expect(await waitUntil(() => reaper!.stats().vetoed === 1, 10_000)).toBe(true);
  const others = await makeOrphans(5, 0);
  expect(await waitUntil(() => others.every((pid) => reaped.includes(pid)), 10_000)).toBe(true);
  expect(reaper.stats()).toMatchObject({ vetoed: 1, failures: 0 });
  expect(isZombie(cursed!)).toBe(true);
  expect(lines.filter((line) => String(line.msg).startsWith("shouldReap threw"))).toEqual([
    expect.objectContaining({ level: 40, orphan: { pid: cursed }, err: expect.objectContaining({ message: "the user's bug" }) }),
  ]);
  await reaper.stop();
  reaper = await startOrphanReaper({ source: "sigchld", logger: capturingLogger("warn").logger });
  expect(await waitUntil(async () => (await zombieChildren()).length === 0, 10_000)).toBe(true);
}, scaled(30_000));

test("stop() closes every fd and removes every listener and timer: orphans stay unreaped afterwards", async () => {
  const fdsBefore = openFds();
  const listenersBefore = process.listenerCount("SIGCHLD");
  const first = await startOrphanReaper({ source: "sigchld", sweepIntervalMs: 50, logger: capturingLogger("warn").logger });
  expect(process.listenerCount("SIGCHLD")).toBe(listenersBefore + 1);
  await first.stop();
  await first.stop(); // idempotent
  // The runtime closes its pidfd on the start-up probe's child once it has reaped it: wait for that, bounded.
  // Others may close meanwhile (a child of an earlier test reaped late): what counts is that none of ours stays.
  expect(await waitUntil(() => fdsOpenedSince(fdsBefore).length === 0, 10_000)).toBe(true);
  expect(process.listenerCount("SIGCHLD")).toBe(listenersBefore);
  expect(first.stats().reaped).toBe(0);
  // A stopped reaper must not act: no SIGCHLD listener, no 50 ms sweep.
  const orphans = await makeOrphans(2, 0);
  expect(await waitUntil(() => orphans.every(isZombie), 10_000)).toBe(true);
  await sleep(300); // several of its sweep intervals: a quiet window, not a wait for an event
  expect(first.stats().reaped).toBe(0);
  expect(orphans.every(isZombie)).toBe(true);
  reaper = await startOrphanReaper({ source: "sweep", sweepIntervalMs: 50, logger: capturingLogger("warn").logger });
  expect(await waitUntil(async () => (await zombieChildren()).length === 0, 10_000)).toBe(true);
}, scaled(30_000));
