/**
 * The native signal handler (src/cli/native-signals.ts): in this process
 * through the relay (real-time signals queue, one record each, in order,
 * woken by SIGCHLD), its refusal where there is no code, and its bytes run
 * outside any runtime by a small C host, natively (x86_64) and under
 * qemu-user (aarch64), when a compiler and qemu are installed: plain, and
 * in front of a previous handler, SIG_DFL and SIG_IGN (the chain).
 */
import { expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { constants } from "node:os";
import { catchNatively, handlerCode, type NotForwarded } from "../../src/cli/native-signals.ts";
import { SignalRelay } from "../../src/cli/signals.ts";
import { loadLibc } from "../../src/runtime/index.ts";
import { waitUntil } from "../helpers/processes.ts";
import { SCALE } from "./init-harness.ts";

const HOST_SOURCE = join(import.meta.dir, "../fixtures/native-handler-host.c");
// <asm-generic/siginfo.h>
const SI_USER = 0;
const SI_QUEUE = -1;
const SI_TKILL = -6;
const SEGV_MAPERR = 1;
// <asm-generic/signal.h>
const SA_ONSTACK = 0x08000000;
const SA_RESTART = 0x10000000;
const SA_RESETHAND = 0x80000000;

test("real-time signals caught natively reach the relay once each, in the order sent, held until it has a target", async () => {
  const libc = loadLibc();
  const { min } = libc.realtimeSignalRange();
  const [first, second] = [min + 2, min + 3];
  const relay = new SignalRelay([]);
  try {
    relay.addNative(catchNatively(libc, [first, second]));
    for (const signal of [first, first, second, first]) process.kill(process.pid, signal);
    expect(await waitUntil(() => relay.heldSignals.length >= 4, 5_000)).toBe(true);
    const delivered: number[] = [];
    relay.deliverTo((signal) => delivered.push(signal));
    expect(delivered).toEqual([first, first, second, first]);
    process.kill(process.pid, second);
    expect(await waitUntil(() => delivered.length === 5, 5_000)).toBe(true);
    await Bun.sleep(100 * SCALE); // a duplicate would show up by now
    expect(delivered).toEqual([first, first, second, first, second]);
  } finally {
    relay.stop();
    for (const signal of [first, second]) libc.setSignalDisposition(signal, "ignore");
  }
}, 20_000 * SCALE);

test("no code for the architecture: catchNatively throws why, and leaves no fd open and no handler", () => {
  const libc = loadLibc();
  const signal = libc.realtimeSignalRange().min + 4;
  const fdsBefore = readdirSync("/proc/self/fd").length;
  expect(() => catchNatively(libc, [signal], [], "riscv64")).toThrow("no native signal handler for the riscv64 architecture");
  expect(readdirSync("/proc/self/fd").length).toBe(fdsBefore);
  expect(libc.signalDisposition(signal)).toBe("default");
  expect(handlerCode("ia32", 5, 100)).toBeUndefined();
  expect(handlerCode("arm64", 0x10000, 100)).toBeUndefined(); // one movz cannot name that fd
});

test("in front of the runtime's handler: installed with its flags (SA_ONSTACK kept, SA_RESETHAND dropped, SA_RESTART added) and mask; restoreSignalAction puts it back", () => {
  const libc = loadLibc();
  const { SIGFPE } = constants.signals;
  const previous = libc.signalAction(SIGFPE);
  // Bun's crash handler, measured: SA_SIGINFO | SA_ONSTACK | SA_RESTART | SA_RESETHAND.
  expect(previous.disposition).toBe("handler");
  expect(previous.resetsToDefault).toBe(true);
  try {
    catchNatively(libc, [], [SIGFPE]);
    const inFront = libc.signalAction(SIGFPE);
    expect(inFront.handler).not.toBe(previous.handler);
    expect({ flags: inFront.flags, mask: inFront.mask, resetsToDefault: inFront.resetsToDefault }).toEqual({
      flags: ((previous.flags & ~SA_RESETHAND) | SA_RESTART) >>> 0,
      mask: previous.mask,
      resetsToDefault: false,
    });
    expect(inFront.flags & SA_ONSTACK).toBe(SA_ONSTACK);
  } finally {
    libc.restoreSignalAction(SIGFPE, previous);
  }
  expect(libc.signalAction(SIGFPE)).toEqual(previous);
});

interface HostRecord {
  readonly signal: number;
  readonly code: number;
  readonly fromUs: boolean;
}

interface HostReport {
  readonly errnoKept: number;
  readonly sigchlds: number;
  readonly records: readonly HostRecord[];
  readonly rtmin: number;
  readonly readAfterFork: number;
  readonly chainedRecords: readonly HostRecord[];
  readonly previousCalls: readonly { signal: number; code: number; intact: boolean }[];
  readonly usr2After: string;
  readonly cameBackFromFault: number;
  readonly fpeAfter: string;
  readonly faultDefault: string;
  readonly tgkillDefault: string;
  readonly faultIgnore: string;
}

/** The five handlers the host loads, each after its length: plain, chained (without, with SA_RESETHAND), before SIG_DFL, before SIG_IGN. */
function hostHandlers(arch: string, fd: number, pid: number, previous: number): Uint8Array {
  const variants: (NotForwarded | undefined)[] = [
    undefined,
    { jumpTo: previous, resetFirst: false },
    { jumpTo: previous, resetFirst: true },
    { restore: "default" },
    { restore: "ignore" },
  ];
  const parts = variants.flatMap((notForwarded) => {
    const code = handlerCode(arch, fd, pid, notForwarded)!;
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, code.byteLength, true);
    return [...length, ...code];
  });
  return new Uint8Array(parts);
}

