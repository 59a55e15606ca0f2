import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync, spawn as nodeSpawn } from "node:child_process";
import pino from "pino";
import { loadLibc } from "../../src/runtime/index.ts";
import { AF_NETLINK, CN_IDX_PROC, NETLINK_CONNECTOR, SOCK_DGRAM, SOCKADDR_NL_SIZE } from "../../src/netlink/constants.ts";
import { probeNetlinkSource } from "../../src/sources/netlink.ts";
import { makeOrphans } from "../helpers/orphans.ts";
import { spawnLiveChild } from "../helpers/processes.ts";
import { scaled } from "../helpers/time.ts";
import { capturedExitOf, DEFAULT_SETTINGS, netlinkSocketFds, reapChild, startDrainLog, type DrainLog } from "./harness.ts";

let log: DrainLog;

beforeAll(async () => void (log = await startDrainLog()));
afterAll(() => log?.source.stop());

/** Sends `datagram` to the proc connector's multicast group from a socket of its own, as root may. */
function sendAsMulticast(datagram: Uint8Array): void {
  const libc = loadLibc();
  const fd = libc.socket(AF_NETLINK, SOCK_DGRAM, NETLINK_CONNECTOR);
  try {
    const group = new Uint8Array(SOCKADDR_NL_SIZE);
    const view = new DataView(group.buffer);
    view.setUint16(0, AF_NETLINK, true);
    libc.bind(fd, group);
    view.setUint32(8, CN_IDX_PROC, true);
    libc.connect(fd, group);
    libc.send(fd, datagram);
  } finally {
    libc.close(fd);
  }
}

describe("netlink source on the real kernel", () => {
  test("a double-forked orphan's exit is drained as adopted, stamped with its exit time", async () => {
    // Gated: it exits only once its shell is gone, so the EXIT names us as its parent.
    const [pid] = await makeOrphans(1, 7);
    expect(await log.drainUntil(() => log.adopted.some((exit) => exit.pid === pid), 10_000)).toBe(true);
    const notice = log.adopted.find((exit) => exit.pid === pid)!;
    expect(notice.exitedAt).toBeLessThanOrEqual(performance.now());
    expect(log.source.forkedBySelf(pid!)).toBe(false);
    expect(reapChild(pid!)).toEqual({ exitCode: 7, signal: null, coreDumped: false });
  }, scaled(15_000));

  test("Bun.spawn and child_process children are our own exits, not adopted, and keep their exit codes", async () => {
    const bunChild = Bun.spawn(["sh", "-c", "exit 5"]);
    expect(await bunChild.exited).toBe(5);
    const nodeChild = nodeSpawn("sh", ["-c", "exit 6"]);
    expect(await new Promise((resolve) => nodeChild.on("exit", resolve))).toBe(6);
    let syncCode = 0;
    try {
      execFileSync("sh", ["-c", "exit 4"]);
    } catch (error) {
      syncCode = (error as { status: number }).status;
    }
    expect(syncCode).toBe(4);
    // Their exits were seen, so their events are queued: one drain reads them.
    log.drain();
    for (const pid of [bunChild.pid, nodeChild.pid!]) {
      expect(log.own.some((exit) => exit.pid === pid)).toBe(true);
      expect(log.adopted.some((exit) => exit.pid === pid)).toBe(false);
      expect(log.source.forkedBySelf(pid)).toBe(true);
    }
  });

  test("a Worker's child is drained as an own exit, never adopted", async () => {
    const worker = new Worker(new URL("../fixtures/worker-spawn.ts", import.meta.url).href);
    const pid = await new Promise<number>((resolve) => (worker.onmessage = (event) => resolve(event.data.pid)));
    const code = await new Promise<number>((resolve) => (worker.onmessage = (event) => resolve(event.data.exitCode)));
    worker.terminate();
    expect(code).toBe(9);
    log.drain();
    expect(log.own.some((exit) => exit.pid === pid)).toBe(true);
    expect(log.adopted.some((exit) => exit.pid === pid)).toBe(false);
  });

  test("a forged multicast from a privileged process (header says port 0) is ignored by its source address", async () => {
    const victim = spawnLiveChild();
    try {
      const forged = capturedExitOf(victim.pid);
      const forgedBefore = log.forged;
      // Twice: believed, the second EXIT of a PID with no FORK between would say "adopted".
      sendAsMulticast(forged);
      sendAsMulticast(forged);
      expect(await log.drainUntil(() => log.forged >= forgedBefore + 2, 5_000)).toBe(true);
      expect(log.adopted.some((exit) => exit.pid === victim.pid)).toBe(false);
      expect(log.source.forkedBySelf(victim.pid)).toBe(true);
    } finally {
      victim.kill();
    }
    expect(await victim.exited).toBe(143);
  }, scaled(15_000));

  test("children that existed before the subscription are of unknown origin", async () => {
    const children = [spawnLiveChild()];
    try {
      const probe = await probeNetlinkSource(loadLibc(), pino({ level: "silent" }), DEFAULT_SETTINGS);
      if (!probe.ok) throw new Error(probe.reason);
      try {
        expect(probe.source.forkedBySelf(children[0]!.pid)).toBeUndefined();
        children.push(spawnLiveChild());
        probe.source.drain();
        expect(probe.source.forkedBySelf(children[1]!.pid)).toBe(true);
      } finally {
        probe.source.stop();
      }
    } finally {
      for (const child of children) child.kill();
      await Promise.all(children.map((child) => child.exited));
    }
  }, scaled(15_000));

  test("stop() closes the socket, and may be called twice", async () => {
    const before = new Set(netlinkSocketFds().values());
    const probe = await probeNetlinkSource(loadLibc(), pino({ level: "silent" }), DEFAULT_SETTINGS);
    if (!probe.ok) throw new Error(probe.reason);
    const opened = [...netlinkSocketFds().values()].filter((inode) => !before.has(inode));
    expect(opened).toHaveLength(1);
    probe.source.stop();
    probe.source.stop();
    expect([...netlinkSocketFds().values()].filter((inode) => opened.includes(inode))).toEqual([]);
  }, scaled(15_000));
});
