/**
 * The benchmark runner: each scenario runs tini and orphan-reaper side by
 * side in one invocation (the machine is shared and noisy, so only ratios in
 * one run mean much) and writes BENCHMARKS.md.
 * usage: bun scripts/bench/run.ts [--quick]
 * The reaper's CPU and wakeups are read from outside, from
 * /proc/<pid>/task/<tid>/schedstat (ns on CPU) and .../status (context switches).
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { release } from "node:os";

const quick = process.argv.includes("--quick");
const here = import.meta.dir;
const bun = process.execPath;
const workload = (...args: (string | number)[]) => ["python3", `${here}/workload.py`, ...args.map(String)];
const daemonOut = `/tmp/orphan-reaper-bench-${process.pid}.jsonl`;

interface Usage { cpuMs: number; wakeups: number }
interface Run { workload: Record<string, number | null>; usage: Usage; seconds: number; daemon?: Record<string, number | string> }

/** CPU time and context switches of every thread of `pid`. */
function usageOf(pid: number): Usage | undefined {
  try {
    let cpuNs = 0;
    let wakeups = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      cpuNs += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
      for (const match of status.matchAll(/ctxt_switches:\s+(\d+)/g)) wakeups += Number(match[1]);
    }
    return { cpuMs: cpuNs / 1e6, wakeups };
  } catch {
    return undefined;
  }
}

/** The reaper's PID: the spawned process, or unshare -f's child. */
function reaperPid(spawned: number, viaUnshare: boolean): number | undefined {
  if (!viaUnshare) return spawned;
  const children = readFileSync(`/proc/${spawned}/task/${spawned}/children`, "utf8").trim();
  return children ? Number(children.split(" ")[0]) : undefined;
}

/** Runs `command`, sampling the reaper's usage until it exits; `during` runs alongside. */
async function measure(command: string[], during?: () => Promise<void>): Promise<Run> {
  rmSync(daemonOut, { force: true });
  const started = performance.now();
  const child = Bun.spawn(command, { stdout: "pipe", stderr: "inherit", env: { ...process.env, BENCH_DAEMON_OUT: daemonOut } });
  const viaUnshare = command[0] === "unshare";
  let pid: number | undefined;
  let first: Usage | undefined;
  let last: Usage | undefined;
  const sample = () => {
    pid ??= reaperPid(child.pid, viaUnshare);
    return pid === undefined ? undefined : usageOf(pid);
  };
  const sampler = setInterval(() => {
    const now = sample();
    if (first && now) last = now;
  }, 20);
  let output = "";
  let sideJob: Promise<void> | undefined;
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    output += decoder.decode(chunk);
    if (!first && output.includes('"event": "start"')) {
      // The reaper is up and the workload begins: count from here.
      first = sample();
      sideJob = during?.();
    }
  }
  await child.exited;
  await sideJob;
  clearInterval(sampler);
  if (!first) throw new Error(`no start line from ${command.join(" ")}`);
  const line = output.trim().split("\n").filter((l) => l.startsWith("{") && !l.includes('"event"')).at(-1);
  const daemon = (() => { try { return JSON.parse(readFileSync(daemonOut, "utf8").trim().split("\n").at(-1)!); } catch { return undefined; } })();
  return {
    workload: line ? JSON.parse(line) : {},
    usage: { cpuMs: (last ?? first)!.cpuMs - first!.cpuMs, wakeups: (last ?? first)!.wakeups - first!.wakeups },
    seconds: (performance.now() - started) / 1000,
    daemon,
  };
}

const tini = (pid1: boolean, cmd: string[]) => (pid1 ? ["unshare", "-p", "-f", "--mount-proc", "tini", "--", ...cmd] : ["tini", "-s", "--", ...cmd]);
const ours = (pid1: boolean, source: string, cmd: string[], extra: string[] = []) => [
  ...(pid1 ? ["unshare", "-p", "-f", "--mount-proc"] : []), bun, `${here}/daemon.ts`, "--source", source, ...extra, "--", ...cmd,
];

const fmt = (value: number | null | undefined, digits = 2) => (value === null || value === undefined ? "-" : value.toFixed(digits));
const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? `${(a / b).toFixed(2)}x` : "-");
const rows: string[] = [];

async function lifetimeRows() {
  rows.push("## Zombie lifetime (exit to reaped), ms, and reaper CPU per 1000 reaps", "",
    "| as | workload | reaper | p50 | p99 | max | left | CPU ms/1000 | p50 ratio | p99 ratio | CPU ratio |", "|---|---|---|---|---|---|---|---|---|---|---|");
  const counts = quick ? [[500, 1000], [500, 0]] : [[2000, 1000], [3000, 0]];
  for (const pid1 of [false, true]) {
    for (const [count, rate] of counts) {
      const cmd = workload("orphans", count!, rate!);
      const reference = await measure(tini(pid1, cmd));
      const label = `${count} ${rate ? `at ${rate}/s` : "at once"}`;
      const as = pid1 ? "PID 1 of a PID ns" : "subreaper";
      const line = (name: string, run: Run) => {
        const w = run.workload;
        const perK = (run.usage.cpuMs / (w.count ?? 1)) * 1000;
        const refPerK = (reference.usage.cpuMs / (reference.workload.count ?? 1)) * 1000;
        rows.push(`| ${as} | ${label}${w.rate_per_s ? ` (${w.rate_per_s}/s reached)` : ""} | ${name} | ${fmt(w.p50_ms)} | ${fmt(w.p99_ms)} | ${fmt(w.max_ms)} | ${w.leftover ?? "-"} | ${fmt(perK, 0)} | ${name === "tini" ? "" : ratio(w.p50_ms, reference.workload.p50_ms)} | ${name === "tini" ? "" : ratio(w.p99_ms, reference.workload.p99_ms)} | ${name === "tini" ? "" : ratio(perK, refPerK)} |`);
      };
      line("tini", reference);
      for (const source of pid1 ? ["sigchld"] : ["netlink", "sigchld"]) {
        const run = await measure(ours(pid1, source, cmd));
        line(`orphan-reaper (${run.daemon?.source ?? "?"})`, run);
      }
    }
  }
}

