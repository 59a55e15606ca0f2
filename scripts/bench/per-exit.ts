/**
 * Issue #10's rows: what each exit of an adopted orphan costs the reaper.
 * Every orphan is alive and adopted before the window opens (the reaper has
 * that many live children), then some exit at a pace. Each row runs our three
 * ways of reaping (netlink, sigchld, sigchld as PID 1 of a PID namespace)
 * against tini -s, tini as PID 1 and catatonit (a child subreaper when it is
 * not PID 1) in the same run, on Bun and on Node, beside each runtime's two
 * floors (floor-reaper.mjs), no provenance at all: the cheapest reaper woken
 * by SIGCHLD that peeks, and the cheapest told each exit by the proc
 * connector; and, but for the syscall row, each runtime with no reaper: a
 * child subreaper that reaps nothing, whose CPU is what the daemon spends on
 * the orphans' SIGCHLD anyway.
 */
import { cpuCgroup, type CpuCgroup } from "./cgroup.ts";
import {
  daemonArgv,
  nodeDaemonArgv, LIFETIME_METRICS, measureWorkload, PIDNS, type Arm, type Measured, type Metric, type Scenario, type Tools,
} from "./scenarios.ts";
import { findPerf, measureSyscalls, perfDir, SYSCALL_PREFIX } from "./syscalls.ts";

/** The small container of the issue: half a CPU. */
const HALF_CPU = { quotaUs: 50_000, periodUs: 100_000 };

interface Workload {
  readonly live: number;
  readonly exits: number;
  readonly rate: number;
  /** Orphans that exit at the same rate before the window: the reaper has reaped before (JIT code compiled). */
  readonly warm?: number;
}

const describe = ({ live, exits, rate, warm }: Workload) =>
  (live === exits ? `${live} adopted orphans exit at ${rate}/s` : `${live} live adopted orphans, ${exits} of them exit at ${rate}/s`) +
  (warm ? `, after ${warm} others did (warmed up)` : "");

const PER_EXIT_METRICS: readonly Metric[] = [
  ...LIFETIME_METRICS.filter((m) => m.key !== "source"),
  { key: "reaperMainThreadCpuMs", label: "reaper CPU during the run, main thread (ms)" },
  { key: "reaperOtherThreadsCpuMs", label: "reaper CPU during the run, other threads: a JIT's compiler, a GC's helpers (ms)", ratio: false },
  { key: "setupCpuMs", label: "reaper CPU while the orphans were made and adopted (ms, not in the window)", ratio: false },
  { key: "source", label: "our source" },
];

const SYSCALL_METRICS: readonly Metric[] = [
  { key: "syscallsPerReap", label: "reaper syscalls per reap (all)" },
  { key: "reaperCpuMsPer1000", label: "reaper CPU per 1000 reaps, under perf (ms)" },
  { key: "leftover", label: "orphans never reaped" },
  { key: "source", label: "our source" },
];

const RATIOS = [
  ["netlink", "tini -s"],
  ["sigchld", "tini -s"],
  ["sigchld PID 1", "tini PID 1"],
  ["netlink", "catatonit"],
  ["sigchld", "catatonit"],
  ["node netlink", "tini -s"],
  ["node sigchld", "tini -s"],
  ["bun floor", "tini -s"],
  ["node floor", "tini -s"],
  ["bun netlink floor", "tini -s"],
  ["node netlink floor", "tini -s"],
  ["netlink", "bun netlink floor"],
  ["node netlink", "node netlink floor"],
] as const;
/** With --against DIR: Bun's arms on DIR's library (name, reaper), and each one's ratio: this build's over DIR's. */
const AGAINST_ARMS = [
  ["netlink (against)", "netlink"],
  ["sigchld (against)", "sigchld"],
] as const;
const AGAINST_RATIOS = AGAINST_ARMS.map(([name, reaper]) => [reaper, name] as const);
/** The arms with no reaper, on the rows that run them. */
const NO_REAPER_RATIOS = [
  ["bun none", "tini -s"],
  ["node none", "tini -s"],
] as const;

type Measure = (argv: string[], report: string, inPidns: boolean) => Promise<Measured>;

/**
 * The arms (tini, catatonit, ours on Bun and on Node, each runtime's floors),
 * each running `command(report)`, optionally inside `cgroup`; `withNoReaper`
 * adds each runtime as a child subreaper that reaps nothing: what the daemon
 * spends on the orphans' SIGCHLD before any reaper runs.
 */
