/**
 * The reaper on real processes: real orphans (double fork) reparented to this
 * test process as a child subreaper, next to real Bun.spawn and child_process
 * children whose exit codes must survive. If the reaper ever took a child the
 * runtime tracks, Bun would die of ECHILD and the whole run would fail.
 */
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { execFile } from "node:child_process";
import { loadLibc } from "../src/runtime/index.ts";
import { startOrphanReaper, type OrphanReaper, type ReapedProcess } from "../src/index.ts";
import { capturingLogger } from "./helpers/logs.ts";
import { makeOrphans, openFdCount, waitUntil, zombieChildren } from "./helpers/processes.ts";

let reaper: OrphanReaper | undefined;
// Orphans must come to this process even between reapers (a reaper that made
// us a subreaper would undo it on stop).
beforeAll(() => loadLibc().setChildSubreaper(true));
afterEach(async () => {
  await reaper?.stop();
  reaper = undefined;
});

/** Bun.spawn and child_process children that exit with known codes, all at once. */
function runtimeChildren(bunCount: number, childProcessCount: number) {
  const bun = Array.from({ length: bunCount }, (_, i) =>
    Bun.spawn(["sh", "-c", `sleep 0.$((${i} % 4)); exit ${i % 7}`]).exited,
  );
  const cp = Array.from(
    { length: childProcessCount },
    (_, i) =>
      new Promise<number | null>((resolve) =>
        execFile("sh", ["-c", `sleep 0.1; exit ${i % 5}`], (error) => resolve(error ? (error.code as number) : 0)),
      ),
  );
  return { bun: Promise.all(bun), cp: Promise.all(cp) };
}

async function expectTrueExitCodes(children: ReturnType<typeof runtimeChildren>) {
  expect(await children.bun).toEqual(Array.from({ length: (await children.bun).length }, (_, i) => i % 7));
  expect(await children.cp).toEqual(Array.from({ length: (await children.cp).length }, (_, i) => i % 5));
}

describe.each([
  { source: "sweep", alwaysGrace: true },
  { source: "sweep", alwaysGrace: false },
  { source: "sigchld", alwaysGrace: false },
] as const)("source $source, alwaysGrace $alwaysGrace", ({ source, alwaysGrace }) => {
  test("200 orphans are reaped within sweepIntervalMs + graceMs while 200 Bun.spawn and 50 child_process children keep their exit codes", async () => {
    const sweepIntervalMs = 1000;
    const graceMs = 500;
    const reaped: ReapedProcess[] = [];
    reaper = await startOrphanReaper({
      source, alwaysGrace, sweepIntervalMs, graceMs, logger: capturingLogger("warn").logger,
      onReap: (process) => reaped.push(process),
    });
    expect(reaper.source).toBe(source);
    const children = runtimeChildren(200, 50);
    await makeOrphans(200, 3, 0.2);
    const lastExit = performance.now() + 200;
    await expectTrueExitCodes(children);
    expect(await waitUntil(() => reaped.length === 200, 5000)).toBe(true);
    const allReapedAt = performance.now();
    expect(allReapedAt - lastExit).toBeLessThan(sweepIntervalMs + graceMs);
    expect(await zombieChildren()).toEqual([]);
    expect(reaped.every((p) => p.exitCode === 3 && p.signal === null && p.comm === "sh")).toBe(true);
    expect(new Set(reaped.map((p) => p.provenance))).toEqual(new Set([alwaysGrace ? "unknown" : "adopted"]));
    expect(reaper.stats()).toMatchObject({ source, reaped: 200, pending: 0, failures: 0 });
  });
});

test("a killed orphan is reported with its signal, and the reap is logged at info", async () => {
  const { logger, lines } = capturingLogger("info");
  const reaped: ReapedProcess[] = [];
  reaper = await startOrphanReaper({ source: "sigchld", logger, onReap: (p) => reaped.push(p) });
  const shell = Bun.spawn(["sh", "-c", "sleep 30 >/dev/null & echo $!"], { stdout: "pipe" });
  const orphanPid = Number((await new Response(shell.stdout).text()).trim());
  await shell.exited;
  process.kill(orphanPid, "SIGKILL");
  expect(await waitUntil(() => reaped.length === 1, 3000)).toBe(true);
  expect(reaped[0]).toMatchObject({ pid: orphanPid, comm: "sleep", exitCode: null, signal: 9, source: "sigchld" });
  expect(lines.find((line) => line.msg === "reaped orphan")).toMatchObject({ level: 30, orphan: { pid: orphanPid, signal: 9 } });
  expect(lines[0]).toMatchObject({ msg: expect.stringContaining("orphan reaper started: source sigchld") });
});

test("shouldReap can veto a PID: it stays a zombie and is counted", async () => {
  reaper = await startOrphanReaper({ source: "sigchld", logger: capturingLogger("warn").logger, shouldReap: () => false });
  await makeOrphans(3, 0, 0);
  expect(await waitUntil(() => reaper!.stats().vetoed >= 3, 3000)).toBe(true);
  expect((await zombieChildren()).length).toBe(3);
  await reaper.stop();
  reaper = await startOrphanReaper({ source: "sigchld", logger: capturingLogger("warn").logger });
  expect(await waitUntil(async () => (await zombieChildren()).length === 0, 3000)).toBe(true);
});

test("stop() closes every fd and removes every listener and timer: orphans stay unreaped afterwards", async () => {
  const fdsBefore = openFdCount();
  const listenersBefore = process.listenerCount("SIGCHLD");
  const first = await startOrphanReaper({ source: "sigchld", sweepIntervalMs: 50, logger: capturingLogger("warn").logger });
  expect(process.listenerCount("SIGCHLD")).toBe(listenersBefore + 1);
  await first.stop();
  await first.stop(); // idempotent
  expect(openFdCount()).toBe(fdsBefore);
  expect(process.listenerCount("SIGCHLD")).toBe(listenersBefore);
  expect(first.stats().reaped).toBe(0);
  // A stopped reaper must not act: no SIGCHLD listener, no 50 ms sweep.
  await makeOrphans(2, 0, 0);
  await Bun.sleep(300);
  expect(first.stats().reaped).toBe(0);
  expect((await zombieChildren()).length).toBe(2);
  reaper = await startOrphanReaper({ source: "sweep", sweepIntervalMs: 50, logger: capturingLogger("warn").logger });
  expect(await waitUntil(async () => (await zombieChildren()).length === 0, 3000)).toBe(true);
});
