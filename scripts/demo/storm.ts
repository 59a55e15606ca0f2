/**
 * One demo daemon: `bun scripts/demo/storm.ts <mode>` plays a daemon whose
 * tool runs time out, under one reaper mode ("none", or a forced source).
 * Each tool run is a process group (sh with helper processes); on timeout
 * the daemon SIGKILLs the group, the helpers become zombies reparented to
 * the daemon (a child subreaper), and the reaper (if any) reaps them.
 * Reports JSON lines on stdout: progress every 100 ms, then one result.
 */
import pino from "pino";
import { readFileSync } from "node:fs";
import { startOrphanReaper, type OrphanReaper, type SourceName } from "../../src/index.ts";
import { loadLibc } from "../../src/runtime/index.ts";
import { countOrphanZombies, summarizeLifetimes, type LifetimeSummary } from "../../src/metrics.ts";

export type DemoMode = "none" | SourceName;

export const TOOL_RUNS = 120;
export const HELPERS_PER_RUN = 3;
/** The sweep's interval in the demo (10 s by default): short, so the demo ends within seconds. */
export const DEMO_SWEEP_MS = 1_000;
const START_EVERY_MS = 25;
const TIMEOUT_MIN_MS = 60;
const TIMEOUT_SPREAD_MS = 200;
const PROGRESS_EVERY_MS = 100;
/** Without a reaper: how long the daemon shows that the zombies stay, after the last kill. */
const SHOW_LEFT_MS = DEMO_SWEEP_MS + 500;
/** With one: the longest it lets the reaper catch up after the last kill (it stops as soon as all are reaped); a bound for slow machines, not a pace. */
const CATCH_UP_MAX_MS = 20_000;

export type StormReport =
  | { readonly type: "progress"; readonly started: number; readonly orphans: number; readonly reaped: number; readonly zombies: number }
  | { readonly type: "unavailable"; readonly reason: string }
  | {
      readonly type: "result";
      readonly orphans: number;
      readonly reaped: number;
      readonly zombiesLeft: number;
      /** From the SIGKILL of the group to the reap of each helper. */
      readonly lifetimes: LifetimeSummary;
    };

const report = (line: StormReport) => process.stdout.write(`${JSON.stringify(line)}\n`);

/** When each helper PID was SIGKILLed, to measure its zombie lifetime at the reap. */
const killedAt = new Map<number, number>();
const lifetimes: number[] = [];
let started = 0;

function helpersOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").split(" ").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** One tool run: a shell and its helpers in their own process group, SIGKILLed at its timeout. */
async function toolRunThatTimesOut(): Promise<void> {
  const helpers = Array.from({ length: HELPERS_PER_RUN }, () => "sleep 30 &").join(" ");
  const shell = Bun.spawn(["sh", "-c", `${helpers} wait`], { detached: true, stdio: ["ignore", "ignore", "ignore"] });
  started += 1;
  await Bun.sleep(TIMEOUT_MIN_MS + Math.random() * TIMEOUT_SPREAD_MS);
  const now = performance.now();
  for (const helper of helpersOf(shell.pid)) killedAt.set(helper, now);
  process.kill(-shell.pid, "SIGKILL");
  await shell.exited;
}

async function storm(): Promise<void> {
  const runs: Promise<void>[] = [];
  for (let i = 0; i < TOOL_RUNS; i += 1) {
    runs.push(toolRunThatTimesOut());
    await Bun.sleep(START_EVERY_MS);
  }
  await Promise.all(runs);
}

async function startReaper(mode: DemoMode): Promise<OrphanReaper | undefined> {
  if (mode === "none") {
    // A daemon that is a subreaper but never reaps: what a Bun daemon is without this library.
    loadLibc().setChildSubreaper(true);
    return undefined;
  }
  const reaper = await startOrphanReaper({
    source: mode,
    sweepIntervalMs: DEMO_SWEEP_MS,
    logger: pino({ level: "silent" }),
    onReap: ({ pid }) => {
      const killed = killedAt.get(pid);
      if (killed !== undefined) lifetimes.push(performance.now() - killed);
    },
  });
  if (reaper.source !== mode) {
    const reason = reaper.stats().notChosen[mode] ?? "this build of orphan-reaper has no such source";
    report({ type: "unavailable", reason });
    await reaper.stop();
    process.exit(0);
  }
  return reaper;
}

async function main(mode: DemoMode): Promise<void> {
  const reaper = await startReaper(mode);
  const reaped = () => reaper?.stats().reaped ?? 0;
  const progress = async () =>
    report({ type: "progress", started, orphans: killedAt.size, reaped: reaped(), zombies: await countOrphanZombies() });
  const ticker = setInterval(() => void progress(), PROGRESS_EVERY_MS);
  await storm();
  const settleUntil = performance.now() + (mode === "none" ? SHOW_LEFT_MS : CATCH_UP_MAX_MS);
  while (performance.now() < settleUntil && (mode === "none" || reaped() < killedAt.size)) await Bun.sleep(50);
  clearInterval(ticker);
  await progress();
  report({
    type: "result",
    orphans: killedAt.size,
    reaped: reaped(),
    zombiesLeft: await countOrphanZombies(),
    lifetimes: summarizeLifetimes(lifetimes),
  });
  await reaper?.stop();
  process.exit(0);
}

const DEMO_MODES: readonly string[] = ["none", "netlink", "sigchld", "sweep"] satisfies DemoMode[];

if (import.meta.main) {
  const mode = process.argv[2] ?? "";
  if (!DEMO_MODES.includes(mode)) throw new Error(`usage: storm.ts <${DEMO_MODES.join("|")}>, got ${JSON.stringify(mode)}`);
  await main(mode as DemoMode);
}
