/**
 * The half of the kernel boundary that `orphan-reaper run` adds (process
 * groups and the terminal, signal dispositions and the native signal
 * handler, exec): its Libc calls, the C calls a runtime binding provides for
 * them, and their constants and structs, named once beside their headers.
 * libc.ts joins it to the reaper's half; nothing else imports it.
 */

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
const SIGACTION_MASK = 8; // the kernel's sigset is its first 8 bytes
// <asm-generic/signal.h> (SA_RESTORER: <asm/signal.h> of x86_64 and aarch64)
const SA_SIGINFO = 0x4;
const SA_RESTORER = 0x04000000;
const SA_RESTART = 0x10000000;
const SA_RESETHAND = 0x80000000;
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

/** sigaction(signal, NULL, &old): the disposition, and for a handler its address, flags and mask. */
export interface SignalAction {
  readonly disposition: SignalDisposition;
  /** The handler's address (0 for SIG_DFL, 1 for SIG_IGN). */
  readonly handler: number;
  readonly flags: number;
  /** The signals blocked while the handler runs: the 8 bytes of sa_mask the kernel reads. */
  readonly mask: bigint;
  /** SA_RESETHAND: the kernel sets SIG_DFL as the handler starts. */
  readonly resetsToDefault: boolean;
}

export interface ProcessControl {
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
  signalAction(signal: number): SignalAction;
  /** sigaction(2) back to `action`, as signalAction read it. */
  restoreSignalAction(signal: number, action: SignalAction): void;
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
  /**
   * sigaction(2): machine code at `address` becomes the handler, with
   * SA_SIGINFO | SA_RESTART; or, in front of `previous` (a handler it jumps
   * to), with that handler's flags (SA_ONSTACK above all: crash handlers run
   * on the alternate stack) and mask, plus SA_SIGINFO, minus SA_RESETHAND
   * (the code resets the handler itself, only before it jumps), plus
   * SA_RESTART (a forwarded signal must not fail a blocking call of the
   * runtime with EINTR; a fault never interrupts one).
   */
  setNativeSignalHandler(signal: number, address: number, previous?: SignalAction): void;
  /** prctl(PR_SET_PDEATHSIG): the signal this process gets when its parent exits. */
  setParentDeathSignal(signal: number): void;
  /** execvp(3): returns only by throwing, when the command cannot be run. */
  execvp(file: string, args: readonly string[]): never;
}

/** The C calls behind ProcessControl, as LibcCalls describes them. */
export interface ProcessControlCalls {
  prctl(option: number, value: number): number;
  setpgid(pid: number, pgid: number): number;
  getpgrp(): number;
  tcsetpgrp(fd: number, pgrp: number): number;
  tcgetpgrp(fd: number): number;
  isatty(fd: number): number;
  fcntl(fd: number, command: number, argument: number): number;
  /** signal(2) with SIG_DFL (0) or SIG_IGN (1): the previous handler, or SIG_ERR (-1). */
  signal(signal: number, handler: bigint): number | bigint;
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

type Check = (syscall: string, result: number) => number;

/** `checked` throws the call's ErrnoError on -1; `checkedOrEmpty` answers -1 for EAGAIN instead (libc.ts). */
export function processControlFromCalls(c: ProcessControlCalls, checked: Check, checkedOrEmpty: Check): ProcessControl {
  const sigaction = new Uint8Array(SIGACTION_SIZE);
  const sigactionView = new DataView(sigaction.buffer);
  const emptySet = new Uint8Array(SIGSET_SIZE);
  const setSigaction = (handler: bigint, flags: number, mask: bigint) => {
    sigaction.fill(0);
    sigactionView.setBigUint64(0, handler, true);
    sigactionView.setBigUint64(SIGACTION_MASK, mask, true);
    sigactionView.setUint32(SIGACTION_FLAGS, flags >>> 0, true);
  };
  const signalAction = (signal: number): SignalAction => {
    checked("sigaction", c.sigactionQuery(signal, sigaction));
    const handler = sigactionView.getBigUint64(0, true);
    const flags = sigactionView.getUint32(SIGACTION_FLAGS, true);
    return {
      disposition: handler === SIG_DFL ? "default" : handler === SIG_IGN ? "ignore" : "handler",
      handler: Number(handler),
      // libc adds its own restorer where the architecture needs one
      flags: (flags & ~SA_RESTORER) >>> 0,
      mask: sigactionView.getBigUint64(SIGACTION_MASK, true),
      resetsToDefault: (flags & SA_RESETHAND) !== 0,
    };
  };
  return {
    setpgid: (pid, pgid) => void checked("setpgid", c.setpgid(pid, pgid)),
    getpgrp: () => c.getpgrp(),
    tcsetpgrp: (fd, pgrp) => void checked("tcsetpgrp", c.tcsetpgrp(fd, pgrp)),
    tcgetpgrp: (fd) => checked("tcgetpgrp", c.tcgetpgrp(fd)),
    isatty: (fd) => c.isatty(fd) === 1,
    setCloseOnExec: (fd, on) => void checked("fcntl", c.fcntl(fd, F_SETFD, on ? FD_CLOEXEC : 0)),
    signalDisposition: (signal) => signalAction(signal).disposition,
    signalAction,
    restoreSignalAction(signal, { handler, flags, mask }) {
      setSigaction(BigInt(handler), flags, mask);
      checked("sigaction", c.sigactionSet(signal, sigaction));
    },
    setSignalDisposition(signal, disposition) {
      // SIG_ERR is (void *)-1: the only negative handler value.
      const previous = Number(c.signal(signal, disposition === "ignore" ? SIG_IGN : SIG_DFL));
      checked("signal", previous === -1 ? -1 : 0);
    },
    unblockAllSignals: () => void checked("sigprocmask", c.sigprocmask(SIG_SETMASK, emptySet)),
    realtimeSignalRange: () => ({ min: c.sigrtmin(), max: c.sigrtmax() }),
    nonBlockingPipe() {
      const fds = new Int32Array(2);
      checked("pipe2", c.pipe2(fds, O_NONBLOCK | O_CLOEXEC));
      return [fds[0]!, fds[1]!];
    },
    readNonBlocking: (fd, into) => checkedOrEmpty("read", c.read(fd, into, into.byteLength)),
    mapCode(code) {
      const length = Math.ceil(code.byteLength / PAGE_SIZE) * PAGE_SIZE;
      const address = checked("mmap", c.mmapAnonymous(length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS));
      c.copyToAddress(address, code, code.byteLength);
      checked("mprotect", c.mprotect(address, length, PROT_READ | PROT_EXEC));
      return address;
    },
    setNativeSignalHandler(signal, address, previous) {
      if (previous?.disposition === "handler") setSigaction(BigInt(address), (previous.flags & ~SA_RESETHAND) | SA_SIGINFO | SA_RESTART, previous.mask);
      else setSigaction(BigInt(address), SA_SIGINFO | SA_RESTART, 0n);
      checked("sigaction", c.sigactionSet(signal, sigaction));
    },
    setParentDeathSignal: (signal) => void checked("prctl", c.prctl(PR_SET_PDEATHSIG, signal)),
    execvp(file, args) {
      checked("execvp", c.execvp(file, args));
      throw new Error("execvp returned without an error"); // unreachable: execvp returns only -1
    },
  };
}
