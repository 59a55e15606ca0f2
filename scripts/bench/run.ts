/**
 * The bench runner: runs every scenario's arms side by side (interleaved,
 * round after round, so that the noise of a shared machine falls on all of
 * them alike) and prints a markdown report: the median of each metric per
 * arm, the ratios (ours / tini, or ours / a Bun daemon without a reaper),
 * and the exact command of every arm. Needs root (unshare -p), tini and cc.
 *
 *   bun scripts/bench/run.ts [--rounds N] [--only id,id] [--out FILE]
 */
import { rmSync, writeFileSync } from "node:fs";
import { release } from "node:os";
import { join, resolve } from "node:path";
import { buildWorkload, median, readLoadAverage, SCRATCH_DIR } from "./measure.ts";
import { buildScenarios, type Measured, type Scenario, type Tools } from "./scenarios.ts";

interface RunArgs {
  readonly rounds: number;
  readonly only: readonly string[] | undefined;
  readonly out: string | undefined;
}

function parseArgs(argv: string[]): RunArgs {
  const value = (name: string) => {
    const i = argv.indexOf(name);
    return i < 0 ? undefined : argv[i + 1];
  };
  const rounds = Number(value("--rounds") ?? 3);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${value("--rounds")}`);
  return { rounds, only: value("--only")?.split(","), out: value("--out") };
}

function findTools(): Tools {
  const tini = Bun.which("tini");
  if (!tini) throw new Error("tini not found: apt-get update && apt-get install -y tini");
  return { workload: buildWorkload(), bun: process.execPath, tini };
}

function toolVersion(argv: string[]): string {
  const run = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  return (run.stdout.toString() + run.stderr.toString()).trim().split("\n")[0] ?? "?";
}

/** Printed commands are relative to the repository root. */
const REPO_ROOT = `${resolve(import.meta.dir, "../..")}/`;

const log = (line: string) => process.stderr.write(`${line}\n`);

/** Every arm once per round, in order; a failed run is logged and left out of the medians. */
async function runScenario(scenario: Scenario, rounds: number): Promise<Map<string, Measured[]>> {
  const results = new Map<string, Measured[]>(scenario.arms.map((arm) => [arm.name, []]));
  for (let round = 1; round <= rounds; round += 1) {
    for (const arm of scenario.arms) {
      const report = join(SCRATCH_DIR, `report-${process.pid}.json`);
      rmSync(report, { force: true });
      const argv = arm.argv(report);
      try {
        const measured = await arm.measure(argv, report);
        results.get(arm.name)!.push(measured);
        log(`[${scenario.id}] round ${round} ${arm.name}: ${JSON.stringify(measured)}`);
      } catch (err) {
        log(`[${scenario.id}] round ${round} ${arm.name} FAILED: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
  return results;
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

function scenarioMarkdown(scenario: Scenario, results: Map<string, Measured[]>, tools: Tools): string {
  const arms = scenario.arms.map((arm) => arm.name);
  const ratioHeads = scenario.ratios.map(([a, b]) => `${a} / ${b}`);
  const lines = [
    `### ${scenario.title}`,
    "",
    `| metric | ${[...arms, ...ratioHeads].join(" | ")} |`,
    `|---|${[...arms, ...ratioHeads].map(() => "---:").join("|")}|`,
  ];
  for (const metric of scenario.metrics) {
    const values = new Map(arms.map((arm) => [arm, summarize(results.get(arm) ?? [], metric.key)]));
    const ratios = scenario.ratios.map(([a, b]) => ratioCell(values.get(a), values.get(b)));
    lines.push(`| ${metric.label} | ${[...arms.map((arm) => cell(values.get(arm))), ...ratios].join(" | ")} |`);
  }
  const counts = arms.map((arm) => `${arm}: ${results.get(arm)?.length ?? 0}`).join(", ");
  lines.push("", `Runs kept (median taken over them): ${counts}.`, "", "Commands:", "");
  for (const arm of scenario.arms) {
    const argv = arm.argv("$REPORT").map((part) =>
      part.replace(tools.workload, "$WORKLOAD").replace(tools.bun, "bun").replace(tools.tini, "tini").replace(REPO_ROOT, ""),
    );
    lines.push(`- ${arm.name}: \`${argv.join(" ")}\``);
  }
  return lines.join("\n");
}

async function main(args: RunArgs): Promise<void> {
  const tools = findTools();
  const scenarios = buildScenarios(tools).filter((s) => !args.only || args.only.some((id) => s.id.startsWith(id)));
  const startedAt = new Date().toISOString();
  const loadBefore = readLoadAverage();
  const sections: string[] = [];
  for (const scenario of scenarios) {
    log(`== ${scenario.id}: ${scenario.title}`);
    sections.push(scenarioMarkdown(scenario, await runScenario(scenario, args.rounds), tools));
  }
  const header = [
    `Run: \`bun scripts/bench/run.ts ${process.argv.slice(2).join(" ")}\` at ${startedAt}`,
    `Machine: Linux ${release()}, ${navigator.hardwareConcurrency} CPUs, load average ${loadBefore} before, ${readLoadAverage()} after.`,
    `Bun ${Bun.version}; ${toolVersion([tools.tini, "--version"])}; $WORKLOAD = \`cc -O2 scripts/bench/workload.c\`; $REPORT = the daemon's report file.`,
    `Each cell is the median over ${args.rounds} round(s); arms ran interleaved within each round.`,
  ];
  const markdown = `${header.join("\n")}\n\n${sections.join("\n\n")}\n`;
  if (args.out) writeFileSync(args.out, markdown);
  process.stdout.write(markdown);
}

if (import.meta.main) await main(parseArgs(process.argv.slice(2)));
