/**
 * The bench runner: runs every scenario's arms side by side (interleaved,
 * round after round, so that the noise of a shared machine falls on all of
 * them alike; each round starts one arm later, so that no arm always follows
 * the same one and inherits what it leaves behind) and prints a markdown
 * report: the median of each metric per arm, the ratios (ours / tini, or ours
 * / a Bun daemon without a reaper), and the exact command of every arm.
 * Needs root (unshare -p, a cgroup, perf), tini, catatonit, perf and cc
 * (BENCHMARKS.md, "Running it").
 *
 *   bun scripts/bench/run.ts [--rounds N] [--only NAME,...] [--arms NAME,...] [--repo DIR] [--against DIR]
 *                            [--scale F] [--list] [--out FILE]
 *
 * --only takes scenario ids (exact, or a prefix of several) or a group:
 * `existing` (the rows of the earlier runs) or `per-exit` (issue #10's rows).
 * --repo DIR measures the library in DIR/src (another worktree) with this
 * harness. --against DIR adds, on the per-exit rows, Bun's netlink and
 * sigchld arms on DIR's library ("netlink (against)"), and each same arm's
 * ratio, ours over DIR's: an A/B of two builds in one run. --arms keeps only
 * the arms named (exact names, as in the report's columns), and the ratios
 * between them. --scale F multiplies the per-exit rows' orphan counts (rates
 * stay): 0.1 for a quick check that everything runs, 1 for figures.
 */
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { release } from "node:os";
import { join, resolve } from "node:path";
import { buildWorkload, median, readLoadAverage, SCRATCH_DIR } from "./measure.ts";
import { buildPerExitScenarios } from "./per-exit.ts";
import { buildExistingScenarios, type Measured, type Metric, type Scenario, type Tools } from "./scenarios.ts";

interface RunArgs {
  readonly rounds: number;
  readonly only: readonly string[] | undefined;
  readonly repo: string | undefined;
  readonly against: string | undefined;
  readonly arms: readonly string[] | undefined;
  readonly out: string | undefined;
  readonly list: boolean;
  /** Multiplies the orphan counts of the per-exit rows (a quick smoke run: 0.1). */
  readonly scale: number;
}

function parseArgs(argv: string[]): RunArgs {
  const value = (name: string) => {
    const i = argv.indexOf(name);
    return i < 0 ? undefined : argv[i + 1];
  };
  const rounds = Number(value("--rounds") ?? 3);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${value("--rounds")}`);
  const [repo, against] = ["--repo", "--against"].map((name) => {
    const dir = value(name);
    if (dir !== undefined && !existsSync(`${dir}/src/index.ts`)) throw new Error(`${name} ${dir}: no src/index.ts there`);
    return dir && resolve(dir);
  });
  const scale = Number(value("--scale") ?? 1);
  if (!(scale > 0)) throw new Error(`--scale must be a positive number, got ${value("--scale")}`);
  const arms = value("--arms")?.split(",");
  return { rounds, only: value("--only")?.split(","), arms, repo, against, out: value("--out"), list: argv.includes("--list"), scale };
}

function findTools(repo: string | undefined, against: string | undefined): Tools {
  const tini = Bun.which("tini");
  if (!tini) throw new Error("tini not found: apt-get update && apt-get install -y tini catatonit");
  const catatonit = Bun.which("catatonit") ?? undefined;
  if (!catatonit) log("catatonit not found (apt-get install -y catatonit): its arms will fail and show '-'");
  return { workload: buildWorkload(), bun: process.execPath, tini, catatonit, repo, against };
}

/** The scenario with only the arms named (all when none are), and the ratios between arms kept. */
function keepArms(scenario: Scenario, names: readonly string[] | undefined): Scenario {
  if (!names) return scenario;
  const arms = scenario.arms.filter((arm) => names.includes(arm.name));
  const kept = new Set(arms.map((arm) => arm.name));
  return { ...scenario, arms, ratios: scenario.ratios.filter(([a, b]) => kept.has(a) && kept.has(b)) };
}

/** The measured code: the repository's commit, and whether its src/ has changes not committed. */
function describeRepo(repo: string): string {
  const git = (args: string[]) => Bun.spawnSync(["git", "-C", repo, ...args], { stdout: "pipe", stderr: "ignore" }).stdout.toString().trim();
  const dirty = git(["status", "--porcelain", "--", "src"]) ? " with uncommitted changes in src/" : "";
  return `${repo} at ${git(["rev-parse", "--short", "HEAD"]) || "?"} (${git(["rev-parse", "--abbrev-ref", "HEAD"]) || "?"})${dirty}`;
}

function toolVersion(argv: string[]): string {
  const run = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  return (run.stdout.toString() + run.stderr.toString()).trim().split("\n")[0] ?? "?";
}

/** Printed commands are relative to the repository root. */
const REPO_ROOT = `${resolve(import.meta.dir, "../..")}/`;

const log = (line: string) => process.stderr.write(`${line}\n`);

/** Every arm once per round; a failed run is logged and left out of the medians. */
async function runScenario(scenario: Scenario, rounds: number): Promise<Map<string, Measured[]>> {
  const results = new Map<string, Measured[]>(scenario.arms.map((arm) => [arm.name, []]));
  // Interrupted, the runner still removes what setUp made (the cgroup, and what runs in it).
  const onSignal = () => {
    scenario.tearDown?.();
    process.exit(130);
  };
  process.once("SIGINT", onSignal).once("SIGTERM", onSignal);
  scenario.setUp?.();
  try {
    await runRounds(scenario, rounds, results);
  } finally {
    process.off("SIGINT", onSignal).off("SIGTERM", onSignal);
    scenario.tearDown?.();
  }
  return results;
}

/**
 * The arms in the order of one round: round r starts at arm r-1. An arm run
 * right after 2000 processes (or a PID namespace of them) went away can pay
 * for some of it (frees deferred to softirq run in its time slices); a fixed
 * order would put that on the same arm every round.
 */
function armsInRound<T>(arms: readonly T[], round: number): T[] {
  const start = (round - 1) % arms.length;
  return [...arms.slice(start), ...arms.slice(0, start)];
}

async function runRounds(scenario: Scenario, rounds: number, results: Map<string, Measured[]>): Promise<void> {
  for (let round = 1; round <= rounds; round += 1) {
    for (const arm of armsInRound(scenario.arms, round)) {
      const report = join(SCRATCH_DIR, `report-${process.pid}.json`);
      rmSync(report, { force: true });
      const argv = arm.argv(report);
      try {
        const measured = await arm.measure(argv, report);
        results.get(arm.name)!.push(measured);
        log(`[${scenario.id}] round ${round} ${arm.name}: ${JSON.stringify(measured)}`);
      } catch (err) {
        log(`[${scenario.id}] round ${round} ${arm.name} FAILED: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        rmSync(report, { force: true });
      }
    }
  }
}

