/**
 * The runtime-safety soak (issue #13), for release checks: the suite's daemon
 * (Workers and the main thread spawning through every API beside a
 * continuous orphan storm) run for a long time, once per source, each in a
 * daemon of its own. Prints, per source: runtime children stolen, wrong exit
 * codes, zombies left, orphans reaped; exits 1 if any is wrong.
 *
 *   bun scripts/soak.ts [--minutes N] [--sources netlink,sigchld,sweep] [--pid1] [--main-spawns]
 *       [--without-pidfd EPERM|ENOSYS]
 *
 * --minutes is per source (default 10). --pid1 runs each daemon as PID 1 of a
 * new PID namespace (root and unshare needed; netlink does not serve there).
 * --main-spawns has the main thread spawn through every API too, beside the
 * reaper (each spawn moves the PID namespace's last PID, which the
 * runtime-pidfd look keys its fd list on). --without-pidfd runs each daemon
 * where pidfd_open fails so (test/fixtures/without-pidfd.ts: a seccomp
 * filter), beside a milder storm (MILD_STORM: every zombie waits out the
 * grace window there); only the sweep serves there on Bun.
 */
import { parseArgs } from "node:util";
import { withoutPidfd } from "../test/helpers/without-pidfd.ts";
import { AS_PID1, BASE_PLAN, MAIN_SPAWNS_EVERY_API, MILD_STORM, problems, runDaemon, summary, type DaemonPlan } from "../test/runtime-safety/run-daemon.ts";

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
    "without-pidfd": { type: "string" },
  },
});
const minutes = Number(values.minutes);
if (!(minutes > 0)) throw new Error(`--minutes must be a positive number, got ${values.minutes}`);
const sources = values.sources.split(",") as Source[];
for (const source of sources) if (!(source in SOURCES)) throw new Error(`unknown source ${source}: one of ${Object.keys(SOURCES).join(", ")}`);

const failingPidfd = values["without-pidfd"];
if (failingPidfd !== undefined && failingPidfd !== "EPERM" && failingPidfd !== "ENOSYS") throw new Error(`--without-pidfd must be EPERM or ENOSYS, got ${failingPidfd}`);
const prefix = [...(failingPidfd ? withoutPidfd(failingPidfd) : []), ...(values.pid1 ? AS_PID1 : [])];

const where = values.pid1 ? "PID 1 of a new PID namespace" : "child subreaper";
const extras = [values["main-spawns"] && "the main thread spawning too", failingPidfd && `pidfd_open failing with ${failingPidfd}, a milder storm`].filter(Boolean);
console.log(`soak: ${minutes} min per source (${sources.join(", ")}), as ${where}${extras.map((extra) => `, ${extra}`).join("")}`);
let failed = false;
for (const source of sources) {
  const main = values["main-spawns"] ? MAIN_SPAWNS_EVERY_API : BASE_PLAN.main;
  const storm = failingPidfd ? MILD_STORM : {};
  const plan: DaemonPlan = { ...BASE_PLAN, ...storm, main, reaper: SOURCES[source], durationMs: minutes * 60_000, settleMs: 15_000 };
  const startedAt = new Date().toISOString();
  const run = await runDaemon(plan, prefix);
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
