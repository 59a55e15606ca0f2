/**
 * The kernel boundary, runtime-neutral: the `Libc` interface the rest of the
 * code calls, the kernel constants and struct layouts it needs (named once,
 * beside their headers), and `libcFromCalls`, which turns a runtime's raw C
 * calls (src/runtime/bun.ts through bun:ffi, src/runtime/node.ts through
 * koffi) into that interface: errno read right after each call, -1 turned
 * into an ErrnoError naming the call, structs decoded here once. The calls
 * `orphan-reaper run` adds (process groups, signal dispositions, the native
 * signal handler, exec) are the ProcessControl half, in libc-process.ts.
 */
import { readFileSync } from "node:fs";
import { ErrnoError } from "./errno.ts";
import { processControlFromCalls, type ProcessControl, type ProcessControlCalls } from "./libc-process.ts";

export type { SignalAction, SignalDisposition } from "./libc-process.ts";

// <asm-generic/errno-base.h>
const EINTR = 4;
const ESRCH = 3;
const EBADF = 9;
const EAGAIN = 11;
const EINVAL = 22;
const ENOTTY = 25;
// <linux/prctl.h>
export const PR_SET_CHILD_SUBREAPER = 36;
export const PR_GET_CHILD_SUBREAPER = 37;
// <linux/wait.h>
export const P_ALL = 0;
export const P_PID = 1;
export const P_PIDFD = 3;
export const WNOHANG = 0x1;
export const WEXITED = 0x4;
export const WNOWAIT = 0x01000000;
/**
 * Only children of the calling thread: the reaper runs on the main thread
 * (the thread-group leader), where the kernel reparents every orphan, while a
 * Worker's children are its own thread's, so they can never be taken.
 */
export const __WNOTHREAD = 0x20000000;
// <asm-generic/unistd.h>: pidfd_open is 434 on every architecture (unified
// syscall table since Linux 5.1); musl has no wrapper for it.
export const SYS_pidfd_open = 434;
// <linux/pidfd.h> (Linux 6.15): PIDFD_GET_INFO is _IOWR(0xFF, 11, struct
// pidfd_info), its first version 64 bytes: u64 mask at +0, s32 exit_code at
// +60 (a wait status), set once the process has been reaped.
const PIDFD_INFO_SIZE = 64;
const PIDFD_GET_INFO = ((3 << 30) | (PIDFD_INFO_SIZE << 16) | (0xff << 8) | 11) >>> 0;
const PIDFD_INFO_EXIT = 0x8;
const PIDFD_INFO_EXIT_CODE = 60;
// <poll.h>: struct pollfd { int fd; short events; short revents; }, 8 bytes.
const POLLFD_INTS = 2;
const POLLIN = 0x1;
// <asm-generic/siginfo.h>: siginfo_t is 128 bytes; si_signo at +0, si_code
// at +8, then (64-bit layout, after the 4-byte pad) si_pid at +16 for a
// signal sent by kill or sigqueue and for SIGCHLD, and SIGCHLD's si_status at +24.
export const SIGINFO_SIZE = 128;
export const SIGINFO_SIGNO = 0;
export const SIGINFO_CODE = 8;
export const SIGINFO_PID = 16;
const SIGINFO_STATUS = 24;
// <asm-generic/siginfo.h> si_code values for SIGCHLD
export const CLD_EXITED = 1;
export const CLD_KILLED = 2;
export const CLD_DUMPED = 3;
// <linux/time.h>: the clock of ktime_get_ns(), which stamps proc events.
const CLOCK_MONOTONIC = 1;
// <linux/filter.h>: struct sock_fprog is
// { u16 len; (6 bytes pad) struct sock_filter *filter; } on 64-bit.
export const SOCK_FILTER_SIZE = 8;
export const SOCK_FPROG_SIZE = 16;
export const SOCK_FPROG_FILTER = 8;

