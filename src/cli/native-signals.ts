/**
 * Catches the signals no runtime lets JavaScript listen to (the real-time
 * ones; SIGSTKFLT in Bun) with a signal handler of a few machine instructions,
 * kept here as bytes: no compiler at run time. The handler makes raw syscalls
 * only (async-signal-safe, errno untouched). In the process that installed it
 * (getpid still says so: a child between fork and exec shares the handler and
 * must do nothing) it writes the siginfo, one 128-byte record per signal
 * (real-time signals queue: each one runs the handler), to a non-blocking
 * pipe, then sends SIGCHLD to this process. The record is written before
 * SIGCHLD is sent, so the relay's SIGCHLD listener always finds it.
 *
 * Why SIGCHLD wakes JavaScript rather than a stream on the pipe
 * (Bun.file(fd).stream() or net.Socket({ fd })): one mechanism on both
 * runtimes with no runtime-specific reader, and the runtime queues that
 * SIGCHLD behind the signals that came before it, so records are forwarded
 * in order with the process.on ones. The cost is a spurious reap pass of the
 * reaper's SIGCHLD listener (the init's own signal, never forwarded).
 *
 * A signal the runtime or the kernel must still see (the fault signals, and
 * SIGPWR, JavaScriptCore's thread suspend signal in Bun) gets the handler in
 * front of its previous disposition: only a signal another process sent
 * (si_code SI_USER or SI_QUEUE) is recorded; any other (a real fault, the
 * runtime's own pthread_kill) goes where it went before: a tail jump to the
 * previous handler with the registers it was given, or, for SIG_DFL and
 * SIG_IGN, that disposition set back with a raw rt_sigaction, the signal
 * raised again on this thread for SIG_DFL (its default action happens as
 * the handler returns), and for SIG_IGN nothing more (a real fault runs
 * again, and the kernel never lets an ignored fault pass).
 */
import { SIGINFO_CODE, SIGINFO_SIGNO, SIGINFO_SIZE, type Libc, type SignalAction } from "../libc.ts";

// The syscall numbers (x86_64: <asm/unistd_64.h>; aarch64: <asm-generic/unistd.h>)
// and SIGCHLD (17 on both, <asm-generic/signal.h>).
const SIGCHLD = 17;
const X86_64 = { getpid: 39, write: 1, kill: 62, rt_sigaction: 13, gettid: 186, tkill: 200 };
const AARCH64 = { getpid: 172, write: 64, kill: 129, rt_sigaction: 134, gettid: 178, tkill: 130 };
// <asm-generic/siginfo.h>: si_code of a signal sent by kill(2) and by sigqueue(3).
const SI_USER = 0;
const SI_QUEUE = -1;
// The kernel's struct sigaction for rt_sigaction (handler, flags, restorer,
// 8-byte mask on both): 32 bytes after the code, all zero but the handler
// (SIG_DFL 0 or SIG_IGN 1); rt_sigaction's last argument is the mask's size.
const KERNEL_SIGACTION_SIZE = 32;
const KERNEL_SIGSET_SIZE = 8;
const SIG_IGN = 1;

/**
 * Where a signal the handler does not forward goes: the previous handler
 * (after SIG_DFL is set, if it asked for SA_RESETHAND), or the previous
 * disposition set back. Undefined: every signal is forwarded.
 */
export type NotForwarded = { readonly jumpTo: number; readonly resetFirst: boolean } | { readonly restore: "default" | "ignore" };

/** What `previous` (sigaction's old action) would have done with a signal the handler does not forward. */
export function notForwardedFor(previous: SignalAction): NotForwarded {
  if (previous.disposition === "handler") return { jumpTo: previous.handler, resetFirst: previous.resetsToDefault };
  return { restore: previous.disposition };
}

function le32(value: number): number[] {
  return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];
}

function le64(value: number): number[] {
  return [...le32(value % 2 ** 32), ...le32(Math.floor(value / 2 ** 32))];
}

/** The kernel sigaction the code sets back: SIG_IGN for "ignore", else SIG_DFL (all zero). */
function kernelSigaction(notForwarded: NotForwarded): number[] {
  const restored = "restore" in notForwarded && notForwarded.restore === "ignore" ? SIG_IGN : 0;
  return [...le64(restored), ...new Array<number>(KERNEL_SIGACTION_SIZE - 8).fill(0)];
}