function arms(tools: Tools, command: (report: string) => string[], measure: Measure, cgroup?: CpuCgroup, withNoReaper = false): Arm[] {
  const wrap = (argv: string[]) => (cgroup ? cgroup.wrap(argv) : argv);
  const arm = (name: string, inPidns: boolean, argv: (report: string) => string[]): Arm => ({
    name,
    argv: (report) => wrap(argv(report)),
    measure: (argv, report) => measure(argv, report, inPidns),
  });
  const ours = (reaper: string) => (report: string) => daemonArgv(tools, reaper, command(report))(report);
  const oursOnNode = (reaper: string) => (report: string) => nodeDaemonArgv(tools, reaper, command(report))(report);
  const catatonit = tools.catatonit;
  return [
    arm("tini -s", false, (r) => [tools.tini, "-s", "--", ...command(r)]),
    arm("tini PID 1", true, (r) => [...PIDNS, tools.tini, "--", ...command(r)]),
    catatonit
      ? arm("catatonit", false, (r) => [catatonit, "--", ...command(r)])
      : { name: "catatonit", argv: () => ["catatonit"], measure: () => Promise.reject(new Error("catatonit not found: apt-get install -y catatonit")) },
    arm("netlink", false, ours("netlink")),
    arm("sigchld", false, ours("sigchld")),
    arm("sigchld PID 1", true, (r) => [...PIDNS, ...ours("sigchld")(r)]),
    arm("node netlink", false, oursOnNode("netlink")),
    arm("node sigchld", false, oursOnNode("sigchld")),
    // The cheapest reapers (floor-reaper.mjs): woken by SIGCHLD that peeks, and told each exit by the proc connector.
    arm("bun floor", false, ours("floor")),
    arm("node floor", false, oursOnNode("floor")),
    arm("bun netlink floor", false, ours("netlink-floor")),
    arm("node netlink floor", false, oursOnNode("netlink-floor")),
    ...(withNoReaper ? [arm("bun none", false, ours("none")), arm("node none", false, oursOnNode("none"))] : []),
    ...(tools.against ? AGAINST_ARMS.map(([name, reaper]) => arm(name, false, (r) => daemonArgv({ ...tools, repo: tools.against }, reaper, command(r))(r))) : []),
  ];
}

export function buildPerExitScenarios(tools: Tools, scale = 1): Scenario[] {
  const sized = (live: number, exits: number, rate: number): Workload =>
    ({ live: Math.max(1, Math.round(live * scale)), exits: Math.max(1, Math.round(exits * scale)), rate });
  const adopted = ({ live, exits, rate, warm = 0 }: Workload, extra: (report: string) => string[] = () => []) => (report: string) =>
    [tools.workload, "adopted", "--live", String(live), "--exit", String(exits), "--rate", String(rate), "--warm", String(warm), ...extra(report)];
  const lifetimes: Measure = (argv, report) => measureWorkload(argv, report);
  const row = (id: string, workload: Workload, where = "", cgroup?: CpuCgroup): Scenario => ({
    id: `per-exit-${id}`,
    group: "per-exit",
    title: `${describe(workload)}${where}`,
    metrics: PER_EXIT_METRICS,
    ratios: [...RATIOS, ...NO_REAPER_RATIOS, ...(tools.against ? AGAINST_RATIOS : [])],
    arms: arms(tools, adopted(workload), lifetimes, cgroup, true),
    setUp: cgroup && (() => cgroup.create()),
    tearDown: cgroup && (() => cgroup.remove()),
  });

  const paced = sized(1000, 1000, 200);
  const pacedWarm = { ...paced, warm: paced.exits };
  // Past Node's optimizing compiler (TurboFan), which compiles the per-exit path between the 1000th and 2000th exit; Bun's FTL still compiles later (BENCHMARKS.md).
  const pacedSteady = { ...paced, warm: 3 * paced.exits };
  const crowded = sized(2000, 1000, 200);
  const storm = sized(2000, 2000, 1000);
  const perf = findPerf();
  const countSyscalls: Measure = perf
    ? (argv, report, inPidns) => measureSyscalls(perf, argv, report, inPidns)
    : () => Promise.reject(new Error("perf with syscalls:sys_enter_* tracepoints not available: apt-get install -y linux-perf, as root"));
  const syscalls: Scenario = {
    id: "per-exit-syscalls",
    group: "per-exit",
    title: `${describe(paced)}: reaper syscalls per reap (perf stat on raw_syscalls:sys_enter and syscalls:sys_enter_NAME, -p REAPER, the window only)`,
    metrics: SYSCALL_METRICS,
    metricPrefix: SYSCALL_PREFIX,
    ratios: [...RATIOS, ...(tools.against ? AGAINST_RATIOS : [])],
    arms: arms(tools, adopted(paced, (report) => ["--perf-ctl", perfDir(report)]), countSyscalls),
  };
  const half = cpuCgroup(`orphan-reaper-bench-${process.pid}`, HALF_CPU);
  const cpuLimited: Scenario =
    typeof half === "string"
      ? { ...row("crowded-half-cpu", crowded, `, in a 0.5-CPU cgroup: not run, ${half}`), arms: [] }
      : row("crowded-half-cpu", crowded, `, everything in a cgroup of 0.5 CPU (${half.describe})`, half);
  return [
    row("paced", paced),
    row("paced-warm", pacedWarm),
    row("paced-steady", pacedSteady),
    syscalls,
    row("crowded", crowded),
    cpuLimited,
    row("storm", storm),
  ];
}
