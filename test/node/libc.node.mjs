/**
 * The koffi binding (src/runtime/node.ts, through dist/) on the real kernel:
 * every call of the Libc interface, its results and its errno as an
 * ErrnoError naming the call.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync, writeSync } from "node:fs";
import { test } from "node:test";
import { ErrnoError } from "../../dist/errno.js";
import { CLD_EXITED, P_ALL, P_PIDFD, WEXITED, WNOHANG, WNOWAIT } from "../../dist/libc.js";
import { SO_RCVBUF, SOL_SOCKET } from "../../dist/netlink/constants.js";
import { loadLibc, runtimeName } from "../../dist/runtime/index.js";
import { monotonicOffsetMs, monotonicToNowMs } from "../../dist/netlink/clock.js";
import { scaled } from "./helpers.mjs";

// <sys/socket.h>, <linux/un.h>
const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCKADDR_UN_SIZE = 110;
// <linux/filter.h>: BPF_RET | BPF_K with k = 0: accept no bytes (drop every datagram).
const BPF_RET_K = 0x06;

const libc = loadLibc();

/** struct sockaddr_un for an abstract name: sun_family, then a NUL and the name. */
function abstractAddress(name) {
  const address = new Uint8Array(2 + 1 + name.length);
  new DataView(address.buffer).setUint16(0, AF_UNIX, true);
  address.set(new TextEncoder().encode(name), 3);
  return address;
}

function filterProgram(instructions) {
  const program = new Uint8Array(instructions.length * 8);
  const view = new DataView(program.buffer);
  instructions.forEach(([code, k], i) => {
    view.setUint16(i * 8, code, true);
    view.setUint32(i * 8 + 4, k, true);
  });
  return program;
}

function assertErrno(run, syscall, code) {
  assert.throws(run, (error) => error instanceof ErrnoError && error.syscall === syscall && error.code === code);
}

/** A receiving socket and a sender connected to it, each bound to an abstract name. */
function datagramPair() {
  const names = ["receiver", "sender"].map((role) => `orphan-reaper-test-${role}-${process.pid}-${Math.random()}`);
  const receiver = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  const sender = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  libc.bind(receiver, abstractAddress(names[0]));
  libc.bind(sender, abstractAddress(names[1]));
  libc.connect(sender, abstractAddress(names[0]));
  return { receiver, sender, senderAddress: abstractAddress(names[1]), close: () => [receiver, sender].forEach((fd) => libc.close(fd)) };
}

test("the runtime seam chose koffi on Node", { timeout: scaled(30_000) }, () => {
  assert.equal(runtimeName, "node");
  assert.match(libc.path, /libc|musl/);
  assert.equal(libc.getpid(), process.pid);
});

test("errno: close of a closed fd is EBADF, named", { timeout: scaled(30_000) }, () => {
  const fd = libc.socket(AF_UNIX, SOCK_DGRAM, 0);
  libc.close(fd);
  assertErrno(() => libc.close(fd), "close", "EBADF");
});

test("datagrams: send, receive (-1 when empty), readable by poll, a socket filter that drops all, setsockopt and getsockopt", { timeout: scaled(30_000) }, () => {
  const pair = datagramPair();
  try {
    const into = new Uint8Array(64);
    const from = new Uint8Array(SOCKADDR_UN_SIZE);
    assert.equal(libc.receive(pair.receiver, into, from), -1, "nothing queued: EAGAIN is -1");
    assert.ok(!libc.readableAmong([pair.receiver]).includes(pair.receiver));
    assert.equal(libc.send(pair.sender, new TextEncoder().encode("hello")), 5);
    assert.ok(libc.readableAmong([pair.receiver]).includes(pair.receiver));
    assert.equal(libc.receive(pair.receiver, into, from), 5);
    assert.equal(new TextDecoder().decode(into.subarray(0, 5)), "hello");
    assert.deepEqual(from.subarray(0, pair.senderAddress.length), pair.senderAddress, "the sender's address was filled in");

    libc.attachSocketFilter(pair.receiver, filterProgram([[BPF_RET_K, 0]]));
    libc.send(pair.sender, new TextEncoder().encode("dropped"));
    assert.equal(libc.receive(pair.receiver, into, from), -1, "the filter dropped it");
    assertErrno(() => libc.receive(-1, into, from), "recvfrom", "EBADF");
    assertErrno(() => libc.attachSocketFilter(pair.receiver, filterProgram([[0xffff, 0]])), "setsockopt", "EINVAL");

    const asked = new Uint8Array(4);
    new DataView(asked.buffer).setInt32(0, 65536, true);
    libc.setsockopt(pair.receiver, SOL_SOCKET, SO_RCVBUF, asked);
    assert.equal(libc.getsockoptInt(pair.receiver, SOL_SOCKET, SO_RCVBUF), 2 * 65536, "the kernel doubles SO_RCVBUF");
  } finally {
    pair.close();
  }
});

