/**
 * The bench scenarios: for each, the arms run side by side (tini, our reaper,
 * a Bun daemon without one), how one arm is measured, and which ratios to
 * print. Every arm is a plain command line, printed as is in the report.
 */
import { join } from "node:path";
import { readTaskChildren } from "../../src/procfs.ts";
import { BENCH_DIR, lastJson, runToEnd, sampleUsage, usageDelta } from "./measure.ts";

/** One measured value per metric key; strings for facts such as the chosen source. */
export type Measured = Record<string, number | string>;

export interface Arm {
  readonly name: string;
  /** The command; `report` is where daemon.ts writes its JSON report. */
  readonly argv: (report: string) => string[];
  readonly measure: (argv: string[], report: string) => Promise<Measured>;
}

export interface Metric {
  readonly key: string;
  readonly label: string;
  /** False for context that no target is set on (e.g. tini's set-up CPU is often 0): no ratio cells. */
  readonly ratio?: false;
}

export interface Scenario {
  readonly id: string;
  /** "existing" (the rows of the earlier runs) or "per-exit" (issue #10's rows); `--only` takes either. */
  readonly group: string;
  readonly title: string;
  readonly arms: readonly Arm[];
  readonly metrics: readonly Metric[];
  /** [numerator arm, denominator arm]: printed as numerator / denominator per metric. */
  readonly ratios: readonly (readonly [string, string])[];
  /** Measured keys with this prefix get a row each (per-syscall counts, known only once measured). */
  readonly metricPrefix?: string;
  /** Around the whole scenario (all rounds): e.g. the CPU-limited cgroup its arms run in. */
  readonly setUp?: () => void;
  readonly tearDown?: () => void;
}

export interface Tools {
  readonly workload: string;
  readonly bun: string;
  readonly tini: string;
  /** Absent when not installed: its arms fail with the install command, the other arms run. */
  readonly catatonit: string | undefined;
  /** The repository whose src/ the daemon arms measure (daemon.ts --repo); undefined: this one. */
  readonly repo: string | undefined;
  /** Another build to measure beside it on the per-exit rows (Bun arms only), or undefined. */
  readonly against?: string;
}

/** Bun's JIT workers are done about 15 s after start: churn is measured after this. */
const SETTLE_MS = 20_000;
/** Bun's GC helper threads still wake it about 13 times a second 20 s after start, and have settled by 60 s (the settling and idle rows). */
const IDLE_AFTER_MS = 60_000;
/** The start-up window is sampled from here: the daemon has started, its JIT and GC are still busy. */
const START_WINDOW_AT_MS = 2_000;
const IDLE_WINDOW_MS = 10_000;
const CHURN_FORKS = 20_000;

/** Reads daemon.ts's report when the arm is a daemon; tini arms have none. */
export async function daemonReport(report: string): Promise<Record<string, unknown> | undefined> {
  const file = Bun.file(report);
  return (await file.exists()) ? lastJson(await file.text()) : undefined;
}

/** The Bun daemon under test running `command`, with our reaper in `reaper` mode ("none": without). */
export function daemonArgv(tools: Tools, reaper: string, command: readonly string[], flags: readonly string[] = []) {
  const repo = tools.repo ? ["--repo", tools.repo] : [];
  return (report: string) => [tools.bun, join(BENCH_DIR, "daemon.ts"), "--reaper", reaper, ...repo, ...flags, "--report", report, "--", ...command];
}

/** The Node.js daemon under test (daemon-node.mjs, from dist/) running `command`, with our reaper in `reaper` mode. */
export function nodeDaemonArgv(tools: Tools, reaper: string, command: readonly string[]) {
  const repo = tools.repo ? ["--repo", tools.repo] : [];
  return (report: string) => ["node", join(BENCH_DIR, "daemon-node.mjs"), "--reaper", reaper, ...repo, "--report", report, "--", ...command];
}

export const PIDNS = ["unshare", "-p", "-f", "--mount-proc"];

export const LIFETIME_METRICS: readonly Metric[] = [
  { key: "p50", label: "zombie lifetime p50 (ms)" },
  { key: "p99", label: "zombie lifetime p99 (ms)" },
  { key: "max", label: "zombie lifetime max (ms)" },
  { key: "leftover", label: "orphans never reaped" },
  { key: "reaperCpuMs", label: "reaper CPU during the run (ms)" },
  { key: "reaperCpuMsPer1000", label: "reaper CPU per 1000 reaps (ms)" },
  { key: "reaperCtxt", label: "reaper context switches" },
  { key: "passIntervalMax", label: "watcher pass interval max (ms)" },
  { key: "source", label: "our source" },
];