/** What waitid reported for one child. */
export interface WaitResult {
  /** 0 when WNOHANG found nothing to reap yet. */
  readonly pid: number;
  /** CLD_EXITED, CLD_KILLED or CLD_DUMPED. */
  readonly code: number;
  /** Exit code for CLD_EXITED, signal number otherwise. */
  readonly status: number;
}

export interface Libc extends ProcessControl {
  readonly path: string;
  getpid(): number;
  close(fd: number): void;
  setChildSubreaper(on: boolean): void;
  isChildSubreaper(): boolean;
  /** pidfd_open(2); works on a zombie until it is reaped. */
  pidfdOpen(pid: number): number;
  /**
   * The wait status the kernel kept on pidfd `fd` once its process was
   * reaped, whoever reaped it (PIDFD_GET_INFO); undefined before the reap,
   * and on kernels before 6.15, which keep none.
   */
  pidfdExitStatus(fd: number): number | undefined;
  /** waitid(2) on one process (P_PID) or one pidfd (P_PIDFD). */
  waitid(idType: typeof P_ALL | typeof P_PID | typeof P_PIDFD, id: number, options: number): WaitResult;
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, address: Uint8Array): void;
  connect(fd: number, address: Uint8Array): void;
  send(fd: number, data: Uint8Array): number;
  /**
   * The PID of the waitable zombie child (of this thread) that pidfd `fd`
   * names; 0 when it names a live process or not our child; -1 when `fd` is
   * closed or no pidfd. One waitid(P_PIDFD, WNOWAIT) that takes nothing and
   * never throws.
   */
  waitablePidOfFd(fd: number): number;
  /** pread(2) at `position` into `into`: the bytes read. */
  readAt(fd: number, into: Uint8Array, position: number): number;
  /** recvfrom(2) on a non-blocking socket: the bytes read (filling `address`), or -1 when nothing is queued (EAGAIN). */
  receive(fd: number, into: Uint8Array, address: Uint8Array): number;
  setsockopt(fd: number, level: number, name: number, value: Uint8Array): void;
  getsockoptInt(fd: number, level: number, name: number): number;
  /** SO_ATTACH_FILTER with a classic BPF program (struct sock_filter[] bytes). */
  attachSocketFilter(fd: number, program: Uint8Array): void;
  /** clock_gettime(CLOCK_MONOTONIC) in nanoseconds: the kernel's ktime_get_ns(). */
  monotonicNs(): bigint;
  /** Of `fds`, those open and readable now: one poll(2) with POLLIN and no wait. */
  readableAmong(fds: readonly number[]): number[];
  /** readableAmong of every fd below `count` (the fd table's size), with no array of them made. */
  readableBelow(count: number): number[];
}

/**
 * The C calls as a runtime binding makes them: each returns the C result
 * (-1 on failure) and `errno()` gives the errno of the call just made, so it
 * must be read before any other call. Buffers are passed by address.
 */
export interface LibcCalls extends ProcessControlCalls {
  readonly path: string;
  errno(): number;
  getpid(): number;
  close(fd: number): number;
  prctl(option: number, value: number): number;
  /** prctl with an `int *` second argument (the PR_GET_* form). */
  prctlGetInt(option: number, into: Int32Array): number;
  syscall(number: number, arg1: number, arg2: number): number;
  ioctl(fd: number, request: number, argument: Uint8Array): number;
  waitid(idType: number, id: number, siginfo: Uint8Array, options: number): number;
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, address: Uint8Array, length: number): number;
  connect(fd: number, address: Uint8Array, length: number): number;
  send(fd: number, data: Uint8Array, length: number, flags: number): number;
  pread(fd: number, into: Uint8Array, length: number, offset: number): number;
  recvfrom(fd: number, into: Uint8Array, length: number, flags: number, address: Uint8Array, addressLength: Uint32Array): number;
  setsockopt(fd: number, level: number, name: number, value: Uint8Array, length: number): number;
  getsockopt(fd: number, level: number, name: number, value: Int32Array, length: Uint32Array): number;
  /** setsockopt(SOL_SOCKET, SO_ATTACH_FILTER) with a sock_fprog pointing at `program`. */
  attachFilter(fd: number, program: Uint8Array): number;
  clockGettime(clock: number, timespec: BigInt64Array): number;
  poll(pollfds: Int32Array, count: number, timeoutMs: number): number;
}

