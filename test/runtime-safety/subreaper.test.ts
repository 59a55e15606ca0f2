/**
 * Runtime safety as a child subreaper (issue #13): Workers spawn children
 * through every API, each exiting with a known code, while an orphan storm
 * runs on the main thread beside the reaper, for each source and with the
 * most eager settings, and once with the main thread spawning too. Each run
 * is a daemon of its own (run-daemon.ts): a crash is a failure here.
 */
import { expect, test } from "bun:test";
import { seccompUnavailable, withoutPidfd } from "../helpers/without-pidfd.ts";
import { BASE_PLAN, MAIN_SPAWNS_EVERY_API, MILD_STORM, problems, runDaemon, runTimeoutMs, summary, type DaemonPlan } from "./run-daemon.ts";

const CLI_MAIN = `${import.meta.dir}/../../src/cli/main.ts`;

/** Why the proc connector cannot serve here (doctor's own reason), or undefined when it can. */
function netlinkUnavailable(): string | undefined {
  const doctor = Bun.spawnSync([process.execPath, CLI_MAIN, "doctor", "--json"], { stderr: "pipe" });
  try {
    const procConnector = JSON.parse(doctor.stdout.toString()).procConnector as { works: boolean; reason: string };
    return procConnector.works ? undefined : procConnector.reason;
  } catch {
    return `orphan-reaper doctor gave no report (exit ${doctor.exitCode}): ${doctor.stderr.toString().trim()}`;
  }
}

const noNetlink = netlinkUnavailable();
if (noNetlink) console.warn(`skipping the netlink run: the proc connector does not serve here (${noNetlink})`);

const runs: {
  name: string;
  reaper: DaemonPlan["reaper"];
  expectSource: string;
  main?: DaemonPlan["main"];
  storm?: Partial<DaemonPlan>;
  prefix?: readonly string[];
  skip?: string;
}[] = [
  { name: "netlink (default options)", reaper: {}, expectSource: "netlink", skip: noNetlink },
  { name: "sigchld", reaper: { source: "sigchld" }, expectSource: "sigchld" },
  { name: "sweep only, every 1 ms", reaper: { source: "sweep", sweepIntervalMs: 1 }, expectSource: "sweep" },
  { name: "sigchld with graceMs 0", reaper: { source: "sigchld", graceMs: 0 }, expectSource: "sigchld" },
  { name: "graceMs 0 with alwaysGrace (every zombie unknown, reaped at first sight)", reaper: { graceMs: 0, alwaysGrace: true }, expectSource: noNetlink ? "sigchld" : "netlink" },
  { name: "default options, the main thread spawning through every API too", reaper: {}, expectSource: noNetlink ? "sigchld" : "netlink", main: MAIN_SPAWNS_EVERY_API },
  {
    name: "where pidfd_open fails (EPERM: seccomp), the sweep every 50 ms, the main thread spawning too",
    reaper: { sweepIntervalMs: 50 },
    expectSource: "sweep",
    main: MAIN_SPAWNS_EVERY_API,
    storm: MILD_STORM,
    prefix: withoutPidfd("EPERM"),
    skip: seccompUnavailable,
  },
];

for (const { name, reaper, expectSource, main = BASE_PLAN.main, storm, prefix, skip } of runs) {
  const plan: DaemonPlan = { ...BASE_PLAN, ...storm, reaper, main };
  test.skipIf(!!skip)(`as subreaper, ${name}: no runtime child taken, every code right, every orphan reaped, no zombie left`, async () => {
    const run = await runDaemon(plan, prefix);
    console.log(`runtime-safety subreaper ${name}: ${JSON.stringify(summary(run))}`);
    expect(run.report).toMatchObject({ source: expectSource, role: "subreaper" });
    expect(problems(run, plan)).toEqual([]);
  }, runTimeoutMs(plan));
}