const resets = (notForwarded: NotForwarded) => "restore" in notForwarded || notForwarded.resetFirst;

/** Lays out [filter, not-forwarded path, forward path, padding, kernel sigaction]. */
function withSigaction(code: number[], notForwarded: NotForwarded, padding: number): Uint8Array {
  const padded = [...code, ...new Array<number>((8 - (code.length % 8)) % 8).fill(padding)];
  return new Uint8Array([...padded, ...kernelSigaction(notForwarded)]);
}

/**
 * x86_64, the path of a signal not forwarded (signo in edi, siginfo in rsi,
 * context in rdx): rt_sigaction(signo, sigaction, NULL, 8) with rsi and rdx
 * kept in r8 and r9, then a jump through r11 (scratch, no argument: rax
 * keeps the 0 the kernel put there), a raise (gettid, tkill), or ret.
 * `sigactionFrom`: the sigaction's offset from this path's start.
 */
function x86_64NotForwarded(notForwarded: NotForwarded, sigactionFrom: number): number[] {
  const reset = [
    0x49, 0x89, 0xf0, // mov r8, rsi
    0x49, 0x89, 0xd1, // mov r9, rdx
    0x48, 0x8d, 0x35, ...le32(sigactionFrom - 13), // lea rsi, [rip + sigaction] (this instruction ends at 13)
    0x31, 0xd2, // xor edx, edx
    0x41, 0xba, ...le32(KERNEL_SIGSET_SIZE), // mov r10d, 8
    0xb8, ...le32(X86_64.rt_sigaction), 0x0f, 0x05, // rt_sigaction
    0x4c, 0x89, 0xc6, // mov rsi, r8
    0x4c, 0x89, 0xca, // mov rdx, r9
  ];
  const before = resets(notForwarded) ? reset : [];
  if ("jumpTo" in notForwarded) return [...before, 0x49, 0xbb, ...le64(notForwarded.jumpTo), 0x41, 0xff, 0xe3]; // movabs r11; jmp r11
  if (notForwarded.restore === "ignore") return [...before, 0xc3];
  return [
    ...before,
    0x89, 0xfe, // mov esi, edi (the signal)
    0xb8, ...le32(X86_64.gettid), 0x0f, 0x05, // gettid
    0x89, 0xc7, // mov edi, eax
    0xb8, ...le32(X86_64.tkill), 0x0f, 0x05, // tkill(tid, signal): pending until the handler returns
    0xc3, // ret
  ];
}

/** handler(signo in edi, siginfo in rsi, context in rdx); syscall clobbers rax, rcx, r11 only. */
function x86_64Handler(pipeFd: number, pid: number, notForwarded?: NotForwarded): Uint8Array {
  const forward = x86_64Forward(pipeFd, pid);
  if (!notForwarded) return new Uint8Array(forward);
  const elsewhere = x86_64NotForwarded(notForwarded, 0).length; // the same for any offset
  const filter = [
    0x83, 0x7e, SIGINFO_CODE, SI_USER, // cmp dword [rsi + 8], SI_USER
    0x74, 6 + elsewhere, // je forward
    0x83, 0x7e, SIGINFO_CODE, SI_QUEUE & 0xff, // cmp dword [rsi + 8], SI_QUEUE
    0x74, elsewhere, // je forward
  ];
  const sigactionAt = Math.ceil((filter.length + elsewhere + forward.length) / 8) * 8;
  const code = [...filter, ...x86_64NotForwarded(notForwarded, sigactionAt - filter.length), ...forward];
  return withSigaction(code, notForwarded, 0xcc);
}

/** The handler of every forwarded signal: in the process that installed it, the record, then SIGCHLD. */
function x86_64Forward(pipeFd: number, pid: number): number[] {
  const sendRecord = [
    0xbf, ...le32(pipeFd), // mov edi, pipeFd
    0xba, ...le32(SIGINFO_SIZE), // mov edx, 128 (rsi: the siginfo)
    0xb8, ...le32(X86_64.write), 0x0f, 0x05, // write
    0xbf, ...le32(pid), // mov edi, pid
    0xbe, ...le32(SIGCHLD), // mov esi, SIGCHLD
    0xb8, ...le32(X86_64.kill), 0x0f, 0x05, // kill
  ];
  return [
    0xb8, ...le32(X86_64.getpid), 0x0f, 0x05, // getpid
    0x3d, ...le32(pid), // cmp eax, pid
    0x75, sendRecord.length, // jne ret
    ...sendRecord,
    0xc3, // ret
  ];
}