/** The median over rounds for numbers; for strings (the source), the distinct values. */
function summarize(runs: readonly Measured[], key: string): number | string | undefined {
  const values = runs.map((run) => run[key]).filter((v) => v !== undefined);
  if (values.length === 0) return undefined;
  if (values.every((v) => typeof v === "number")) {
    const numbers = (values as number[]).filter((v) => v >= 0); // -1: nothing to take a percentile of
    return numbers.length ? median(numbers) : undefined;
  }
  return [...new Set(values.map(String))].join("/");
}

function formatNumber(value: number): string {
  if (value === 0) return "0";
  const abs = Math.abs(value);
  return abs >= 100 ? value.toFixed(0) : abs >= 10 ? value.toFixed(1) : abs >= 1 ? value.toFixed(2) : value.toPrecision(2);
}

const cell = (value: number | string | undefined) =>
  value === undefined ? "-" : typeof value === "number" ? formatNumber(value) : value;

function ratioCell(numerator: number | string | undefined, denominator: number | string | undefined): string {
  if (typeof numerator !== "number" || typeof denominator !== "number") return "-";
  if (denominator === 0) return numerator === 0 ? "1" : "n/a (÷0)";
  return `${formatNumber(numerator / denominator)}×`;
}

/** The scenario's rows, plus one per measured key with its metricPrefix, largest first. */
function metricsOf(scenario: Scenario, results: Map<string, Measured[]>): Metric[] {
  const prefix = scenario.metricPrefix;
  if (!prefix) return [...scenario.metrics];
  const largest = new Map<string, number>();
  for (const run of [...results.values()].flat()) {
    for (const [key, value] of Object.entries(run)) {
      if (key.startsWith(prefix) && typeof value === "number") largest.set(key, Math.max(largest.get(key) ?? 0, value));
    }
  }
  const extra = [...largest].sort((a, b) => b[1] - a[1]).map(([key]) => ({ key, label: `${key.slice(prefix.length)} per reap` }));
  return [...scenario.metrics, ...extra];
}