/** Builds the host with `compiler`, runs it (under `runner`), hands it the bytes for `arch`. */
async function runHost(arch: string, compiler: string, runner: readonly string[]): Promise<HostReport> {
  const dir = mkdtempSync(join(tmpdir(), "native-handler-"));
  try {
    const binary = join(dir, "host");
    const built = Bun.spawnSync([compiler, "-O1", "-static", "-o", binary, HOST_SOURCE], { stderr: "pipe" });
    if (built.exitCode !== 0) throw new Error(`${compiler} failed: ${built.stderr.toString()}`);
    const host = Bun.spawn([...runner, binary], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => host.kill("SIGKILL"), 20_000 * SCALE);
    const reader = host.stdout.getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    const [pid, fd, previous] = text.split("\n")[0]!.split(" ").map(Number);
    host.stdin.write(hostHandlers(arch, fd!, pid!, previous!));
    await host.stdin.end();
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += new TextDecoder().decode(chunk.value);
    const status = await host.exited;
    clearTimeout(timer);
    if (status !== 0) throw new Error(`the host exited with ${status}: ${await new Response(host.stderr).text()}`);
    return JSON.parse(text.split("\n")[1]!) as HostReport;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const HOSTS = [
  { arch: "x64", compiler: "x86_64-linux-gnu-gcc", runner: [], needs: "x86_64 Linux and gcc" },
  { arch: "arm64", compiler: "aarch64-linux-gnu-gcc", runner: ["qemu-aarch64-static"], needs: "gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user-static" },
];

for (const { arch, compiler, runner, needs } of HOSTS) {
  const missing = [compiler, ...runner].filter((tool) => !Bun.which(tool));
  const skip = arch === "x64" && process.arch !== "x64" ? "not an x86_64 machine" : missing.length ? `${missing.join(", ")} not installed (${needs})` : undefined;
  if (skip) console.log(`skipping the ${arch} handler bytes outside a runtime: ${skip}`);
  test.skipIf(skip !== undefined)(`the ${arch} bytes outside any runtime: one record per signal, in order, errno kept, SIGCHLD sent, nothing from a forked child; chained, only kill and sigqueue recorded, the rest to the previous handler, SIG_DFL or SIG_IGN`, async () => {
    const report = await runHost(arch, compiler, runner);
    const { rtmin } = report;
    expect(report.records).toEqual([rtmin, rtmin + 1, rtmin].map((signal) => ({ signal, code: SI_USER, fromUs: true })));
    expect(report.errnoKept).toBe(1);
    expect(report.sigchlds).toBe(3);
    expect(report.readAfterFork).toBe(-1); // EAGAIN: the child's handler wrote nothing
    // The chain: only what kill and sigqueue sent is recorded; the rest goes where it went before.
    const { SIGUSR1, SIGUSR2, SIGSEGV, SIGFPE } = constants.signals;
    expect(report.chainedRecords).toEqual([
      { signal: SIGUSR1, code: SI_USER, fromUs: true },
      { signal: SIGUSR1, code: SI_QUEUE, fromUs: true },
      { signal: SIGUSR2, code: SI_USER, fromUs: true },
      { signal: SIGFPE, code: SI_USER, fromUs: true },
    ]);
    expect(report.previousCalls).toEqual([
      { signal: SIGUSR1, code: SI_TKILL, intact: true },
      { signal: SIGUSR2, code: SI_TKILL, intact: true },
      { signal: SIGSEGV, code: SEGV_MAPERR, intact: true },
    ]);
    expect(report.usr2After).toBe("default"); // SA_RESETHAND, done by the bytes before the jump
    expect(report.cameBackFromFault).toBe(1);
    expect(report.fpeAfter).toBe("handler"); // a SIGFPE kill sent is forwarded and leaves the handler in place
    expect(report.faultDefault).toBe(`signal ${SIGSEGV}`);
    expect(report.tgkillDefault).toBe(`signal ${SIGFPE}`);
    expect(report.faultIgnore).toBe(`signal ${SIGSEGV}`); // after a tgkill'd SIGSEGV was ignored, SIG_IGN set back
  }, 60_000 * SCALE);
}
