/**
 * Measuring helpers for the bench runner: build the C workload, sample a
 * process's CPU time and context switches from /proc, run a command to the
 * end and parse its JSON, and take medians over rounds.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

export const BENCH_DIR = import.meta.dir;
export const SCRATCH_DIR = "/tmp/orphan-reaper-bench";

/** Compiles workload.c once per source change (the binary's mtime is newer than its sources'). */
export function buildWorkload(): string {
  const source = join(BENCH_DIR, "workload.c");
  const sources = [source, join(BENCH_DIR, "reaper-usage.h")];
  const binary = join(SCRATCH_DIR, "workload");
  mkdirSync(SCRATCH_DIR, { recursive: true });
  const newest = Math.max(...sources.map((file) => statSync(file).mtimeMs));
  if (existsSync(binary) && statSync(binary).mtimeMs > newest) return binary;
  const cc = Bun.spawnSync(["cc", "-O2", "-Wall", "-o", binary, source], { stderr: "pipe" });
  if (cc.exitCode !== 0) throw new Error(`cc failed (a C compiler is needed for the bench): ${cc.stderr.toString()}`);
  return binary;
}

export interface Usage {
  /** Run time (schedstat), ns: finer than utime+stime's 10 ms ticks. */
  readonly cpuNs: number;
  /** voluntary + nonvoluntary context switches: each is a wakeup or a preemption. */
  readonly ctxt: number;
}

/** Per thread, by TID: Bun's JIT and GC threads come and go, so sums over live threads are not comparable. */
export type ThreadUsage = ReadonlyMap<string, Usage>;

export function sampleUsage(pid: number): ThreadUsage {
  const threads = new Map<string, Usage>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const cpuNs = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
      let ctxt = 0;
      for (const match of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)) ctxt += Number(match[1]);
      threads.set(tid, { cpuNs, ctxt });
    } catch {
      // The thread ended between readdir and read.
    }
  }
  return threads;
}

/**
 * Growth thread by thread, over the threads alive at the end: a thread that
 * ended meanwhile must not take its whole history off the total (it did, when
 * this summed live threads, and made a bare Bun daemon look quieter than it
 * is). What an ended thread did inside the window is lost; `threadsEnded` says
 * how often that happened.
 */
export function usageDelta(before: ThreadUsage, after: ThreadUsage): Usage & { readonly threadsEnded: number } {
  let cpuNs = 0;
  let ctxt = 0;
  for (const [tid, usage] of after) {
    cpuNs += usage.cpuNs - (before.get(tid)?.cpuNs ?? 0);
    ctxt += usage.ctxt - (before.get(tid)?.ctxt ?? 0);
  }
  const threadsEnded = [...before.keys()].filter((tid) => !after.has(tid)).length;
  return { cpuNs, ctxt, threadsEnded };
}

/** The last line of a command's stdout that parses as a JSON object. */
export function lastJson(text: string): Record<string, unknown> {
  for (const line of text.trim().split("\n").reverse()) {
    try {
      const value: unknown = JSON.parse(line);
      if (value && typeof value === "object") return value as Record<string, unknown>;
    } catch {
      // not JSON: log lines and the like
    }
  }
  throw new Error(`no JSON line in output: ${text.slice(-500)}`);
}

export interface Finished {
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end (killing it at the timeout) and keeps its output. */
export async function runToEnd(argv: string[], timeoutMs = 120_000): Promise<Finished> {
  const child = Bun.spawn(argv, { stdio: ["ignore", "pipe", "pipe"], timeout: timeoutMs, killSignal: "SIGKILL" });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { exitCode, stdout, stderr };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function readLoadAverage(): string {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
}
