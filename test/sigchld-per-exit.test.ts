/**
 * The sigchld path per exit: a zombie the peek names, on which the runtime
 * holds no pidfd, is reaped by its PID inside the SIGCHLD handler (no pidfd
 * pinned, no judge), and the runtime's own children beside it keep their
 * exit status. Every libc call the core makes is counted.
 */
import { afterEach, expect, test } from "bun:test";
import pino from "pino";
import { Core } from "../src/core.ts";
import { loadLibc } from "../src/runtime/index.ts";
import { startSigchldSource } from "../src/sources/sigchld.ts";
import type { ReapedProcess } from "../src/types.ts";
import { countingLibc } from "./helpers/counting-libc.ts";
import { spawnOrphans } from "./helpers/orphans.ts";
import { zombieChildren } from "./helpers/processes.ts";
import { scaled, waitUntil } from "./helpers/time.ts";

const ORPHANS = 200;
const RUNTIME_CHILDREN = 20;
const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((cleanup) => cleanup()));

function startCore() {
  const real = loadLibc();
  real.setChildSubreaper(true);
  const { libc, calls } = countingLibc(real);
  const reaped: ReapedProcess[] = [];
  const core = new Core({ libc, logger: pino({ level: "silent" }), graceMs: 0, alwaysGrace: false, reapLogLevel: "debug", runtimeMarksChildrenWithPidfd: true, onReap: (p) => reaped.push(p) });
  const sigchld = startSigchldSource(core);
  cleanups.push(() => (sigchld.stop(), core.stop()));
  return { calls, reaped };
}

test(`${ORPHANS} adopted exits: each reaped by its PID, at most two peeks each, no pidfd pinned`, async () => {
  loadLibc().setChildSubreaper(true);
  const orphans = await spawnOrphans(ORPHANS, { body: "exit 4", hold: true });
  cleanups.push(() => orphans.kill());
  // The shells that forked them are the runtime's: the core starts once they are reaped, so no zombie
  // of the runtime's sits first in the kernel's child list (that case, a blocked peek and the scan it
  // leads to, is the next test's).
  expect(await waitUntil(async () => (await zombieChildren()).length === 0, 10_000)).toBe(true);
  const { calls, reaped } = startCore();
  orphans.release();
  expect(await waitUntil(() => reaped.length >= ORPHANS, 60_000)).toBe(true);

  expect(reaped.length).toBe(ORPHANS);
  expect(new Set(reaped.map((p) => p.pid))).toEqual(new Set(orphans.pids));
  expect(reaped.every((p) => p.source === "sigchld" && p.provenance === "adopted" && p.exitCode === 4)).toBe(true);
  expect(await zombieChildren()).toEqual([]);
  // One peek names each zombie; the look for zombies whose SIGCHLD merged into another's comes once per MERGED_SIGNALS_CHECK_MS.
  expect(calls.get("waitid(P_ALL)") ?? 0).toBeLessThanOrEqual(2 * ORPHANS);
  expect(calls.get("pidfdOpen") ?? 0).toBe(0);
}, scaled(90_000));

test(`${ORPHANS} adopted exits beside ${RUNTIME_CHILDREN} exiting Bun.spawn children, grace 0: the runtime's keep their status`, async () => {
  const { reaped } = startCore();
  const orphans = await spawnOrphans(ORPHANS, { body: "exit 4", hold: true });
  cleanups.push(() => orphans.kill());
  // With graceMs 0 only the runtime-pidfd look keeps these from the reaper; a runtime zombie first in
  // the kernel's child list sends the rest to the core's pass.
  const runtimeChildren = Array.from({ length: RUNTIME_CHILDREN }, (_, i) => Bun.spawn(["sh", "-c", `exit ${10 + i}`]));
  orphans.release();
  const exitCodes = await Promise.all(runtimeChildren.map((child) => child.exited));
  expect(await waitUntil(() => reaped.length >= ORPHANS, 60_000)).toBe(true);

  expect(exitCodes).toEqual(runtimeChildren.map((_, i) => 10 + i));
  expect(new Set(reaped.map((p) => p.pid))).toEqual(new Set(orphans.pids));
  expect(reaped.every((p) => p.exitCode === 4)).toBe(true);
  expect(await zombieChildren()).toEqual([]);
}, scaled(90_000));
