/**
 * The kernel boundary: the only module that opens libc through bun:ffi.
 * Every call is a small synchronous wrapper that reads errno at once (through
 * __errno_location, never the `errno` symbol, a known Bun segfault) and turns
 * -1 into an ErrnoError naming the call. Arguments are plain integers and
 * buffers; no JSCallback (threadsafe callbacks have a crash history in Bun).
 *
 * The libc file is the one this process already has mapped (glibc's
 * libc.so.6 or musl's ld-musl-<arch>.so.1), read from /proc/self/maps, so no
 * header, compiler or install script is needed on the user's machine.
 */
import { dlopen, FFIType, ptr as addressOf, read, type Pointer } from "bun:ffi";
import { readFileSync } from "node:fs";
import { ErrnoError } from "./errno.ts";
import { SO_ATTACH_FILTER, SOL_SOCKET } from "./netlink/constants.ts";

// <linux/prctl.h>
const PR_SET_CHILD_SUBREAPER = 36;
const PR_GET_CHILD_SUBREAPER = 37;
// <linux/wait.h>
export const P_ALL = 0;
export const P_PID = 1;
export const P_PIDFD = 3;
export const WNOHANG = 0x1;
export const WEXITED = 0x4;
export const WNOWAIT = 0x01000000;
// <asm-generic/unistd.h>: pidfd_open is 434 on every architecture (unified
// syscall table since Linux 5.1); musl has no wrapper for it.
const SYS_pidfd_open = 434;
// <poll.h>: struct pollfd { int fd; short events; short revents; }, 8 bytes.
const POLLFD_INTS = 2;
const POLLIN = 0x1;
// <bits/siginfo.h>: siginfo_t is 128 bytes; for SIGCHLD, si_code at +8,
// si_pid at +16, si_status at +24 (64-bit layout, after the 4-byte pad).
const SIGINFO_SIZE = 128;
const SIGINFO_CODE = 8;
const SIGINFO_PID = 16;
const SIGINFO_STATUS = 24;
// <asm-generic/siginfo.h> si_code values for SIGCHLD
export const CLD_EXITED = 1;
export const CLD_KILLED = 2;
export const CLD_DUMPED = 3;
// <linux/time.h>: the clock of ktime_get_ns(), which stamps proc events.
const CLOCK_MONOTONIC = 1;
// <linux/filter.h>: struct sock_fprog is
// { u16 len; (6 bytes pad) struct sock_filter *filter; } on 64-bit.
const SOCK_FILTER_SIZE = 8;
const SOCK_FPROG_SIZE = 16;
const SOCK_FPROG_FILTER = 8;
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
// struct sigaction (glibc 152 bytes, musl 152): the handler is the first field;
// sigset_t is 128 bytes in both (the kernel reads the first 8).
const SIGACTION_SIZE = 152;
const SIGSET_SIZE = 128;

/** What a signal does to this process now: its disposition. */
export type SignalDisposition = "default" | "ignore" | "handler";

const { i32, u32, i64, u64, ptr } = FFIType;

const symbols = {
  __errno_location: { args: [], returns: ptr },
  getpid: { args: [], returns: i32 },
  close: { args: [i32], returns: i32 },
  prctl: { args: [i32, u64, u64, u64, u64], returns: i32 },
  syscall: { args: [i64, i64, i64], returns: i64 },
  waitid: { args: [i32, u32, ptr, i32], returns: i32 },
  socket: { args: [i32, i32, i32], returns: i32 },
  bind: { args: [i32, ptr, u32], returns: i32 },
  connect: { args: [i32, ptr, u32], returns: i32 },
  send: { args: [i32, ptr, u64, i32], returns: i64 },
  recvfrom: { args: [i32, ptr, u64, i32, ptr, ptr], returns: i64 },
  setsockopt: { args: [i32, i32, i32, ptr, u32], returns: i32 },
  getsockopt: { args: [i32, i32, i32, ptr, ptr], returns: i32 },
  clock_gettime: { args: [i32, ptr], returns: i32 },
  poll: { args: [ptr, u64, i32], returns: i32 },
  // --- process control for `orphan-reaper run` (src/cli/run.ts, src/cli/trampoline.ts) ---
  setpgid: { args: [i32, i32], returns: i32 },
  getpgrp: { args: [], returns: i32 },
  tcsetpgrp: { args: [i32, i32], returns: i32 },
  tcgetpgrp: { args: [i32], returns: i32 },
  isatty: { args: [i32], returns: i32 },
  fcntl: { args: [i32, i32, i32], returns: i32 },
  signal: { args: [i32, u64], returns: i64 },
  sigaction: { args: [i32, ptr, ptr], returns: i32 },
  sigprocmask: { args: [i32, ptr, ptr], returns: i32 },
  __libc_current_sigrtmin: { args: [], returns: i32 },
  __libc_current_sigrtmax: { args: [], returns: i32 },
  execvp: { args: [ptr, ptr], returns: i32 },
} as const;