/** Runs the workload under the arm and keeps the watcher's numbers (and the daemon's source). */
export async function measureWorkload(argv: string[], report: string): Promise<Measured> {
  const run = await runToEnd(argv);
  if (run.exitCode !== 0) throw new Error(`exit ${run.exitCode}: ${argv.join(" ")}\n${run.stderr.slice(-2000)}`);
  const result = run.stdout.trim() ? lastJson(run.stdout) : {}; // `sleep` arms print nothing
  const daemon = await daemonReport(report);
  const loopDelay = daemon?.loopDelay as Record<string, number> | undefined;
  const measured: Measured = { source: String(daemon?.source ?? "-") };
  // The workload prints -1 where it had nothing to measure (no orphan reaped: the arms with no reaper).
  for (const [key, value] of Object.entries(result)) if (typeof value === "number" && value !== -1) measured[key] = value;
  if (loopDelay) for (const key of ["p50", "p99", "max"]) measured[`loop_${key}`] = loopDelay[key]!;
  return measured;
}

/** Starts a long-running arm, waits `afterMs`, then samples it around `during`; the arm is this runner's child. */
async function measureAround(argv: string[], afterMs: number, during: () => Promise<Measured>): Promise<Measured> {
  const arm = Bun.spawn(argv, { stdio: ["ignore", "ignore", "inherit"] });
  try {
    await Bun.sleep(afterMs);
    const before = sampleUsage(arm.pid);
    const started = performance.now();
    const extra = await during();
    const seconds = (performance.now() - started) / 1000;
    const used = usageDelta(before, sampleUsage(arm.pid));
    return {
      ...extra,
      ctxt: used.ctxt,
      cpuMs: used.cpuNs / 1e6,
      wakeupsPerS: used.ctxt / seconds,
      cpuMsPerS: used.cpuNs / 1e6 / seconds,
      threadsEnded: used.threadsEnded,
    };
  } finally {
    // Its child (`sleep`) would outlive a SIGKILLed daemon; end it first.
    for (const child of readTaskChildren(arm.pid) ?? []) {
      try {
        process.kill(child, "SIGKILL");
      } catch {
        // it ended meanwhile
      }
    }
    arm.kill("SIGKILL");
    await arm.exited;
  }
}

