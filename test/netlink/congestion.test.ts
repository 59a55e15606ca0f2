/**
 * After ENOBUFS the kernel drops every proc event until the queue is read
 * empty (net/netlink/af_netlink.c: NETLINK_S_CONGESTED, cleared by
 * netlink_rcv_wake). A child the runtime forks meanwhile has no FORK to
 * read: its EXIT must not read as an adopted orphan's. The kernel's replies
 * are scripted here (real bytes captured from it, rewritten), since the
 * congested window needs more than a drain's bound of queued events; the
 * child is a real Bun.spawn child, found in the real /proc.
 */
import { expect, test } from "bun:test";
import pino from "pino";
import { ErrnoError } from "../../src/errno.ts";
import type { Libc } from "../../src/libc.ts";
import { loadLibc } from "../../src/runtime/index.ts";
import { NetlinkSource } from "../../src/sources/netlink.ts";
import { isZombie, spawnLiveChild } from "../helpers/processes.ts";
import { blockEventLoopUntil } from "../helpers/time.ts";
import { capturedExitOf, capturedForkOf } from "./harness.ts";

const ENOBUFS = 105;
/** More than one drain reads (DATAGRAMS_PER_DRAIN in src/sources/netlink.ts), so the drain stops with the queue congested. */
const QUEUED_AFTER_OVERRUN = 5_000;

/** The real libc, but receive() answers from `replies`: bytes, ENOBUFS, or "empty" (EAGAIN: -1). */
function scriptedLibc(replies: (Uint8Array | "ENOBUFS" | "empty")[]): Libc {
  const libc = loadLibc();
  return new Proxy(libc, {
    get(target, name) {
      if (name === "close") return () => {};
      if (name !== "receive") return Reflect.get(target, name);
      return (_fd: number, datagram: Uint8Array, sender: Uint8Array) => {
        const reply = replies.shift() ?? "empty";
        if (reply === "empty") return -1;
        if (reply === "ENOBUFS") throw new ErrnoError("recvfrom", ENOBUFS);
        sender.fill(0); // port 0: the kernel
        datagram.set(reply);
        return reply.length;
      };
    },
  });
}

/** Ends the child and leaves it a zombie while the test reads its scripted EXIT: the source asks whether an exiting child runs on. */
function endChild(child: ReturnType<typeof spawnLiveChild>): void {
  child.kill("SIGKILL");
  // Bun cannot reap while the loop is blocked.
  expect(blockEventLoopUntil(() => isZombie(child.pid), 10_000)).toBe(true);
}

test("a child forked while the kernel drops events (after ENOBUFS, before the queue is read empty) is not taken for adopted when it exits", async () => {
  // Events queued before the overrun: FORKs by another process, which the source passes over.
  const replies: (Uint8Array | "ENOBUFS" | "empty")[] = ["ENOBUFS"];
  for (let i = 0; i < QUEUED_AFTER_OVERRUN; i++) replies.push(capturedForkOf(1, 2));
  const source = new NetlinkSource(scriptedLibc(replies), -1, pino({ level: "silent" }));
  const first = source.drain();
  expect({ overrun: first.overrun, more: first.more }).toEqual({ overrun: true, more: true });

  // The runtime forks while the queue is still congested: the kernel drops its FORK.
  const child = spawnLiveChild();
  try {
    while (source.drain().more); // read to the end: the kernel queues events again
    endChild(child);
    replies.push(capturedExitOf(child.pid));
    const exit = source.drain();
    expect({ adopted: exit.adoptedExits.map((e) => e.pid), own: exit.ownExits.map((e) => e.pid) }).toEqual({ adopted: [], own: [child.pid] });
    expect(source.forkedBySelf(child.pid)).toBeUndefined();
  } finally {
    child.kill();
    await child.exited;
  }
});

test("a PID an adopted orphan had, forked again while events are dropped, is not taken for adopted", async () => {
  const child = spawnLiveChild();
  try {
    // An orphan with this PID exited (read before the overrun); the runtime's fork that took the PID was dropped.
    const replies: (Uint8Array | "ENOBUFS" | "empty")[] = [capturedExitOf(child.pid), "ENOBUFS", "empty"];
    const source = new NetlinkSource(scriptedLibc(replies), -1, pino({ level: "silent" }));
    const drained = source.drain();
    expect(drained.adoptedExits.map((e) => e.pid)).toEqual([child.pid]);
    expect(drained.overrun).toBe(true);
    // Read empty after the overrun: the live child holding the PID is of unknown origin now.
    expect(source.forkedBySelf(child.pid)).toBeUndefined();
    endChild(child);
    replies.push(capturedExitOf(child.pid));
    expect(source.drain().adoptedExits).toEqual([]);
  } finally {
    child.kill();
    await child.exited;
  }
});

test("the EXIT of a child forked while events were dropped, queued just after the queue emptied and read before the empty read, is not taken for adopted", async () => {
  const replies: (Uint8Array | "ENOBUFS" | "empty")[] = ["ENOBUFS"];
  for (let i = 0; i < QUEUED_AFTER_OVERRUN; i++) replies.push(capturedForkOf(1, 2));
  const source = new NetlinkSource(scriptedLibc(replies), -1, pino({ level: "silent" }));
  expect(source.drain().more).toBe(true);
  const child = spawnLiveChild();
  try {
    // The read that emptied the queue ended the drops; the child's EXIT was queued before the next read.
    endChild(child);
    replies.splice(replies.length - 1, 0, capturedExitOf(child.pid));
    let adopted: number[] = [];
    let own: number[] = [];
    for (let drained = source.drain(); ; drained = source.drain()) {
      adopted = [...adopted, ...drained.adoptedExits.map((e) => e.pid)];
      own = [...own, ...drained.ownExits.map((e) => e.pid)];
      if (!drained.more) break;
    }
    expect({ adopted, own }).toEqual({ adopted: [], own: [child.pid] });
  } finally {
    child.kill();
    await child.exited;
  }
});