type Symbols = ReturnType<typeof dlopen<typeof symbols>>["symbols"];

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
  /** recvfrom(2); returns the bytes read and fills `address` (sockaddr). */
  recvfrom(fd: number, into: Uint8Array, address: Uint8Array): number;
  setsockopt(fd: number, level: number, name: number, value: Uint8Array): void;
  getsockoptInt(fd: number, level: number, name: number): number;
  /** SO_ATTACH_FILTER with a classic BPF program (struct sock_filter[] bytes). */
  attachSocketFilter(fd: number, program: Uint8Array): void;
  /** clock_gettime(CLOCK_MONOTONIC) in nanoseconds: the kernel's ktime_get_ns(). */
  monotonicNs(): bigint;
  /** Of the fds 0 .. count-1, those open and readable now: one poll(2) with POLLIN and no wait. */
  readableFdsBelow(count: number): number[];

  // --- process control for `orphan-reaper run` ---
  /** setpgid(2). */
  setpgid(pid: number, pgid: number): void;
  getpgrp(): number;
  /** tcsetpgrp(3): make `pgrp` the foreground process group of the terminal on `fd`. */
  tcsetpgrp(fd: number, pgrp: number): void;
  /** tcgetpgrp(3): the foreground process group of the terminal on `fd`. */
  tcgetpgrp(fd: number): number;
  isatty(fd: number): boolean;
  setCloseOnExec(fd: number): void;
  signalDisposition(signal: number): SignalDisposition;
  /** signal(2) with SIG_DFL or SIG_IGN only: no handler code crosses the FFI boundary. */
  setSignalDisposition(signal: number, disposition: "default" | "ignore"): void;
  /** sigprocmask(SIG_SETMASK, empty) on the calling thread, the one that will exec. */
  unblockAllSignals(): void;
  /** SIGRTMIN and SIGRTMAX as this libc numbers them (glibc keeps 32-33 for itself, musl 32-34). */
  realtimeSignalRange(): { readonly min: number; readonly max: number };
  /** prctl(PR_SET_PDEATHSIG): the signal this process gets when its parent exits. */
  setParentDeathSignal(signal: number): void;
  /** execvp(3): returns only by throwing, when the command cannot be run. */
  execvp(file: string, args: readonly string[]): never;
}

/** The path of the C library this process has mapped (glibc or musl). */
export function findLoadedLibc(maps = readFileSync("/proc/self/maps", "utf8")): string {
  const libcPattern = /\s(\/\S*\/(?:libc\.so\.6|libc\.musl-[^/\s]+\.so\.1|ld-musl-[^/\s]+\.so\.1))$/m;
  const match = libcPattern.exec(maps);
  if (!match?.[1]) throw new Error("no glibc or musl libc is mapped in /proc/self/maps");
  return match[1];
}

let loaded: Libc | undefined;

/** Opens libc once; throws when the platform or FFI cannot serve. */
export function loadLibc(): Libc {
  if (process.platform !== "linux") throw new Error(`platform ${process.platform} is not Linux`);
  loaded ??= bindLibc(findLoadedLibc());
  return loaded;
}