/** The path of the C library this process has mapped (glibc or musl). */
export function findLoadedLibc(maps = readFileSync("/proc/self/maps", "utf8")): string {
  const libcPattern = /\s(\/\S*\/(?:libc\.so\.6|libc\.musl-[^/\s]+\.so\.1|ld-musl-[^/\s]+\.so\.1))$/m;
  const match = libcPattern.exec(maps);
  if (!match?.[1]) throw new Error("no glibc or musl libc is mapped in /proc/self/maps");
  return match[1];
}

export function libcFromCalls(c: LibcCalls): Libc {
  /** A negative result becomes an ErrnoError; call it right after the C call. */
  function checked(syscall: string, result: number): number {
    if (result < 0) throw new ErrnoError(syscall, c.errno());
    return result;
  }

  /** `checked` for a non-blocking fd: EAGAIN (nothing there now) answers -1. */
  function checkedOrEmpty(syscall: string, result: number): number {
    if (result >= 0) return result;
    const errno = c.errno();
    if (errno === EAGAIN) return -1;
    throw new ErrnoError(syscall, errno);
  }

  const intBox = new Int32Array(1);
  const lengthBox = new Uint32Array(1);
  const siginfo = new Uint8Array(SIGINFO_SIZE);
  // The fields read are ints at 4-byte offsets, in host byte order: read as words (once per exit, mostly uncompiled).
  const siginfoWords = new Int32Array(siginfo.buffer);
  const timespec = new BigInt64Array(2); // tv_sec, tv_nsec (64-bit)
  const pidfdInfo = new Uint8Array(PIDFD_INFO_SIZE);
  const pidfdInfoWords = new Int32Array(pidfdInfo.buffer);
  let pollfds = new Int32Array(0);
  /** The first entries of pollfds name fds 0, 1, 2... up to this: polled again as they are (poll writes only revents). */
  let pollfdsCountUpTo = 0;

  /** Entries for `count` fds: fds[i], or i itself (the fd table from 0). */
  function setPollfds(count: number, fds?: readonly number[]): void {
    if (pollfds.length < count * POLLFD_INTS) pollfds = new Int32Array(count * POLLFD_INTS);
    for (let i = 0; i < count; i++) {
      pollfds[i * POLLFD_INTS] = fds ? fds[i]! : i;
      pollfds[i * POLLFD_INTS + 1] = POLLIN; // events; revents (upper half, little-endian) zeroed
    }
  }

  /** One poll(2) with POLLIN and no wait over the first `count` entries: the fds readable. */
  function pollReadable(count: number): number[] {
    // A signal (SIGCHLD itself) landing in the call fails it with EINTR, even with no wait: ask again.
    while (c.poll(pollfds, count, 0) < 0) {
      const errno = c.errno();
      if (errno !== EINTR) throw new ErrnoError("poll", errno);
    }
    const readable: number[] = [];
    // A closed fd reports POLLNVAL, not POLLIN.
    for (let i = 0; i < count; i++) if (((pollfds[i * POLLFD_INTS + 1]! >>> 16) & POLLIN) !== 0) readable.push(pollfds[i * POLLFD_INTS]!);
    return readable;
  }

  return {
    path: c.path,
    getpid: () => c.getpid(),
    close: (fd) => void checked("close", c.close(fd)),
    setChildSubreaper: (on) => void checked("prctl", c.prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0)),
    isChildSubreaper() {
      checked("prctl", c.prctlGetInt(PR_GET_CHILD_SUBREAPER, intBox));
      return intBox[0] !== 0;
    },
    pidfdOpen: (pid) => checked("pidfd_open", c.syscall(SYS_pidfd_open, pid, 0)),
    pidfdExitStatus(fd) {
      pidfdInfo.fill(0);
      pidfdInfoWords[0] = PIDFD_INFO_EXIT; // the mask's low half, little-endian
      if (c.ioctl(fd, PIDFD_GET_INFO, pidfdInfo) < 0) {
        // Kernels that keep no exit status: ENOTTY before 6.11 (no pidfd ioctls), EINVAL on 6.11
        // and 6.12 (no PIDFD_GET_INFO), ESRCH on 6.13 and 6.14 (no PIDFD_INFO_EXIT: the process is gone).
        const errno = c.errno();
        if (errno === ENOTTY || errno === EINVAL || errno === ESRCH) return undefined;
        throw new ErrnoError("ioctl", errno);
      }
      return (pidfdInfoWords[0]! & PIDFD_INFO_EXIT) !== 0 ? pidfdInfoWords[PIDFD_INFO_EXIT_CODE >>> 2] : undefined;
    },
    waitid(idType, id, options) {
      // WNOHANG with nothing to reap need not write si_pid (POSIX leaves it unspecified): zero it first.
      siginfoWords[SIGINFO_PID >>> 2] = 0;
      checked("waitid", c.waitid(idType, id, siginfo, options));
      return {
        pid: siginfoWords[SIGINFO_PID >>> 2]!,
        code: siginfoWords[SIGINFO_CODE >>> 2]!,
        status: siginfoWords[SIGINFO_STATUS >>> 2]!,
      };
    },
    waitablePidOfFd(fd) {
      siginfoWords[SIGINFO_PID >>> 2] = 0;
      // EBADF: closed, or no pidfd (kernel pidfd_pid()); ECHILD: a pidfd on no child of this thread.
      if (c.waitid(P_PIDFD, fd, siginfo, WEXITED | WNOHANG | WNOWAIT | __WNOTHREAD) < 0) return c.errno() === EBADF ? -1 : 0;
      return siginfoWords[SIGINFO_PID >>> 2]!;
    },
    socket: (domain, type, protocol) => checked("socket", c.socket(domain, type, protocol)),
    bind: (fd, address) => void checked("bind", c.bind(fd, address, address.byteLength)),
    connect: (fd, address) => void checked("connect", c.connect(fd, address, address.byteLength)),
    send: (fd, data) => checked("send", c.send(fd, data, data.byteLength, 0)),
    readAt: (fd, into, position) => checked("pread", c.pread(fd, into, into.byteLength, position)),
    receive(fd, into, address) {
      lengthBox[0] = address.byteLength;
      return checkedOrEmpty("recvfrom", c.recvfrom(fd, into, into.byteLength, 0, address, lengthBox));
    },
    setsockopt: (fd, level, name, value) => void checked("setsockopt", c.setsockopt(fd, level, name, value, value.byteLength)),
    getsockoptInt(fd, level, name) {
      lengthBox[0] = 4;
      checked("getsockopt", c.getsockopt(fd, level, name, intBox, lengthBox));
      return intBox[0] ?? 0;
    },
    attachSocketFilter: (fd, program) => void checked("setsockopt", c.attachFilter(fd, program)),
    monotonicNs() {
      checked("clock_gettime", c.clockGettime(CLOCK_MONOTONIC, timespec));
      return (timespec[0] ?? 0n) * 1_000_000_000n + (timespec[1] ?? 0n);
    },
    readableAmong(fds) {
      setPollfds(fds.length, fds);
      pollfdsCountUpTo = 0;
      return pollReadable(fds.length);
    },
    readableBelow(count) {
      if (pollfdsCountUpTo < count) setPollfds(count);
      pollfdsCountUpTo = count;
      return pollReadable(count);
    },
    ...processControlFromCalls(c, checked, checkedOrEmpty),
  };
}