// A64 encodings (Arm ARM C6): register numbers in the low 5 bits.
const movz64 = (rd: number, imm16: number) => 0xd2800000 | (imm16 << 5) | rd;
const movz32 = (rd: number, imm16: number) => 0x52800000 | (imm16 << 5) | rd;
const movk32Lsl16 = (rd: number, imm16: number) => 0x72a00000 | (imm16 << 5) | rd;
const SVC_0 = 0xd4000001;
const RET = 0xd65f03c0;
const CMP_W0_W9 = 0x6b09001f; // subs wzr, w0, w9
const bNe = (instructions: number) => 0x54000000 | (instructions << 5) | 0x1;
const movk64 = (rd: number, imm16: number, shift: number) => 0xf2800000 | ((shift / 16) << 21) | (imm16 << 5) | rd;
const movX = (rd: number, rm: number) => 0xaa0003e0 | (rm << 16) | rd; // orr xd, xzr, xm
const movW = (rd: number, rm: number) => 0x2a0003e0 | (rm << 16) | rd; // orr wd, wzr, wm
const LDR_W9_SI_CODE = 0xb9400000 | ((SIGINFO_CODE / 4) << 10) | (1 << 5) | 9; // ldr w9, [x1, #8]
const CMN_W9_1 = 0x3100053f; // adds wzr, w9, #1: equal when w9 is SI_QUEUE (-1)
const cbzW9 = (instructions: number) => 0x34000000 | (instructions << 5) | 9;
const bEq = (instructions: number) => 0x54000000 | (instructions << 5);
const adr = (rd: number, bytes: number) => 0x10000000 | ((bytes & 3) << 29) | (((bytes >> 2) & 0x7ffff) << 5) | rd;
const BR_X16 = 0xd61f0200;

/**
 * aarch64, the path of a signal not forwarded (x0 signo, x1 siginfo, x2
 * context): rt_sigaction(signo, sigaction, NULL, 8) with x0-x2 kept in
 * x12, x10, x11, then a jump through x16 (IP0, the veneer register), a raise
 * (gettid, tkill) or ret. `sigactionFrom`: the sigaction's offset from this path's start.
 */
function aarch64NotForwarded(notForwarded: NotForwarded, sigactionFrom: number): number[] {
  const reset = [
    movX(12, 0), movX(10, 1), movX(11, 2),
    adr(1, sigactionFrom - 12), movz64(2, 0), movz64(3, KERNEL_SIGSET_SIZE), movz64(8, AARCH64.rt_sigaction), SVC_0,
    movX(0, 12), movX(1, 10), movX(2, 11),
  ];
  const before = resets(notForwarded) ? reset : [];
  if ("jumpTo" in notForwarded) {
    const address = notForwarded.jumpTo;
    const halves = [address % 0x10000, Math.floor(address / 0x10000) % 0x10000, Math.floor(address / 2 ** 32) % 0x10000, Math.floor(address / 2 ** 48)];
    return [...before, movz64(16, halves[0]!), movk64(16, halves[1]!, 16), movk64(16, halves[2]!, 32), movk64(16, halves[3]!, 48), BR_X16];
  }
  if (notForwarded.restore === "ignore") return [...before, RET];
  return [...before, movz64(8, AARCH64.gettid), SVC_0, movW(1, 12), movz64(8, AARCH64.tkill), SVC_0, RET];
}

/** handler(signo in x0, siginfo in x1, context in x2); svc clobbers x0 only. Run here under qemu-user. */
function aarch64Handler(pipeFd: number, pid: number, notForwarded?: NotForwarded): Uint8Array {
  const forward = aarch64Forward(pipeFd, pid);
  if (!notForwarded) return words(forward);
  const elsewhere = aarch64NotForwarded(notForwarded, 0).length;
  const filter = [LDR_W9_SI_CODE, cbzW9(3 + elsewhere), CMN_W9_1, bEq(1 + elsewhere)];
  const sigactionAt = Math.ceil(((filter.length + elsewhere + forward.length) * 4) / 8) * 8;
  const code = [...filter, ...aarch64NotForwarded(notForwarded, sigactionAt - filter.length * 4), ...forward];
  return withSigaction([...words(code)], notForwarded, 0);
}