/** Quoted for a shell when it has spaces or quotes (the placeholders $WORKLOAD / $REPORT stay bare). */
const shellWord = (word: string) => (/[\s'"]/.test(word) ? `'${word.replaceAll("'", `'\\''`)}'` : word);

function scenarioMarkdown(scenario: Scenario, results: Map<string, Measured[]>, tools: Tools): string {
  const arms = scenario.arms.map((arm) => arm.name);
  const ratioHeads = scenario.ratios.map(([a, b]) => `${a} / ${b}`);
  const lines = [
    `### ${scenario.title}`,
    "",
    `| metric | ${[...arms, ...ratioHeads].join(" | ")} |`,
    `|---|${[...arms, ...ratioHeads].map(() => "---:").join("|")}|`,
  ];
  for (const metric of metricsOf(scenario, results)) {
    const values = new Map(arms.map((arm) => [arm, summarize(results.get(arm) ?? [], metric.key)]));
    const ratios = scenario.ratios.map(([a, b]) => (metric.ratio === false ? "-" : ratioCell(values.get(a), values.get(b))));
    lines.push(`| ${metric.label} | ${[...arms.map((arm) => cell(values.get(arm))), ...ratios].join(" | ")} |`);
  }
  const counts = arms.map((arm) => `${arm}: ${results.get(arm)?.length ?? 0}`).join(", ");
  lines.push("", `Runs kept (median taken over them): ${counts}.`, "", "Commands:", "");
  for (const arm of scenario.arms) {
    const argv = arm.argv("$REPORT").map((part) =>
      part
        .replace(tools.workload, "$WORKLOAD")
        .replace(tools.bun, "bun")
        .replace(tools.tini, "tini")
        .replace(tools.catatonit ?? "catatonit", "catatonit")
        .replace(REPO_ROOT, ""),
    );
    lines.push(`- ${arm.name}: \`${argv.map(shellWord).join(" ")}\``);
  }
  return lines.join("\n");
}

async function main(args: RunArgs): Promise<void> {
  const tools = findTools(args.repo, args.against);
  const all = [...buildExistingScenarios(tools), ...buildPerExitScenarios(tools, args.scale)];
  if (args.list) {
    for (const s of all) process.stdout.write(`${s.group}\t${s.id}\t${s.title}\n`);
    return;
  }
  // An exact id selects that row alone (per-exit-crowded is also a prefix of per-exit-crowded-half-cpu).
  const ids = new Set(all.map((s) => s.id));
  const chosen = (s: Scenario, name: string) => s.group === name || s.id === name || (!ids.has(name) && s.id.startsWith(name));
  const rows = all.filter((s) => !args.only || args.only.some((name) => chosen(s, name)));
  if (rows.length === 0) throw new Error(`--only ${args.only?.join(",")}: no such scenario or group (see --list)`);
  const unknownArms = args.arms?.filter((name) => !rows.some((s) => s.arms.some((arm) => arm.name === name))) ?? [];
  if (unknownArms.length > 0) throw new Error(`--arms: no arm named ${unknownArms.join(", ")} in the rows chosen`);
  const scenarios = rows.map((s) => keepArms(s, args.arms));
  const startedAt = new Date().toISOString();
  const loadBefore = readLoadAverage();
  const measuredCode = describeRepo(args.repo ?? REPO_ROOT.slice(0, -1)) + (args.against ? `; against: ${describeRepo(args.against)}` : "");
  const sections: string[] = [];
  for (const scenario of scenarios) {
    log(`== ${scenario.id}: ${scenario.title}`);
    sections.push(scenarioMarkdown(scenario, await runScenario(scenario, args.rounds), tools));
  }
  const header = [
    `Run: \`bun scripts/bench/run.ts ${process.argv.slice(2).map(shellWord).join(" ")}\` at ${startedAt}`,
    `Machine: Linux ${release()}, ${navigator.hardwareConcurrency} CPUs, load average ${loadBefore} before, ${readLoadAverage()} after.`,
    `Measured: ${measuredCode} (at the start of the run).`,
    `Bun ${Bun.version}; ${toolVersion([tools.tini, "--version"])}; ${tools.catatonit ? toolVersion([tools.catatonit, "--version"]) : "catatonit absent"}; $WORKLOAD = \`cc -O2 scripts/bench/workload.c\`; $REPORT = the daemon's report file.`,
    `Each cell is the median over ${args.rounds} round(s); arms ran interleaved within each round, each round starting one arm later.`,
  ];
  const markdown = `${header.join("\n")}\n\n${sections.join("\n\n")}\n`;
  if (args.out) writeFileSync(args.out, markdown);
  process.stdout.write(markdown);
}

if (import.meta.main) await main(parseArgs(process.argv.slice(2)));
