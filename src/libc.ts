/**
 * The kernel boundary, runtime-neutral: the `Libc` interface the rest of the
 * code calls, the kernel constants and struct layouts it needs (named once,
 * beside their headers), and `libcFromCalls`, which turns a runtime's raw C
 * calls (src/runtime/bun.ts through bun:ffi, src/runtime/node.ts through
 * koffi) into that interface: errno read right after each call, -1 turned
 * into an ErrnoError naming the call, structs decoded here once.
 */
import { readFileSync } from "node:fs";
import { ErrnoError } from "./errno.ts";

// <asm-generic/errno-base.h>
const EAGAIN = 11;
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
// --- process control for `orphan-reaper run` ---
// <linux/prctl.h>
const PR_SET_PDEATHSIG = 1;
// <fcntl.h>
const F_SETFD = 2;
const FD_CLOEXEC = 1;
// <signal.h>: SIG_DFL and SIG_IGN are the handler values 0 and 1.
const SIG_DFL = 0n;
const SIG_IGN = 1n;
const SIG_SETMASK = 2;
// struct sigaction (glibc 152 bytes, musl 152): the handler is the first field,
// then sigset_t sa_mask (128 bytes in both; the kernel reads the first 8), then
// int sa_flags; libc fills in sa_restorer itself.
const SIGACTION_SIZE = 152;
const SIGSET_SIZE = 128;
const SIGACTION_FLAGS = 8 + SIGSET_SIZE;
// <asm-generic/signal.h>
const SA_SIGINFO = 0x4;
const SA_RESTART = 0x10000000;
// <asm-generic/fcntl.h>
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
// <asm-generic/mman-common.h>
const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const PROT_EXEC = 0x4;
const MAP_PRIVATE = 0x02;
const MAP_ANONYMOUS = 0x20;
const PAGE_SIZE = 4096; // the smallest page on x86_64 and aarch64; a larger page is rounded up by mmap

/** What a signal does to this process now: its disposition. */
export type SignalDisposition = "default" | "ignore" | "handler";

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

export interface Libc {
  readonly path: string;
  getpid(): number;
  close(fd: number): void;
  setChildSubreaper(on: boolean): void;
  isChildSubreaper(): boolean;
  /** pidfd_open(2); works on a zombie until it is reaped. */
  pidfdOpen(pid: number): number;
  /** waitid(2) on one process (P_PID) or one pidfd (P_PIDFD). */
  waitid(idType: typeof P_ALL | typeof P_PID | typeof P_PIDFD, id: number, options: number): WaitResult;
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, address: Uint8Array): void;
  connect(fd: number, address: Uint8Array): void;
  send(fd: number, data: Uint8Array): number;
  /**
   * The PID of the waitable zombie child (of this thread) that pidfd `fd`
   * names, else 0: the fd is no pidfd, or names a live process or not our
   * child. One waitid(P_PIDFD, WNOWAIT) that takes nothing and never throws.
   */
  waitablePidOfFd(fd: number): number;
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

  // --- process control for `orphan-reaper run` ---
  /** setpgid(2). */
  setpgid(pid: number, pgid: number): void;
  getpgrp(): number;
  /** tcsetpgrp(3): make `pgrp` the foreground process group of the terminal on `fd`. */
  tcsetpgrp(fd: number, pgrp: number): void;
  /** tcgetpgrp(3): the foreground process group of the terminal on `fd`. */
  tcgetpgrp(fd: number): number;
  isatty(fd: number): boolean;
  /** fcntl(F_SETFD): whether `fd` closes on exec. */
  setCloseOnExec(fd: number, on: boolean): void;
  signalDisposition(signal: number): SignalDisposition;
  /** signal(2) with SIG_DFL or SIG_IGN only: no handler code crosses the FFI boundary. */
  setSignalDisposition(signal: number, disposition: "default" | "ignore"): void;
  /** sigprocmask(SIG_SETMASK, empty) on the calling thread, the one that will exec. */
  unblockAllSignals(): void;
  /** SIGRTMIN and SIGRTMAX as this libc numbers them (glibc keeps 32-33 for itself, musl 32-34). */
  realtimeSignalRange(): { readonly min: number; readonly max: number };
  /** pipe2(O_NONBLOCK | O_CLOEXEC): [read end, write end]. */
  nonBlockingPipe(): [number, number];
  /** read(2) on a non-blocking fd: the bytes read, 0 at end of file, -1 when nothing is there (EAGAIN). */
  readNonBlocking(fd: number, into: Uint8Array): number;
  /**
   * `code` copied into a fresh anonymous page that is then made read+execute
   * (mmap read+write, copy, mprotect): its address. Throws the ErrnoError of
   * a W^X policy (SELinux execmem, PaX) that refuses it. Never unmapped.
   */
  mapCode(code: Uint8Array): number;
  /** sigaction(2): machine code at `address` becomes the handler (SA_SIGINFO | SA_RESTART). */
  setNativeSignalHandler(signal: number, address: number): void;
  /** prctl(PR_SET_PDEATHSIG): the signal this process gets when its parent exits. */
  setParentDeathSignal(signal: number): void;
  /** execvp(3): returns only by throwing, when the command cannot be run. */
  execvp(file: string, args: readonly string[]): never;
}

