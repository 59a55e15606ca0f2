/**
 * The core's first duty: never reap a child the runtime tracks. The first
 * test shows the stake (Bun dies when one is stolen); the second gives the
 * core a runtime zombie under the most eager settings (grace 0, no proof
 * needed) before Bun can reap it, and checks it is left to Bun.
 */
import { expect, test } from "bun:test";
import { loadLibc } from "../src/runtime/index.ts";
import { readStat } from "../src/procfs.ts";
import { Core } from "../src/core.ts";
import { capturingLogger } from "./helpers/logs.ts";
import { Gate, spawnOrphans } from "./helpers/orphans.ts";
import { isZombie } from "./helpers/processes.ts";
import { blockEventLoopUntil, scaled, waitUntil } from "./helpers/time.ts";

test("reaping a zombie that Bun.spawn tracks kills Bun with ECHILD (the hazard, for real)", async () => {
  const run = Bun.spawnSync([process.execPath, `${import.meta.dir}/fixtures/steal-runtime-child.ts`]);
  const output = `${run.stdout}${run.stderr}`;
  expect(output).toContain('"kind":"reaped"');
  expect(output).toContain("ECHILD");
  expect(output).not.toContain("survived");
  expect(run.exitCode).not.toBe(0);
}, scaled(20_000));

test("the core leaves a zombie the runtime tracks, even with graceMs 0 and alwaysGrace", async () => {
  const { logger, lines } = capturingLogger("debug");
  const core = new Core({ libc: loadLibc(), logger, graceMs: 0, alwaysGrace: true, reapLogLevel: "info", runtimeMarksChildrenWithPidfd: false });
  const child = Bun.spawn(["sh", "-c", "exit 42"]);
  // Bun cannot reap while the loop is blocked.
  expect(blockEventLoopUntil(() => isZombie(child.pid), 10_000)).toBe(true);
  core.sweep();
  expect(await child.exited).toBe(42);
  // The core did judge it (before Bun reaped it) and left it.
  expect(lines).toContainEqual(expect.objectContaining({ pid: child.pid, msg: expect.stringContaining("left to it") }));
  expect(await waitUntil(() => readStat(child.pid) === undefined, 10_000)).toBe(true);
  core.stop();
  expect(core.counts()).toMatchObject({ reaped: 0, failures: 0 });
  expect(core.pendingCount).toBe(0);
}, scaled(30_000));

test("orphans behind a runtime zombie in the kernel's child list are still reaped, and the runtime's child is not", async () => {
  const libc = loadLibc();
  libc.setChildSubreaper(true);
  const { logger, lines } = capturingLogger("debug");
  const core = new Core({ libc, logger, graceMs: 2000, alwaysGrace: false, reapLogLevel: "info", runtimeMarksChildrenWithPidfd: true });
  // Spawned first, so it comes first in our children list and waitid(P_ALL)
  // names it first; the orphans are reparented behind it when their shells exit.
  const gate = new Gate();
  const runtimeChild = Bun.spawn(["sh", "-c", "read _; exit 5"], { stdin: gate.readEnd });
  gate.close();
  const orphanCount = 20; // more than the reaper takes one by one before a full scan
  const orphans = await spawnOrphans(orphanCount, { body: "exit 3", hold: true });
  gate.open();
  orphans.release();
  // Bun cannot reap while the loop is blocked.
  const allZombies = () => isZombie(runtimeChild.pid) && orphans.pids.every(isZombie);
  expect(blockEventLoopUntil(allZombies, 10_000)).toBe(true);
  core.onChildSignal();
  expect(await runtimeChild.exited).toBe(5);
  expect(await waitUntil(() => core.counts().reaped === orphanCount, 10_000)).toBe(true);
  expect(lines).toContainEqual(expect.objectContaining({ pid: runtimeChild.pid, msg: expect.stringContaining("left to it") }));
  core.stop();
  expect(core.counts()).toMatchObject({ reaped: orphanCount, failures: 0 });
}, scaled(30_000));