function aarch64Forward(pipeFd: number, pid: number): number[] {
  const sendRecord = [
    movz64(0, pipeFd), movz64(2, SIGINFO_SIZE), movz64(8, AARCH64.write), SVC_0, // write(pipeFd, x1, 128)
    movW(0, 9), movz64(1, SIGCHLD), movz64(8, AARCH64.kill), SVC_0, // kill(pid, SIGCHLD)
  ];
  return [
    movz64(8, AARCH64.getpid), SVC_0,
    movz32(9, pid & 0xffff), movk32Lsl16(9, pid >>> 16), CMP_W0_W9,
    bNe(sendRecord.length + 1), // to ret
    ...sendRecord,
    RET,
  ];
}

/** Little-endian, as both architectures run. */
function words(instructions: readonly number[]): Uint8Array {
  return new Uint8Array(new Uint32Array(instructions.map((word) => word >>> 0)).buffer);
}

/** The handler's machine code for `arch`, or undefined where there is none. */
export function handlerCode(arch: string, pipeFd: number, pid: number, notForwarded?: NotForwarded): Uint8Array | undefined {
  if (arch === "x64") return x86_64Handler(pipeFd, pid, notForwarded);
  // movz takes a 16-bit immediate: an fd above that would need one more instruction.
  if (arch === "arm64" && pipeFd <= 0xffff) return aarch64Handler(pipeFd, pid, notForwarded);
  return undefined;
}

/** The signal number of each record in `bytes` (whole records, as the pipe gives them). */
function signalsOfRecords(bytes: Uint8Array, length: number): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, length);
  const signals: number[] = [];
  for (let offset = 0; offset + SIGINFO_SIZE <= length; offset += SIGINFO_SIZE) signals.push(view.getInt32(offset + SIGINFO_SIGNO, true));
  return signals;
}

export interface NativeSignals {
  /** The signals caught since the last drain, in the order they came. */
  drain(): number[];
}

const RECORDS_PER_READ = 64;

/**
 * Installs the handler on each of `signals` (none of which may carry a
 * handler of the runtime's), and in front of the previous disposition on
 * each of `inFront` (only what another process sent is recorded there).
 * Throws, with the reason, where it cannot: no code for this architecture,
 * or mmap/mprotect refused (a W^X policy); then every signal is as it was.
 */
export function catchNatively(libc: Libc, signals: readonly number[], inFront: readonly number[] = [], arch = process.arch): NativeSignals {
  const [readFd, writeFd] = libc.nonBlockingPipe();
  const installed: { signal: number; previous: SignalAction }[] = [];
  const codeFor = (notForwarded?: NotForwarded) => {
    const code = handlerCode(arch, writeFd, process.pid, notForwarded);
    if (!code) throw new Error(`no native signal handler for the ${arch} architecture`);
    return libc.mapCode(code);
  };
  try {
    const address = codeFor();
    for (const signal of signals) {
      installed.push({ signal, previous: libc.signalAction(signal) });
      libc.setNativeSignalHandler(signal, address);
    }
    for (const signal of inFront) {
      const previous = libc.signalAction(signal);
      const chained = codeFor(notForwardedFor(previous));
      installed.push({ signal, previous });
      libc.setNativeSignalHandler(signal, chained, previous);
    }
  } catch (err) {
    // No handler may outlive the pipe: its fd number could name another file next.
    for (const { signal, previous } of installed) libc.restoreSignalAction(signal, previous);
    libc.close(readFd);
    libc.close(writeFd);
    throw err;
  }
  const buffer = new Uint8Array(SIGINFO_SIZE * RECORDS_PER_READ);
  return {
    drain() {
      const caught: number[] = [];
      for (let read = libc.readNonBlocking(readFd, buffer); read > 0; read = libc.readNonBlocking(readFd, buffer)) {
        caught.push(...signalsOfRecords(buffer, read));
      }
      return caught;
    },
  };
}