test("pipe and code page: a non-blocking close-on-exec pipe reads -1 when empty, then the bytes; mapCode gives an executable page", { timeout: scaled(30_000) }, () => {
  const [readFd, writeFd] = libc.nonBlockingPipe();
  try {
    const buffer = new Uint8Array(16);
    assert.equal(libc.readNonBlocking(readFd, buffer), -1);
    writeSync(writeFd, Buffer.from("abc"));
    assert.equal(libc.readNonBlocking(readFd, buffer), 3);
    assert.equal(Buffer.from(buffer.subarray(0, 3)).toString(), "abc");
    const flags = parseInt(/^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${readFd}`, "utf8"))[1], 8);
    assert.equal(flags & 0o2004000, 0o2004000); // O_CLOEXEC | O_NONBLOCK
  } finally {
    libc.close(readFd);
    libc.close(writeFd);
  }
  const address = libc.mapCode(new Uint8Array([0xc3]));
  const mapping = readFileSync("/proc/self/maps", "utf8").split("\n").find((line) => parseInt(line, 16) === address);
  assert.match(mapping ?? "", /^\S+ r-xp /);
});

test("clock: monotonicNs is CLOCK_MONOTONIC, Node's hrtime clock", { timeout: scaled(30_000) }, () => {
  const before = process.hrtime.bigint();
  const ours = libc.monotonicNs();
  const after = process.hrtime.bigint();
  assert.ok(before <= ours && ours <= after, `${before} <= ${ours} <= ${after}`);
});

test("clock: a kernel clock read, turned with the proc connector's offset, is never later than performance.now() read after it", { timeout: scaled(30_000) }, () => {
  let later = 0;
  for (let offsets = 0; offsets < 50; offsets++) {
    const offsetMs = monotonicOffsetMs(libc);
    for (let read = 0; read < 2_000; read++) {
      // As the source turns an event's timestamp: a later time would make a negative lifetime.
      if (monotonicToNowMs(Number(libc.monotonicNs()), offsetMs) > performance.now()) later += 1;
    }
  }
  assert.equal(later, 0);
});

test("subreaper, pidfd and waitid: an adopted orphan is peeked, then reaped through its pidfd", { timeout: scaled(60_000) }, async () => {
  libc.setChildSubreaper(true);
  assert.equal(libc.isChildSubreaper(), true);
  try {
    // The subshell that forks the orphan exits at once: the orphan is ours, not libuv's.
    const shell = spawn("sh", ["-c", "( (sleep 0.1; exit 5) & ); exit 0"], { stdio: "ignore" });
    assert.deepEqual(await once(shell, "exit"), [0, null]);
    let peeked = { pid: 0 };
    const deadline = Date.now() + scaled(20_000);
    while (peeked.pid === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      peeked = libc.waitid(P_ALL, 0, WEXITED | WNOWAIT | WNOHANG);
    }
    assert.deepEqual(peeked.code === CLD_EXITED && peeked.status, 5);
    const pidfd = libc.pidfdOpen(peeked.pid);
    try {
      assert.deepEqual(libc.waitid(P_PIDFD, pidfd, WEXITED), { pid: peeked.pid, code: CLD_EXITED, status: 5 });
      assertErrno(() => libc.waitid(P_PIDFD, pidfd, WEXITED | WNOHANG), "waitid", "ECHILD");
    } finally {
      libc.close(pidfd);
    }
  } finally {
    libc.setChildSubreaper(false);
  }
  assert.equal(libc.isChildSubreaper(), false);
});