/**
 * The C calls as a runtime binding makes them: each returns the C result
 * (-1 on failure) and `errno()` gives the errno of the call just made, so it
 * must be read before any other call. Buffers are passed by address.
 */
export interface LibcCalls {
  readonly path: string;
  errno(): number;
  getpid(): number;
  close(fd: number): number;
  prctl(option: number, value: number): number;
  /** prctl with an `int *` second argument (the PR_GET_* form). */
  prctlGetInt(option: number, into: Int32Array): number;
  syscall(number: number, arg1: number, arg2: number): number;
  waitid(idType: number, id: number, siginfo: Uint8Array, options: number): number;
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, address: Uint8Array, length: number): number;
  connect(fd: number, address: Uint8Array, length: number): number;
  send(fd: number, data: Uint8Array, length: number, flags: number): number;
  recvfrom(fd: number, into: Uint8Array, length: number, flags: number, address: Uint8Array, addressLength: Uint32Array): number;
  setsockopt(fd: number, level: number, name: number, value: Uint8Array, length: number): number;
  getsockopt(fd: number, level: number, name: number, value: Int32Array, length: Uint32Array): number;
  /** setsockopt(SOL_SOCKET, SO_ATTACH_FILTER) with a sock_fprog pointing at `program`. */
  attachFilter(fd: number, program: Uint8Array): number;
  clockGettime(clock: number, timespec: BigInt64Array): number;
  poll(pollfds: Int32Array, count: number, timeoutMs: number): number;
  // process control for `orphan-reaper run`
  setpgid(pid: number, pgid: number): number;
  getpgrp(): number;
  tcsetpgrp(fd: number, pgrp: number): number;
  tcgetpgrp(fd: number): number;
  isatty(fd: number): number;
  fcntl(fd: number, command: number, argument: number): number;
  /** signal(2) with SIG_DFL (0) or SIG_IGN (1); returns -1 on failure. */
  signal(signal: number, handler: bigint): number;
  /** sigaction(signal, NULL, old). */
  sigactionQuery(signal: number, old: Uint8Array): number;
  /** sigaction(signal, act, NULL). */
  sigactionSet(signal: number, act: Uint8Array): number;
  pipe2(fds: Int32Array, flags: number): number;
  read(fd: number, into: Uint8Array, length: number): number;
  /** mmap(NULL, length, prot, flags, -1, 0): the address, or -1 (MAP_FAILED). */
  mmapAnonymous(length: number, prot: number, flags: number): number;
  mprotect(address: number, length: number, prot: number): number;
  /** memcpy to a raw address (a page from mmapAnonymous). */
  copyToAddress(address: number, from: Uint8Array, length: number): void;
  sigprocmask(how: number, set: Uint8Array): number;
  sigrtmin(): number;
  sigrtmax(): number;
  /** execvp with C strings; returns -1 (it returns only on failure). */
  execvp(file: string, args: readonly string[]): number;
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

  const intBox = new Int32Array(1);
  const lengthBox = new Uint32Array(1);
  const siginfo = new Uint8Array(SIGINFO_SIZE);
  const siginfoView = new DataView(siginfo.buffer);
  const timespec = new BigInt64Array(2); // tv_sec, tv_nsec (64-bit)
  let pollfds = new Int32Array(0);
  const sigaction = new Uint8Array(SIGACTION_SIZE);
  const sigactionView = new DataView(sigaction.buffer);
  const emptySet = new Uint8Array(SIGSET_SIZE);

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
    waitid(idType, id, options) {
      // WNOHANG with nothing to reap leaves si_pid untouched: zero it first.
      siginfo.fill(0);
      checked("waitid", c.waitid(idType, id, siginfo, options));
      return {
        pid: siginfoView.getInt32(SIGINFO_PID, true),
        code: siginfoView.getInt32(SIGINFO_CODE, true),
        status: siginfoView.getInt32(SIGINFO_STATUS, true),
      };
    },
    waitablePidOfFd(fd) {
      siginfo.fill(0);
      if (c.waitid(P_PIDFD, fd, siginfo, WEXITED | WNOHANG | WNOWAIT | __WNOTHREAD) < 0) return 0;
      return siginfoView.getInt32(SIGINFO_PID, true);
    },
    socket: (domain, type, protocol) => checked("socket", c.socket(domain, type, protocol)),
    bind: (fd, address) => void checked("bind", c.bind(fd, address, address.byteLength)),
    connect: (fd, address) => void checked("connect", c.connect(fd, address, address.byteLength)),
    send: (fd, data) => checked("send", c.send(fd, data, data.byteLength, 0)),
    receive(fd, into, address) {
      lengthBox[0] = address.byteLength;
      const read = c.recvfrom(fd, into, into.byteLength, 0, address, lengthBox);
      if (read >= 0) return read;
      const errno = c.errno();
      if (errno === EAGAIN) return -1;
      throw new ErrnoError("recvfrom", errno);
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
      if (pollfds.length < fds.length * POLLFD_INTS) pollfds = new Int32Array(fds.length * POLLFD_INTS);
      fds.forEach((fd, i) => {
        pollfds[i * POLLFD_INTS] = fd;
        pollfds[i * POLLFD_INTS + 1] = POLLIN; // events; revents (upper half, little-endian) zeroed
      });
      checked("poll", c.poll(pollfds, fds.length, 0));
      // A closed fd reports POLLNVAL, not POLLIN.
      return fds.filter((_, i) => ((pollfds[i * POLLFD_INTS + 1]! >>> 16) & POLLIN) !== 0);
    },
    setpgid: (pid, pgid) => void checked("setpgid", c.setpgid(pid, pgid)),
    getpgrp: () => c.getpgrp(),
    tcsetpgrp: (fd, pgrp) => void checked("tcsetpgrp", c.tcsetpgrp(fd, pgrp)),
    tcgetpgrp: (fd) => checked("tcgetpgrp", c.tcgetpgrp(fd)),
    isatty: (fd) => c.isatty(fd) === 1,
    setCloseOnExec: (fd, on) => void checked("fcntl", c.fcntl(fd, F_SETFD, on ? FD_CLOEXEC : 0)),
    signalDisposition(signal) {
      checked("sigaction", c.sigactionQuery(signal, sigaction));
      const handler = sigactionView.getBigUint64(0, true);
      return handler === SIG_DFL ? "default" : handler === SIG_IGN ? "ignore" : "handler";
    },
    setSignalDisposition: (signal, disposition) => void checked("signal", c.signal(signal, disposition === "ignore" ? SIG_IGN : SIG_DFL)),
    unblockAllSignals: () => void checked("sigprocmask", c.sigprocmask(SIG_SETMASK, emptySet)),
    realtimeSignalRange: () => ({ min: c.sigrtmin(), max: c.sigrtmax() }),
    nonBlockingPipe() {
      const fds = new Int32Array(2);
      checked("pipe2", c.pipe2(fds, O_NONBLOCK | O_CLOEXEC));
      return [fds[0]!, fds[1]!];
    },
    readNonBlocking(fd, into) {
      const read = c.read(fd, into, into.byteLength);
      if (read >= 0) return read;
      const errno = c.errno();
      if (errno === EAGAIN) return -1;
      throw new ErrnoError("read", errno);
    },
    mapCode(code) {
      const length = Math.ceil(code.byteLength / PAGE_SIZE) * PAGE_SIZE;
      const address = checked("mmap", c.mmapAnonymous(length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS));
      c.copyToAddress(address, code, code.byteLength);
      checked("mprotect", c.mprotect(address, length, PROT_READ | PROT_EXEC));
      return address;
    },
    setNativeSignalHandler(signal, address) {
      sigaction.fill(0); // an empty sa_mask
      sigactionView.setBigUint64(0, BigInt(address), true);
      sigactionView.setInt32(SIGACTION_FLAGS, SA_SIGINFO | SA_RESTART, true);
      checked("sigaction", c.sigactionSet(signal, sigaction));
    },
    setParentDeathSignal: (signal) => void checked("prctl", c.prctl(PR_SET_PDEATHSIG, signal)),
    execvp(file, args) {
      checked("execvp", c.execvp(file, args));
      throw new Error("execvp returned without an error"); // unreachable: execvp returns only -1
    },
  };
}
