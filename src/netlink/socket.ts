/**
 * The proc connector socket: open, lock to the kernel, size, filter,
 * subscribe, unsubscribe. Each step is one small function over a plain fd so
 * the probe (src/sources/netlink.ts) can name exactly which one failed.
 * Reading is not done here: the source reads with recvfrom(2) on each wake
 * (src/sources/netlink.ts), to see that the kernel sent each datagram.
 */
import type { Libc } from "../libc.ts";
import { encodeFilter, ownChildrenFilter } from "./bpf.ts";
import {
  AF_NETLINK,
  CN_IDX_PROC,
  NETLINK_ADD_MEMBERSHIP,
  NETLINK_CONNECTOR,
  PROC_CN_MCAST_IGNORE,
  PROC_CN_MCAST_LISTEN,
  PROC_EVENT_EXIT,
  PROC_EVENT_FORK,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCKADDR_NL_SIZE,
  SOL_NETLINK,
  SOL_SOCKET,
} from "./constants.ts";
import { formatSubscription } from "./structs.ts";
import { hasErrnoCode, messageOf } from "../errno.ts";

const KERNEL_PORT = 0;

function socketAddress(port: number, groups: number): Uint8Array {
  const address = new Uint8Array(SOCKADDR_NL_SIZE);
  const view = new DataView(address.buffer);
  view.setUint16(0, AF_NETLINK, true);
  view.setUint32(4, port, true);
  view.setUint32(8, groups, true);
  return address;
}

/**
 * A non-blocking proc connector socket, connected to the kernel: a connected
 * netlink socket refuses unicasts from any other port (ECONNREFUSED to the
 * sender, measured). Not in the multicast group yet: joinProcEvents() comes
 * after the socket filter, or events of the whole machine queue before it.
 */
export function openProcConnectorSocket(libc: Libc): number {
  const fd = libc.socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_CONNECTOR);
  try {
    libc.bind(fd, socketAddress(0, 0));
    libc.connect(fd, socketAddress(KERNEL_PORT, 0));
  } catch (error) {
    libc.close(fd);
    throw error;
  }
  return fd;
}

/**
 * Asks for `bytes` of receive queue; SO_RCVBUFFORCE passes net.core.rmem_max
 * where we hold CAP_NET_ADMIN, SO_RCVBUF is capped by it. Returns what the
 * kernel granted (it doubles the request for bookkeeping).
 */
export function setReceiveBuffer(libc: Libc, fd: number, bytes: number): number {
  const value = new Uint8Array(4);
  new DataView(value.buffer).setInt32(0, bytes, true);
  try {
    libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, value);
  } catch (error) {
    if (!hasErrnoCode(error, "EPERM")) throw error;
    libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, value);
  }
  return libc.getsockoptInt(fd, SOL_SOCKET, SO_RCVBUF);
}

/** Drops, in the kernel, every event that is not about a child of `selfPid`, and every ack but the one to `nonce`. */
export function attachOwnChildrenFilter(libc: Libc, fd: number, selfPid: number, nonce: number): void {
  libc.attachSocketFilter(fd, encodeFilter(ownChildrenFilter(selfPid, ackTo(nonce))));
}

/** Joins the proc connector's multicast group: events (and acks) start to queue. */
export function joinProcEvents(libc: Libc, fd: number): void {
  const group = new Uint8Array(4);
  new DataView(group.buffer).setUint32(0, CN_IDX_PROC, true);
  libc.setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group);
}

/** The kernel acks a request with its cn_msg.ack plus one. */
export function ackTo(nonce: number): number {
  return (nonce + 1) >>> 0;
}

/**
 * The classic 4-byte LISTEN: every kernel answers it with an ack carrying
 * `nonce + 1` in cn_msg.ack (and, before 6.6, EPERM without CAP_NET_ADMIN).
 * A kernel that ignores the request (caller outside the initial PID or user
 * namespace) sends nothing. ECONNREFUSED here: not the initial network
 * namespace, where the connector lives.
 */
export function sendListen(libc: Libc, fd: number, nonce: number): void {
  libc.send(fd, formatSubscription(PROC_CN_MCAST_LISTEN, undefined, { ack: nonce }));
}

/**
 * Narrows the subscription to FORK and EXIT in the kernel (struct proc_input,
 * Linux 6.6+). Older kernels ignore an 8-byte request and keep sending all
 * events, which the socket filter then drops: harmless either way.
 */
export function narrowToForkAndExit(libc: Libc, fd: number): void {
  libc.send(fd, formatSubscription(PROC_CN_MCAST_LISTEN, PROC_EVENT_FORK | PROC_EVENT_EXIT));
}

/** Leaves the group; before 6.6 the kernel's listener count is global, so only after a LISTEN it acked. */
export function sendIgnore(libc: Libc, fd: number): void {
  libc.send(fd, formatSubscription(PROC_CN_MCAST_IGNORE));
}

/** Why the proc connector socket could not be set up, in words a user can act on. */
export function describeSocketError(error: unknown): string {
  if (hasErrnoCode(error, "EPROTONOSUPPORT", "EAFNOSUPPORT"))
    return `kernel without the netlink connector (CONFIG_CONNECTOR): ${error.syscall}: ${error.code}`;
  if (hasErrnoCode(error, "ECONNREFUSED"))
    return `the proc connector exists only in the initial network namespace (${error.syscall}: ECONNREFUSED)`;
  if (hasErrnoCode(error, "EPERM", "EACCES"))
    return `not permitted to use the proc connector (${error.syscall}: ${error.code}); before Linux 6.6 it needs CAP_NET_ADMIN`;
  return `proc connector socket failed: ${messageOf(error)}`;
}
