/**
 * O(1) per exit on the netlink path: an exit the proc connector names is
 * reaped by its PID, right after the drain that read it, with no pidfd. Every libc call the core makes is counted: no
 * waitid(P_ALL) peek per exit (only the once-a-second check for zombies
 * reparented to us after their exit event), and never a runtime-pidfd look
 * (a poll over the fd table) for a zombie the kernel's events prove adopted.
 */
import { afterAll, expect, test } from "bun:test";
import pino from "pino";
import { Core } from "../../src/core.ts";
import { loadLibc } from "../../src/runtime/index.ts";
import { probeNetlinkSource } from "../../src/sources/netlink.ts";
import { startSigchldSource } from "../../src/sources/sigchld.ts";
import type { ReapedProcess } from "../../src/types.ts";
import { countingLibc } from "../helpers/counting-libc.ts";
import { waitUntil, zombieChildren } from "../helpers/processes.ts";
import { DEFAULT_SETTINGS } from "./harness.ts";
import { scaled } from "../helpers/time.ts";

const ORPHANS = 100;
const cleanups: (() => void)[] = [];
afterAll(() => cleanups.forEach((cleanup) => cleanup()));

test(`${ORPHANS} adopted exits: reaped by PID, no P_ALL peek per exit, no runtime-pidfd look`, async () => {
  const real = loadLibc();
  real.setChildSubreaper(true);
  const { libc, calls } = countingLibc(real);
  const logger = pino({ level: "silent" });
  const reaped: ReapedProcess[] = [];
  const core = new Core({ libc, logger, graceMs: 2000, alwaysGrace: false, reapLogLevel: "debug", runtimeMarksChildrenWithPidfd: true, onReap: (p) => reaped.push(p) });
  const probe = await probeNetlinkSource(libc, logger, DEFAULT_SETTINGS);
  if (!probe.ok) throw new Error(`netlink probe failed: ${probe.reason}`);
  core.useExactSource(probe.source);
  const sigchld = startSigchldSource(core);
  cleanups.push(() => (sigchld.stop(), probe.source.stop(), core.stop()));
  calls.clear();

  // Each orphan's parent (the inner subshell's) exits at once: it is ours before it exits, 10 ms apart.
  const maker = Bun.spawn(["sh", "-c", `i=0; while [ $i -lt ${ORPHANS} ]; do ( (sleep 1.$((i + 10)); exit 4) & ); i=$((i+1)); done`]);
  expect(await maker.exited).toBe(0);
  expect(await waitUntil(() => reaped.length === ORPHANS, 60_000)).toBe(true);

  expect(reaped.every((p) => p.source === "netlink" && p.provenance === "adopted" && p.exitCode === 4)).toBe(true);
  expect(await zombieChildren()).toEqual([]);
  // Reaped by PID right after the drain that read the exit, no pidfd pinned; only an exit read before its
  // process was waitable (the EXIT event comes first) goes on to the pass, which pins.
  expect(calls.get("waitid(P_PID)") ?? 0).toBeGreaterThanOrEqual((ORPHANS * 3) / 4);
  expect(calls.get("pidfdOpen") ?? 0).toBeLessThan(ORPHANS / 4);
  // Peeks come only from the once-a-second check for reparented zombies and from SIGCHLDs whose exits
  // an earlier drain already read (signals merge and arrive late): far fewer than one per exit.
  expect(calls.get("waitid(P_ALL)") ?? 0).toBeLessThan(ORPHANS / 4);
  expect(calls.get("readableAmong") ?? 0).toBe(0);
  expect(calls.get("readableBelow") ?? 0).toBe(0);
  expect(calls.get("waitablePidOfFd") ?? 0).toBe(0);
}, scaled(90_000));
