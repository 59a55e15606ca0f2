/**
 * The runtime-safety soak (issue #13), for release checks: the suite's daemon
 * (Workers and the main thread spawning through every API beside a
 * continuous orphan storm) run for a long time, once per source, each in a
 * daemon of its own. Prints, per source: runtime children stolen, wrong exit
 * codes, zombies left, orphans reaped; exits 1 if any is wrong.
 *
 *   bun scripts/soak.ts [--minutes N] [--sources netlink,sigchld,sweep] [--pid1] [--main-spawns]
 *
 * --minutes is per source (default 10). --pid1 runs each daemon as PID 1 of a
 * new PID namespace (root and unshare needed; netlink does not serve there).
 * --main-spawns has the main thread spawn through every API too, beside the
 * reaper (each spawn moves the PID namespace's last PID, which the
 * runtime-pidfd look keys its fd list on).
 */
import { parseArgs } from "node:util";
import { AS_PID1, BASE_PLAN, MAIN_SPAWNS_EVERY_API, problems, runDaemon, summary, type DaemonPlan } from "../test/runtime-safety/run-daemon.ts";

const SOURCES = {
  netlink: { source: "netlink" },
  sigchld: { source: "sigchld" },
  sweep: { source: "sweep", sweepIntervalMs: 1 },
} as const satisfies Record<string, DaemonPlan["reaper"]>;
type Source = keyof typeof SOURCES;

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "10" },
    sources: { type: "string", default: Object.keys(SOURCES).join(",") },
    pid1: { type: "boolean", default: false },
    "main-spawns": { type: "boolean", default: false },
  },
});
const minutes = Number(values.minutes);
if (!(minutes > 0)) throw new Error(`--minutes must be a positive number, got ${values.minutes}`);
const sources = values.sources.split(",") as Source[];
for (const source of sources) if (!(source in SOURCES)) throw new Error(`unknown source ${source}: one of ${Object.keys(SOURCES).join(", ")}`);

const where = values.pid1 ? "PID 1 of a new PID namespace" : "child subreaper";
console.log(`soak: ${minutes} min per source (${sources.join(", ")}), as ${where}${values["main-spawns"] ? ", the main thread spawning too" : ""}`);
let failed = false;
for (const source of sources) {
  const main = values["main-spawns"] ? MAIN_SPAWNS_EVERY_API : BASE_PLAN.main;
  const plan: DaemonPlan = { ...BASE_PLAN, main, reaper: SOURCES[source], durationMs: minutes * 60_000, settleMs: 15_000 };
  const startedAt = new Date().toISOString();
  const run = await runDaemon(plan, values.pid1 ? AS_PID1 : []);
  const counts = summary(run);
  if (run.report && run.report.source !== source) {
    console.log(`${source}: not available here, the daemon ran on ${run.report.source} (${run.report.notChosen[source]}); not counted`);
    continue;
  }
  const found = problems(run, plan);
  failed ||= found.length > 0;
  console.log(`${source} (from ${startedAt}): ${JSON.stringify(counts)}`);
  for (const problem of found) console.log(`  ${problem}`);
}
console.log(failed ? "soak: FAILED" : "soak: 0 stolen, 0 wrong exit codes, 0 zombies left, every orphan reaped");
process.exit(failed ? 1 : 0);
