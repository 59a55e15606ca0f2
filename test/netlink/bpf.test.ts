import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { hasErrnoCode } from "../../src/errno.ts";
import { loadLibc } from "../../src/libc.ts";
import { attachOwnChildrenFilter, narrowToForkAndExit, openProcConnectorSocket, sendListen, setReceiveBuffer } from "../../src/netlink/socket.ts";
import { parseProcEvents, type ProcEvent } from "../../src/netlink/structs.ts";
import { scaled, waitUntil } from "../helpers/time.ts";

const libc = loadLibc();
const filtered: ProcEvent[] = [];
const unfiltered: ProcEvent[] = [];
const fds: number[] = [];
const drains: ReturnType<typeof setInterval>[] = [];
/** The unfiltered socket hears every process of a shared, busy machine: a queue that holds a burst. */
const RECEIVE_BUFFER_BYTES = 8 << 20;
const DRAIN_EVERY_MS = 5;
const datagram = new Uint8Array(65536);
const sender = new Uint8Array(12); // struct sockaddr_nl

/**
 * Reads every datagram queued on the non-blocking socket (recvfrom until
 * EAGAIN); an overrun (ENOBUFS) loses events, not the socket: reading goes on.
 */
function drain(fd: number, into: ProcEvent[] | undefined): void {
  for (;;) {
    try {
      const length = libc.recvfrom(fd, datagram, sender);
      if (into) into.push(...parseProcEvents(datagram.subarray(0, length)).events);
    } catch (error) {
      if (hasErrnoCode(error, "EAGAIN", "EWOULDBLOCK")) return;
      if (!hasErrnoCode(error, "ENOBUFS")) throw error;
    }
  }
}

function listen(withFilter: boolean, into: ProcEvent[]): void {
  const fd = openProcConnectorSocket(libc);
  fds.push(fd);
  setReceiveBuffer(libc, fd, RECEIVE_BUFFER_BYTES);
  if (withFilter) {
    attachOwnChildrenFilter(libc, fd, process.pid);
    // It joined the group at bind, before the filter was on: on a machine where
    // other processes listen too, events about anyone may already be queued.
    drain(fd, undefined);
  }
  drains.push(setInterval(() => drain(fd, into), DRAIN_EVERY_MS));
  sendListen(libc, fd, 1);
  narrowToForkAndExit(libc, fd);
}

beforeAll(() => {
  listen(true, filtered);
  listen(false, unfiltered);
});
afterAll(() => {
  for (const timer of drains) clearInterval(timer);
  for (const fd of fds) libc.close(fd);
});

/** Runs a child of ours to its end and waits until the filtered socket has its exit: every event before it was read. */
async function filteredEventsRead(): Promise<void> {
  const marker = Bun.spawn(["true"]);
  await marker.exited;
  expect(await waitUntil(() => filtered.some((e) => e.type === "exit" && e.pid === marker.pid), 10_000)).toBe(true);
}

test("the filter passes our own child's fork and exit, and nothing of an unrelated process tree", async () => {
  // An unrelated tree: started while we are not a subreaper and orphaned at
  // once, so it is reparented to an ancestor of ours (or init), not to us.
  const wasSubreaper = libc.isChildSubreaper();
  libc.setChildSubreaper(false);
  const marker = `/tmp/orphan-reaper-storm-${process.pid}`;
  rmSync(marker, { force: true });
  const storm = `sleep 0.2; echo $$ > ${marker}.pid; cut -d" " -f4 /proc/$$/stat > ${marker}.ppid; for i in $(seq 200); do /bin/true & (/bin/true &); done; wait; touch ${marker}`;
  const launcher = Bun.spawn(["sh", "-c", `setsid sh -c '${storm}' >/dev/null 2>&1 &`]);
  await launcher.exited;
  libc.setChildSubreaper(wasSubreaper);
  const own = Bun.spawn(["sh", "-c", "exit 2"]);
  await own.exited;
  expect(await waitUntil(() => existsSync(marker), 30_000)).toBe(true);
  const stormPid = Number(readFileSync(`${marker}.pid`, "utf8"));
  const stormParent = Number(readFileSync(`${marker}.ppid`, "utf8"));
  for (const file of [marker, `${marker}.pid`, `${marker}.ppid`]) rmSync(file);

  expect(stormParent).toBeGreaterThan(0);
  expect(stormParent).not.toBe(process.pid);
  // The storm happened and the kernel sent its events...
  const stormExits = () => unfiltered.filter((e) => e.type === "exit" && e.parentTgid === stormPid);
  expect(await waitUntil(() => stormExits().length >= 200, 10_000)).toBe(true);
  await filteredEventsRead();
  // ...and none reached the filtered socket, which still saw our own child.
  expect(filtered.filter((e) => e.type !== "ack" && parentOf(e) !== process.pid)).toEqual([]);
  expect(filtered.some((e) => e.type === "fork" && e.childPid === own.pid)).toBe(true);
  expect(filtered.some((e) => e.type === "exit" && e.pid === own.pid && e.exitCode === 2 << 8)).toBe(true);
}, scaled(60_000));

test("the filter drops our own threads' creation and exit", async () => {
  const worker = new Worker(URL.createObjectURL(new Blob(["postMessage('up')"], { type: "application/javascript" })));
  await new Promise((resolve) => worker.addEventListener("message", resolve, { once: true }));
  worker.terminate();
  const isThread = (e: ProcEvent) =>
    (e.type === "fork" && e.childPid !== e.childTgid && e.parentTgid === process.pid) ||
    (e.type === "exit" && e.pid !== e.tgid && e.tgid === process.pid);
  expect(await waitUntil(() => unfiltered.some(isThread), 10_000)).toBe(true);
  await filteredEventsRead();
  expect(filtered.some(isThread)).toBe(false);
}, scaled(30_000));

function parentOf(event: ProcEvent): number | undefined {
  return event.type === "ack" ? undefined : event.parentTgid;
}