/** The rows of the runs before issue #10, kept so that "no other row gets worse" can be checked. */
export function buildExistingScenarios(tools: Tools): Scenario[] {
  const { workload, tini } = tools;
  const rate = [workload, "orphans", "--count", "2000", "--rate", "1000"];
  const burst = [workload, "orphans", "--count", "3000", "--rate", "0"];
  const ours = (reaper: string, command: string[], flags: string[] = []) => daemonArgv(tools, reaper, command, flags);
  const plain = (argv: string[]) => () => argv;
  const workloadArm = (name: string, argv: Arm["argv"]): Arm => ({ name, argv, measure: measureWorkload });

  const lifetime = (id: string, title: string, command: string[], inPidns: boolean): Scenario => ({
    id: `lifetime-${id}`,
    group: "existing",
    title,
    metrics: LIFETIME_METRICS,
    ratios: [["ours", "tini"]],
    arms: inPidns
      ? [
          workloadArm("tini", plain([...PIDNS, tini, "--", ...command])),
          workloadArm("ours", (r) => [...PIDNS, ...ours("auto", command)(r)]),
          workloadArm("no reaper", (r) => [...PIDNS, ...ours("none", command)(r)]),
        ]
      : [
          workloadArm("tini", plain([tini, "-s", "--", ...command])),
          workloadArm("ours", ours("auto", command)),
          workloadArm("ours sigchld", ours("sigchld", command)),
          workloadArm("no reaper", ours("none", command)),
        ],
  });

  const sleeper = ["sleep", "600"];
  const aroundArms = (afterMs: number, during: () => Promise<Measured>): Arm[] =>
    [
      ["tini", plain([tini, "-s", "--", ...sleeper])],
      ["bare Bun", ours("none", sleeper)],
      ["ours", ours("auto", sleeper)],
      ["ours sigchld", ours("sigchld", sleeper)],
    ].map(([name, argv]) => ({
      name: name as string,
      argv: argv as Arm["argv"],
      measure: (command: string[]) => measureAround(command, afterMs, during),
    }));
  const churn = async (): Promise<Measured> => {
    const run = await runToEnd([workload, "churn", "--count", String(CHURN_FORKS)]);
    return { churnMs: Number(lastJson(run.stdout).elapsedMs) };
  };

  const idle = (id: string, title: string, afterMs: number): Scenario => ({
    id,
    group: "existing",
    title,
    metrics: [
      { key: "wakeupsPerS", label: "wakeups/s (context switches, all threads)" },
      { key: "cpuMsPerS", label: "CPU ms/s" },
      { key: "threadsEnded", label: "threads ended in the window (their share is lost)" },
    ],
    ratios: [["ours", "tini"], ["ours", "bare Bun"], ["ours sigchld", "bare Bun"]],
    arms: aroundArms(afterMs, async () => (await Bun.sleep(IDLE_WINDOW_MS), {})),
  });

  return [
    lifetime("rate-subreaper", "2000 orphans at 1000/s, child subreaper", rate, false),
    lifetime("burst-subreaper", "3000 orphans at once, child subreaper", burst, false),
    lifetime("rate-pid1", "2000 orphans at 1000/s, PID 1 of `unshare -p -f --mount-proc`", rate, true),
    lifetime("burst-pid1", "3000 orphans at once, PID 1 of `unshare -p -f --mount-proc`", burst, true),
    idle("idle", `Idle, ${IDLE_WINDOW_MS / 1000} s window from ${IDLE_AFTER_MS / 1000} s after start (child subreaper, child: sleep)`, IDLE_AFTER_MS),
    idle(
      "idle-settling",
      `Settling, ${IDLE_WINDOW_MS / 1000} s window from ${SETTLE_MS / 1000} s after start (child subreaper, child: sleep)`,
      SETTLE_MS,
    ),
    idle(
      "idle-start",
      `Just started, ${IDLE_WINDOW_MS / 1000} s window from ${START_WINDOW_AT_MS / 1000} s after start (child subreaper, child: sleep)`,
      START_WINDOW_AT_MS,
    ),
    {
      id: "unrelated",
      group: "existing",
      title: `While an unrelated process tree forks and exits ${CHURN_FORKS} times, from ${SETTLE_MS / 1000} s after start (child subreaper, idle otherwise)`,
      metrics: [
        { key: "ctxt", label: "daemon context switches during the churn" },
        { key: "cpuMs", label: "daemon CPU during the churn (ms)" },
        { key: "churnMs", label: "churn duration (ms)" },
        { key: "threadsEnded", label: "daemon threads ended during the churn (their share is lost)" },
      ],
      ratios: [["ours", "tini"], ["ours", "bare Bun"], ["ours sigchld", "bare Bun"]],
      arms: aroundArms(SETTLE_MS, churn),
    },
    {
      id: "loop-delay",
      group: "existing",
      title: "The daemon's event-loop delay (lateness of a 1 ms setInterval), child subreaper",
      metrics: [
        { key: "loop_p50", label: "loop delay p50 (ms)" },
        { key: "loop_p99", label: "loop delay p99 (ms)" },
        { key: "loop_max", label: "loop delay max (ms)" },
        { key: "source", label: "our source" },
      ],
      ratios: [["ours, 1000 orphans/s", "ours, no orphans"], ["ours, 1000 orphans/s", "no reaper, 1000 orphans/s"]],
      arms: [
        workloadArm("ours, no orphans", ours("auto", ["sleep", "3"], ["--loop-delay"])),
        workloadArm("ours, 1000 orphans/s", ours("auto", rate, ["--loop-delay"])),
        workloadArm("no reaper, 1000 orphans/s", ours("none", rate, ["--loop-delay"])),
      ],
    },
    {
      id: "own-children",
      group: "existing",
      title: "2000 orphans at 1000/s while the daemon has 2000 live Bun.spawn children, child subreaper",
      metrics: LIFETIME_METRICS.filter((m) => m.key !== "passIntervalMax"),
      ratios: [["ours, 2000 children", "ours, 0 children"], ["sigchld, 2000 children", "sigchld, 0 children"], ["ours, 2000 children", "tini"]],
      arms: [
        workloadArm("tini", plain([tini, "-s", "--", ...rate])),
        workloadArm("ours, 0 children", ours("auto", rate)),
        workloadArm("ours, 2000 children", ours("auto", rate, ["--children", "2000"])),
        workloadArm("sigchld, 0 children", ours("sigchld", rate)),
        workloadArm("sigchld, 2000 children", ours("sigchld", rate, ["--children", "2000"])),
      ],
    },
  ];
}
