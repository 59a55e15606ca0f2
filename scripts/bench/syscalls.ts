/**
 * Syscalls per reap, counted by the kernel: `perf stat` on the syscall
 * tracepoints, attached to the reaper's threads (`-p`; threads started later
 * inherit the counters) and enabled only for the workload's measured window,
 * through perf's control FIFOs (the workload writes `enable` / `disable`, see
 * workload.c --perf-ctl). In-kernel counting: no ptrace stop per syscall as
 * with `strace -c`, which would slow the reaper it measures.
 *
 * perf attaches once the reaper has started the workload: counters inherit
 * into children forked later, and the workload's own syscalls must not count.
 * Every counter on a task costs at each of its context switches, so the list
 * is the syscalls a reaper makes, not all ~360 (that made tini's CPU 5x);
 * `raw_syscalls:sys_enter` counts them all, the rest is "other".
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { readTaskChildren } from "../../src/procfs.ts";
import { lastJson } from "./measure.ts";
import { daemonReport, type Measured } from "./scenarios.ts";

/** Per-syscall metric keys: `syscall:<name>`, one row each in the report. */
export const SYSCALL_PREFIX = "syscall:";
/** How long the reaper, and then its first child (the workload), may take to appear. */
const FIND_CHILD_MS = 20_000;
const ALL_SYSCALLS = "raw_syscalls:sys_enter";
/** Seen in a reaper's window (tini's, catatonit's, ours: waiting, /proc, pidfds, netlink, the event loop, FFI memory). */
const COUNTED = [
  "waitid", "wait4", "kill", "pidfd_open", "pidfd_send_signal", "openat", "read", "pread64", "readlink", "readlinkat",
  "close", "newfstatat", "statx", "fstat", "getdents64", "lseek", "recvfrom", "recvmsg", "sendto", "epoll_pwait",
  "epoll_pwait2", "epoll_wait", "epoll_ctl", "poll", "ppoll", "futex", "write", "ioctl", "madvise", "mmap", "munmap",
  "mprotect", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "signalfd4", "timerfd_settime", "clock_nanosleep",
];

export function findPerf(): string | undefined {
  const perf = Bun.which("perf");
  if (!perf) return undefined;
  const probe = Bun.spawnSync([perf, "stat", "-x,", "-e", "syscalls:sys_enter_getpid", "true"], { stdout: "ignore", stderr: "pipe" });
  return probe.exitCode === 0 ? perf : undefined;
}

/** The FIFO directory an arm's workload is given (`--perf-ctl`), next to the daemon's report. */
export const perfDir = (report: string) => `${report}-perf`;

/** argv[0] of `pid`, or undefined once it is gone. */
function commandOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0];
  } catch {
    return undefined;
  }
}

/**
 * A child of `pid` (running `command`, when given), polled from /proc (no
 * fork) until it appears. By command, not the first child: the netlink
 * daemon's probe child comes before the workload, and perf attached while
 * it lives would count the workload's syscalls too (it did, 2026-11-30).
 */
async function childOf(pid: number, command?: string): Promise<number> {
  const until = performance.now() + FIND_CHILD_MS;
  for (;;) {
    const child = readTaskChildren(pid)?.find((child) => command === undefined || commandOf(child) === command);
    if (child !== undefined) return child;
    if (performance.now() > until) throw new Error(`pid ${pid} started no child${command ? ` running ${command}` : ""} in ${FIND_CHILD_MS} ms`);
    await Bun.sleep(5);
  }
}

/** The reaper (the arm itself, or under `unshare -p -f` unshare's child), once it has started the workload (the command after `--`). */
async function findReaper(argv: string[], armPid: number, inPidns: boolean): Promise<number> {
  const reaper = inPidns ? await childOf(armPid) : armPid;
  await childOf(reaper, argv[argv.indexOf("--") + 1]);
  return reaper;
}

/** `perf stat -x,` lines: `count,unit,event,...`; counts per syscall name, and "all". */
export function parsePerfCsv(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of text.split("\n")) {
    const [count, , event] = line.split(",");
    const name = event === ALL_SYSCALLS ? "all" : event?.match(/^syscalls:sys_enter_(\w+)$/)?.[1];
    if (name && /^\d+$/.test(count ?? "")) counts.set(name, Number(count));
  }
  return counts;
}

/** The tracepoints of COUNTED that this kernel has (e.g. no epoll_pwait2 before 5.11). */
function countedEvents(): string {
  const known = (name: string) => existsSync(`/sys/kernel/tracing/events/syscalls/sys_enter_${name}`);
  const names = existsSync("/sys/kernel/tracing/events/syscalls") ? COUNTED.filter(known) : COUNTED;
  return [ALL_SYSCALLS, ...names.map((name) => `syscalls:sys_enter_${name}`)].join(",");
}

/** Runs an `adopted --perf-ctl` arm with perf attached to its reaper; syscalls per reap in the window. */
export async function measureSyscalls(perf: string, argv: string[], report: string, inPidns: boolean): Promise<Measured> {
  const dir = perfDir(report);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const fifos = Bun.spawnSync(["mkfifo", join(dir, "ctl"), join(dir, "ack")], { stderr: "pipe" });
  if (fifos.exitCode !== 0) throw new Error(`mkfifo: ${fifos.stderr.toString()}`);
  const arm = Bun.spawn(argv, { stdio: ["ignore", "pipe", "pipe"], timeout: 120_000, killSignal: "SIGKILL" });
  const out = join(dir, "counts.csv");
  let counter: Bun.Subprocess | undefined;
  try {
    const reaper = await findReaper(argv, arm.pid, inPidns);
    counter = Bun.spawn(
      [perf, "stat", "-D", "-1", "--control", `fifo:${join(dir, "ctl")},${join(dir, "ack")}`, "-x,", "-o", out,
        "-e", countedEvents(), "-p", String(reaper)],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    const [stdout, stderr, exitCode] = await Promise.all([
      new Response(arm.stdout).text(), new Response(arm.stderr).text(), arm.exited,
    ]);
    if (exitCode !== 0) throw new Error(`exit ${exitCode}: ${argv.join(" ")}\n${stderr.slice(-2000)}`);
    counter.kill("SIGINT"); // perf stat -p runs until interrupted; it writes its counts then
    await counter.exited;
    const window = lastJson(stdout);
    const reaped = Number(window.gone);
    const counts = parsePerfCsv(readFileSync(out, "utf8"));
    const total = counts.get("all") ?? Number.NaN;
    counts.delete("all");
    counts.set("other", total - [...counts.values()].reduce((a, b) => a + b, 0));
    const source = String((await daemonReport(report))?.source ?? "-");
    const measured: Measured = { ...numbersOf(window), source, syscalls: total, syscallsPerReap: reaped ? total / reaped : -1 };
    for (const [name, count] of counts) if (count > 0 && reaped) measured[`${SYSCALL_PREFIX}${name}`] = count / reaped;
    return measured;
  } finally {
    if (counter && counter.exitCode === null) {
      counter.kill("SIGINT");
      await counter.exited;
    }
    arm.kill("SIGKILL");
    await arm.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

function numbersOf(json: Record<string, unknown>): Measured {
  const measured: Measured = {};
  for (const [key, value] of Object.entries(json)) if (typeof value === "number") measured[key] = value;
  return measured;
}
