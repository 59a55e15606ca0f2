import { afterAll, beforeAll, expect, test } from "bun:test";
import { loadLibc } from "../../src/libc.ts";
import { setReceiveBuffer } from "../../src/netlink/socket.ts";
import type { EventSource } from "../../src/sources/source.ts";
import { makeOrphans, spawnOrphans } from "../helpers/orphans.ts";
import { isZombie } from "../helpers/processes.ts";
import { blockEventLoopUntil, scaled } from "../helpers/time.ts";
import { netlinkSocketFds, startRecordingSource, until, type RecordingCore, PROBE_HOOK_TIMEOUT_MS } from "./harness.ts";

const ORPHANS = 2000;
let core: RecordingCore;
let source: EventSource;

/**
 * The smallest queue the kernel grants (it rounds up to its minimum), set once
 * the source is subscribed: a probe on so small a queue loses its ack when
 * other processes on the machine listen too (the socket is in the group
 * before its filter is on, and their events fill the queue), which is the
 * probe's problem, not this test's.
 */
async function startOnSmallestQueue(): Promise<void> {
  const socketsBefore = new Set(netlinkSocketFds().values());
  ({ core, source } = await startRecordingSource());
  const [fd] = [...netlinkSocketFds()].find(([, inode]) => !socketsBefore.has(inode)) ?? [];
  if (fd === undefined) throw new Error("the source's socket is not among our fds");
  setReceiveBuffer(loadLibc(), Number(fd), 1);
}

beforeAll(startOnSmallestQueue, PROBE_HOOK_TIMEOUT_MS);
afterAll(() => source?.stop());

test(`ENOBUFS while ${ORPHANS} orphans exit: counted, logged once, scanned, and listening goes on`, async () => {
  const socketFdsBefore = netlinkSocketFds().size;
  // Our orphans, alive, waiting on one gate.
  const { pids: orphans, release } = await spawnOrphans(ORPHANS, { hold: true });
  for (const pid of orphans) core.reapable.add(pid);
  expect(orphans).toHaveLength(ORPHANS);

  // They all exit while the loop cannot read: the receive queue overflows.
  release();
  expect(blockEventLoopUntil(() => orphans.every(isZombie), 60_000)).toBe(true);
  expect(await until(() => core.counts.overruns > 0, 10_000)).toBe(true);
  expect(core.scans.map((scan) => scan.reason)).toContain("overrun");
  // Events that fit were noted, the scan took the rest: nothing is left.
  expect(await until(() => orphans.every((pid) => core.reaped.has(pid)), 60_000)).toBe(true);
  // Once per burst, not once per overrun (a loaded machine can split one burst in two).
  const warnings = core.logs.filter((line) => line.level === 40);
  const quietRepeats = core.logs.filter((line) => line.level === 20 && String(line.msg).includes("ENOBUFS"));
  expect(warnings.length).toBeGreaterThanOrEqual(1);
  expect(warnings.length + quietRepeats.length).toBe(core.counts.overruns);
  if (core.counts.overruns > 2) expect(warnings.length).toBeLessThan(core.counts.overruns);
  expect(warnings[0]?.msg).toContain("ENOBUFS");
  expect(warnings[0]?.receiveBufferBytes).toBeGreaterThan(0);
  expect(core.notices.filter((n) => orphans.includes(n.pid)).length).toBeLessThan(ORPHANS);

  // Still listening on a fresh stream, with no fd left behind by the old one.
  const [latePid] = await makeOrphans(1, 3);
  expect(await until(() => core.notices.some((n) => n.pid === latePid), 10_000)).toBe(true);
  expect(core.notices.find((n) => n.pid === latePid)).toMatchObject({ adopted: true, waitStatus: 3 << 8 });
  expect(await until(() => core.reaped.has(latePid!), 10_000)).toBe(true);
  expect(netlinkSocketFds().size).toBe(socketFdsBefore);
}, scaled(180_000));
