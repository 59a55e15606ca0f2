import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { loadLibc } from "../../src/runtime/index.ts";
import { hasErrnoCode } from "../../src/errno.ts";
import { SOCKADDR_NL_SIZE } from "../../src/netlink/constants.ts";
import { attachOwnChildrenFilter, joinProcEvents, narrowToForkAndExit, openProcConnectorSocket, sendListen, setReceiveBuffer } from "../../src/netlink/socket.ts";
import { parseProcEvents, type ProcEvent } from "../../src/netlink/structs.ts";

const libc = loadLibc();
const filtered: ProcEvent[] = [];
const unfiltered: ProcEvent[] = [];
const listeners: { fd: number; into: ProcEvent[] }[] = [];
const datagram = new Uint8Array(8192);
const sender = new Uint8Array(SOCKADDR_NL_SIZE);

/** Reads what each listener has queued (the unfiltered one sees the whole machine: a big queue). */
function drainAll(): void {
  for (const { fd, into } of listeners) {
    for (;;) {
      let length: number;
      try {
        length = libc.receive(fd, datagram, sender);
      } catch (error) {
        if (hasErrnoCode(error, "ENOBUFS")) continue; // the busy machine overran it: what was lost is lost
        throw error;
      }
      if (length < 0) break;
      into.push(...parseProcEvents(datagram.subarray(0, length)).events);
    }
  }
}

function listen(withFilter: boolean, into: ProcEvent[]): void {
  const fd = openProcConnectorSocket(libc);
  listeners.push({ fd, into });
  setReceiveBuffer(libc, fd, 64 * 1024 * 1024);
  if (withFilter) attachOwnChildrenFilter(libc, fd, process.pid, 1);
  joinProcEvents(libc, fd);
  sendListen(libc, fd, 1);
  narrowToForkAndExit(libc, fd);
}

let drainer: ReturnType<typeof setInterval>;
beforeAll(() => {
  listen(true, filtered);
  listen(false, unfiltered);
  drainer = setInterval(drainAll, 2);
});
afterAll(() => {
  clearInterval(drainer);
  for (const { fd } of listeners) libc.close(fd);
});

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
  const end = performance.now() + 10_000;
  while (!existsSync(marker) && performance.now() < end) await Bun.sleep(10);
  await Bun.sleep(50);
  const stormPid = Number(readFileSync(`${marker}.pid`, "utf8"));
  const stormParent = Number(readFileSync(`${marker}.ppid`, "utf8"));
  for (const file of [marker, `${marker}.pid`, `${marker}.ppid`]) rmSync(file);

  expect(stormParent).toBeGreaterThan(0);
  expect(stormParent).not.toBe(process.pid);
  // The storm happened and the kernel sent its events...
  const stormExits = unfiltered.filter((e) => e.type === "exit" && e.parentTgid === stormPid);
  expect(stormExits.length).toBeGreaterThanOrEqual(200);
  // ...and none reached the filtered socket, which still saw our own child.
  expect(filtered.filter((e) => e.type !== "ack" && parentOf(e) !== process.pid)).toEqual([]);
  expect(filtered.some((e) => e.type === "fork" && e.childPid === own.pid)).toBe(true);
  expect(filtered.some((e) => e.type === "exit" && e.pid === own.pid && e.exitCode === 2 << 8)).toBe(true);
}, 20_000);

test("the filter passes the ack to our own subscription and drops other listeners' acks", () => {
  // Not narrowed to FORK|EXIT: a narrowed socket (Linux 6.6+) gets no acks but its own from the kernel either.
  const sockets = [true, false].map((withFilter) => {
    const fd = openProcConnectorSocket(libc);
    if (withFilter) attachOwnChildrenFilter(libc, fd, process.pid, 1);
    joinProcEvents(libc, fd);
    sendListen(libc, fd, withFilter ? 1 : 7);
    return fd;
  });
  const other = openProcConnectorSocket(libc);
  try {
    sendListen(libc, other, 41); // another listener subscribes: the kernel multicasts its ack to every listener
    // The kernel answers inside send(): both acks are queued by now.
    const [filteredAcks, unfilteredAcks] = sockets.map((fd) => {
      const acks: number[] = [];
      for (let length = libc.receive(fd, datagram, sender); length >= 0; length = libc.receive(fd, datagram, sender)) {
        for (const event of parseProcEvents(datagram.subarray(0, length)).events) if (event.type === "ack") acks.push(event.ack);
      }
      return acks;
    });
    expect(unfilteredAcks).toEqual(expect.arrayContaining([8, 42]));
    expect(filteredAcks).toEqual([2]);
  } finally {
    for (const fd of [...sockets, other]) libc.close(fd);
  }
});

test("the filter drops our own threads' creation and exit", async () => {
  const worker = new Worker(URL.createObjectURL(new Blob(["postMessage('up')"], { type: "application/javascript" })));
  await new Promise((resolve) => worker.addEventListener("message", resolve, { once: true }));
  worker.terminate();
  await Bun.sleep(50);
  const isThread = (e: ProcEvent) =>
    (e.type === "fork" && e.childPid !== e.childTgid && e.parentTgid === process.pid) ||
    (e.type === "exit" && e.pid !== e.tgid && e.tgid === process.pid);
  expect(unfiltered.some(isThread)).toBe(true);
  expect(filtered.some(isThread)).toBe(false);
});

function parentOf(event: ProcEvent): number | undefined {
  return event.type === "ack" ? undefined : event.parentTgid;
}
