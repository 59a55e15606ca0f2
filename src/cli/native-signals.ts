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
 */
import { SIGINFO_SIGNO, SIGINFO_SIZE, type Libc } from "../libc.ts";

// The syscall numbers (x86_64: <asm/unistd_64.h>; aarch64: <asm-generic/unistd.h>)
// and SIGCHLD (17 on both, <asm-generic/signal.h>).
const SIGCHLD = 17;
const X86_64 = { getpid: 39, write: 1, kill: 62 };
const AARCH64 = { getpid: 172, write: 64, kill: 129 };

function le32(value: number): number[] {
  return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];
}

/** handler(signo in edi, siginfo in rsi, context in rdx); syscall clobbers rax, rcx, r11 only. */
function x86_64Handler(pipeFd: number, pid: number): Uint8Array {
  const sendRecord = [
    0xbf, ...le32(pipeFd), // mov edi, pipeFd
    0xba, ...le32(SIGINFO_SIZE), // mov edx, 128 (rsi: the siginfo)
    0xb8, ...le32(X86_64.write), 0x0f, 0x05, // write
    0xbf, ...le32(pid), // mov edi, pid
    0xbe, ...le32(SIGCHLD), // mov esi, SIGCHLD
    0xb8, ...le32(X86_64.kill), 0x0f, 0x05, // kill
  ];
  return new Uint8Array([
    0xb8, ...le32(X86_64.getpid), 0x0f, 0x05, // getpid
    0x3d, ...le32(pid), // cmp eax, pid
    0x75, sendRecord.length, // jne ret
    ...sendRecord,
    0xc3, // ret
  ]);
}

// A64 encodings (Arm ARM C6): register numbers in the low 5 bits.
const movz64 = (rd: number, imm16: number) => 0xd2800000 | (imm16 << 5) | rd;
const movz32 = (rd: number, imm16: number) => 0x52800000 | (imm16 << 5) | rd;
const movk32Lsl16 = (rd: number, imm16: number) => 0x72a00000 | (imm16 << 5) | rd;
const SVC_0 = 0xd4000001;
const RET = 0xd65f03c0;
const CMP_W0_W9 = 0x6b09001f; // subs wzr, w0, w9
const MOV_W0_W9 = 0x2a0903e0; // orr w0, wzr, w9
const bNe = (instructions: number) => 0x54000000 | (instructions << 5) | 0x1;

/** handler(signo in x0, siginfo in x1, context in x2); svc clobbers x0 only. Not run here: checked by disassembly. */
function aarch64Handler(pipeFd: number, pid: number): Uint8Array {
  const sendRecord = [
    movz64(0, pipeFd), movz64(2, SIGINFO_SIZE), movz64(8, AARCH64.write), SVC_0, // write(pipeFd, x1, 128)
    MOV_W0_W9, movz64(1, SIGCHLD), movz64(8, AARCH64.kill), SVC_0, // kill(pid, SIGCHLD)
  ];
  const words = [
    movz64(8, AARCH64.getpid), SVC_0,
    movz32(9, pid & 0xffff), movk32Lsl16(9, pid >>> 16), CMP_W0_W9,
    bNe(sendRecord.length + 1), // to ret
    ...sendRecord,
    RET,
  ];
  return new Uint8Array(new Uint32Array(words.map((word) => word >>> 0)).buffer); // little-endian, as both run
}

/** The handler's machine code for `arch`, or undefined where there is none. */
export function handlerCode(arch: string, pipeFd: number, pid: number): Uint8Array | undefined {
  if (arch === "x64") return x86_64Handler(pipeFd, pid);
  // movz takes a 16-bit immediate: an fd above that would need one more instruction.
  if (arch === "arm64" && pipeFd <= 0xffff) return aarch64Handler(pipeFd, pid);
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
 * handler of the runtime's). Throws, with the reason, where it cannot: no
 * code for this architecture, or mmap/mprotect refused (a W^X policy).
 */
export function catchNatively(libc: Libc, signals: readonly number[], arch = process.arch): NativeSignals {
  const [readFd, writeFd] = libc.nonBlockingPipe();
  const installed: number[] = [];
  try {
    const code = handlerCode(arch, writeFd, process.pid);
    if (!code) throw new Error(`no native signal handler for the ${arch} architecture`);
    const address = libc.mapCode(code);
    for (const signal of signals) {
      libc.setNativeSignalHandler(signal, address);
      installed.push(signal);
    }
  } catch (err) {
    // No handler may outlive the pipe: its fd number could name another file next.
    for (const signal of installed) libc.setSignalDisposition(signal, "ignore");
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