async function idleRows() {
  const seconds = quick ? 3 : 10;
  const cmd = workload("idle", seconds);
  const runs = { tini: await measure(tini(false, cmd)), "orphan-reaper (auto)": await measure(ours(false, "auto", cmd)), "bare Bun": await measure([bun, `${here}/bare.ts`, ...cmd]) };
  rows.push("", `## Idle wakeups over ${seconds} s (context switches of every thread, per second)`, "", "| process | wakeups/s | CPU ms |", "|---|---|---|");
  for (const [name, run] of Object.entries(runs)) rows.push(`| ${name}${run.daemon ? ` (${run.daemon.source})` : ""} | ${fmt(run.usage.wakeups / run.seconds, 1)} | ${fmt(run.usage.cpuMs, 1)} |`);
}

async function unrelatedRows() {
  const forks = quick ? 5000 : 20000;
  const storm = async () => void (await Bun.spawn(workload("forkstorm", forks)).exited);
  const seconds = quick ? 4 : 8;
  const cmd = workload("idle", seconds);
  const idleOurs = await measure(ours(false, "auto", cmd));
  const runs = { tini: await measure(tini(false, cmd), storm), "orphan-reaper": await measure(ours(false, "auto", cmd), storm) };
  rows.push("", `## An unrelated process tree forks and exits ${forks} times while the reaper idles ${seconds} s`, "",
    "| reaper | CPU ms | wakeups | same reaper idle, no storm: CPU ms / wakeups |", "|---|---|---|---|");
  rows.push(`| tini | ${fmt(runs.tini.usage.cpuMs)} | ${runs.tini.usage.wakeups} | |`);
  const our = runs["orphan-reaper"];
  rows.push(`| orphan-reaper (${our.daemon?.source}) | ${fmt(our.usage.cpuMs)} | ${our.usage.wakeups} | ${fmt(idleOurs.usage.cpuMs)} / ${idleOurs.usage.wakeups} |`);
}

async function loopAndScaleRows() {
  const count = quick ? 500 : 2000;
  const idle = await measure(ours(false, "auto", workload("idle", quick ? 2 : 4), ["--loop-delay"]));
  const busy = await measure(ours(false, "auto", workload("orphans", count, 1000), ["--loop-delay"]));
  rows.push("", "## orphan-reaper's own event-loop delay (1 ms interval lateness)", "", "| daemon | source | p99 ms | max ms |", "|---|---|---|---|",
    `| idle | ${idle.daemon?.source} | ${fmt(idle.daemon?.loop_delay_p99_ms as number)} | ${fmt(idle.daemon?.loop_delay_max_ms as number)} |`,
    `| reaping ${count} orphans at up to 1000/s | ${busy.daemon?.source} | ${fmt(busy.daemon?.loop_delay_p99_ms as number)} | ${fmt(busy.daemon?.loop_delay_max_ms as number)} |`);
  rows.push("", `## With 2000 live children of its own (sigchld source, ${count} orphans at up to 1000/s)`, "",
    "| live own children | p50 ms | p99 ms | CPU ms/1000 reaps |", "|---|---|---|---|");
  for (const live of [0, 2000]) {
    const run = await measure(ours(false, "sigchld", workload("orphans", count, 1000), ["--live-children", String(live)]));
    rows.push(`| ${live} | ${fmt(run.workload.p50_ms)} | ${fmt(run.workload.p99_ms)} | ${fmt((run.usage.cpuMs / count) * 1000, 0)} |`);
  }
}

await lifetimeRows();
await idleRows();
await unrelatedRows();
await loopAndScaleRows();
rmSync(daemonOut, { force: true });
const header = [
  "# Benchmarks", "",
  `Made with \`bun scripts/bench/run.ts${quick ? " --quick" : ""}\` (also \`npm run bench\`) on ${new Date().toISOString().slice(0, 10)}, Linux ${release()}, ${navigator.hardwareConcurrency} cores, shared and noisy: compare the ratios within one run, not absolute times across runs.`,
  "tini 0.19 (Debian package) runs the same workload in the same run. The workload (scripts/bench/workload.py) double-forks orphans that stamp their exit time (CLOCK_MONOTONIC) in shared memory and watches them with kill(pid, 0) until they are gone; its watch granularity is one pass of its loop (about 2 ms while it is still forking at rate, 0.2 ms after).", "",
];
writeFileSync("BENCHMARKS.md", [...header, ...rows, ""].join("\n"));
console.log([...header, ...rows].join("\n"));