function bindLibc(path: string): Libc {
  const lib: Symbols = dlopen(path, symbols).symbols;
  const errnoPointer = lib.__errno_location() as Pointer;
  const lastErrno = () => read.i32(errnoPointer, 0);

  /** Runs one libc call; a negative result becomes an ErrnoError. */
  function checked<T extends number | bigint>(syscall: string, result: T): T {
    if (result < 0) throw new ErrnoError(syscall, lastErrno());
    return result;
  }

  const intBox = new Int32Array(1);
  const lengthBox = new Uint32Array(1);
  const siginfo = new Uint8Array(SIGINFO_SIZE);
  const siginfoView = new DataView(siginfo.buffer);
  const timespec = new BigInt64Array(2); // tv_sec, tv_nsec (64-bit)
  let pollfds = new Int32Array(0);

  return {
    path,
    getpid: () => lib.getpid(),
    close: (fd) => void checked("close", lib.close(fd)),
    setChildSubreaper: (on) => void checked("prctl", lib.prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0, 0, 0, 0)),
    isChildSubreaper() {
      checked("prctl", lib.prctl(PR_GET_CHILD_SUBREAPER, addressOf(intBox), 0, 0, 0));
      return intBox[0] !== 0;
    },
    pidfdOpen: (pid) => Number(checked("pidfd_open", lib.syscall(SYS_pidfd_open, pid, 0))),
    waitid(idType, id, options) {
      // WNOHANG with nothing to reap leaves si_pid untouched: zero it first.
      siginfo.fill(0);
      checked("waitid", lib.waitid(idType, id, siginfo, options));
      return {
        pid: siginfoView.getInt32(SIGINFO_PID, true),
        code: siginfoView.getInt32(SIGINFO_CODE, true),
        status: siginfoView.getInt32(SIGINFO_STATUS, true),
      };
    },
    socket: (domain, type, protocol) => checked("socket", lib.socket(domain, type, protocol)),
    bind: (fd, address) => void checked("bind", lib.bind(fd, address, address.byteLength)),
    connect: (fd, address) => void checked("connect", lib.connect(fd, address, address.byteLength)),
    send: (fd, data) => Number(checked("send", lib.send(fd, data, data.byteLength, 0))),
    recvfrom(fd, into, address) {
      lengthBox[0] = address.byteLength;
      return Number(checked("recvfrom", lib.recvfrom(fd, into, into.byteLength, 0, address, lengthBox)));
    },
    setsockopt: (fd, level, name, value) =>
      void checked("setsockopt", lib.setsockopt(fd, level, name, value, value.byteLength)),
    getsockoptInt(fd, level, name) {
      lengthBox[0] = 4;
      checked("getsockopt", lib.getsockopt(fd, level, name, intBox, lengthBox));
      return intBox[0] ?? 0;
    },
    attachSocketFilter(fd, program) {
      const fprog = new Uint8Array(SOCK_FPROG_SIZE);
      const view = new DataView(fprog.buffer);
      view.setUint16(0, program.byteLength / SOCK_FILTER_SIZE, true);
      // A real address: the kernel copies the program during this call, while
      // `program` is still referenced here, so it cannot move or be freed.
      view.setBigUint64(SOCK_FPROG_FILTER, BigInt(addressOf(program)), true);
      checked("setsockopt", lib.setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, fprog, SOCK_FPROG_SIZE));
    },
    monotonicNs() {
      checked("clock_gettime", lib.clock_gettime(CLOCK_MONOTONIC, timespec));
      return (timespec[0] ?? 0n) * 1_000_000_000n + (timespec[1] ?? 0n);
    },
    readableFdsBelow(count) {
      if (pollfds.length < count * POLLFD_INTS) pollfds = new Int32Array(count * POLLFD_INTS);
      for (let fd = 0; fd < count; fd++) {
        pollfds[fd * POLLFD_INTS] = fd;
        pollfds[fd * POLLFD_INTS + 1] = POLLIN; // events; revents (upper half, little-endian) zeroed
      }
      checked("poll", lib.poll(pollfds, count, 0));
      const readable: number[] = [];
      // A closed fd reports POLLNVAL, not POLLIN.
      for (let fd = 0; fd < count; fd++) if (((pollfds[fd * POLLFD_INTS + 1]! >>> 16) & POLLIN) !== 0) readable.push(fd);
      return readable;
    },
    ...bindProcessControl(lib, checked),
  };
}

/** A NUL-terminated C string. */
function cString(text: string): Buffer {
  return Buffer.from(`${text}\0`, "utf8");
}

// --- process control for `orphan-reaper run` ---
type ProcessControl = Pick<
  Libc,
  | "setpgid" | "getpgrp" | "tcsetpgrp" | "tcgetpgrp" | "isatty" | "setCloseOnExec" | "signalDisposition" | "setSignalDisposition"
  | "unblockAllSignals" | "realtimeSignalRange" | "setParentDeathSignal" | "execvp"
>;

function bindProcessControl(lib: Symbols, checked: <T extends number | bigint>(syscall: string, result: T) => T): ProcessControl {
  const sigaction = new Uint8Array(SIGACTION_SIZE);
  const sigactionView = new DataView(sigaction.buffer);
  const emptySet = new Uint8Array(SIGSET_SIZE);
  return {
    setpgid: (pid, pgid) => void checked("setpgid", lib.setpgid(pid, pgid)),
    getpgrp: () => lib.getpgrp(),
    tcsetpgrp: (fd, pgrp) => void checked("tcsetpgrp", lib.tcsetpgrp(fd, pgrp)),
    tcgetpgrp: (fd) => checked("tcgetpgrp", lib.tcgetpgrp(fd)),
    isatty: (fd) => lib.isatty(fd) === 1,
    setCloseOnExec: (fd) => void checked("fcntl", lib.fcntl(fd, F_SETFD, FD_CLOEXEC)),
    signalDisposition(signal) {
      checked("sigaction", lib.sigaction(signal, null, sigaction));
      const handler = sigactionView.getBigUint64(0, true);
      return handler === SIG_DFL ? "default" : handler === SIG_IGN ? "ignore" : "handler";
    },
    setSignalDisposition: (signal, disposition) =>
      void checked("signal", lib.signal(signal, disposition === "ignore" ? SIG_IGN : SIG_DFL)),
    unblockAllSignals: () => void checked("sigprocmask", lib.sigprocmask(SIG_SETMASK, emptySet, null)),
    realtimeSignalRange: () => ({ min: lib.__libc_current_sigrtmin(), max: lib.__libc_current_sigrtmax() }),
    setParentDeathSignal: (signal) => void checked("prctl", lib.prctl(PR_SET_PDEATHSIG, signal, 0, 0, 0)),
    execvp(file, args) {
      // The strings must stay referenced until execvp returns: they are, in `strings`.
      const strings = args.map(cString);
      const argv = new BigUint64Array(strings.length + 1); // NULL-terminated
      strings.forEach((text, i) => (argv[i] = BigInt(addressOf(text))));
      checked("execvp", lib.execvp(cString(file), argv));
      throw new Error("execvp returned without an error"); // unreachable: execvp returns only -1
    },
  };
}
