/**
 * `npm run demo`: a daemon whose tool runs time out, played once without a
 * reaper and once per reaper source, each in its own child process (see
 * demo/storm.ts). Shows live progress, then zombie lifetimes per source next
 * to what the same storm leaves behind without a reaper. The demo itself runs
 * a reaper too, as a child subreaper: when the reaper-less daemon exits, its
 * zombies are handed to the demo, which reaps them instead of leaving them
 * to the machine's init.
 */
import { join } from "node:path";
import pino from "pino";
import { colorsWanted, formatTable, painter, redrawLine } from "../src/cli/style.ts";
import { startOrphanReaper } from "../src/index.ts";
import { DEMO_SWEEP_MS, HELPERS_PER_RUN, TOOL_RUNS, type DemoMode, type StormReport } from "./demo/storm.ts";

type Result = Extract<StormReport, { type: "result" | "unavailable" }>;

const MODES: readonly DemoMode[] = ["none", "netlink", "sigchld", "sweep"];
const LABELS: Record<DemoMode, string> = {
  none: "no reaper",
  netlink: "netlink (proc connector)",
  sigchld: "sigchld",
  sweep: `sweep only (every ${DEMO_SWEEP_MS / 1000} s here)`,
};
/** When piped, one plain progress line per this many ms instead of a redrawn line. */
const PLAIN_PROGRESS_EVERY_MS = 1_000;

const tty = colorsWanted(process.stdout);
const paint = painter(tty);

function progressText(mode: DemoMode, line: Extract<StormReport, { type: "progress" }>): string {
  const zombies = line.zombies > 0 ? paint("yellow", String(line.zombies)) : paint("green", "0");
  return `${paint("cyan", LABELS[mode].padEnd(30))} tool runs ${String(line.started).padStart(3)}/${TOOL_RUNS}  orphans ${String(line.orphans).padStart(3)}  reaped ${String(line.reaped).padStart(3)}  zombies now ${zombies}`;
}

/** Runs one demo daemon and shows its progress; resolves to its last line. */
async function playDaemon(mode: DemoMode): Promise<Result> {
  const worker = Bun.spawn([process.execPath, join(import.meta.dir, "demo/storm.ts"), mode], { stdout: "pipe", stderr: "inherit" });
  let lastPlainAt = -Infinity;
  let last: StormReport | undefined;
  let lastProgress = "";
  let pending = "";
  for await (const chunk of worker.stdout.pipeThrough(new TextDecoderStream())) {
    const lines = (pending + chunk).split("\n");
    pending = lines.pop() ?? "";
    for (const text of lines) {
      last = JSON.parse(text) as StormReport;
      if (last.type !== "progress") continue;
      lastProgress = progressText(mode, last);
      if (tty) redrawLine(process.stdout, lastProgress);
      else if (performance.now() - lastPlainAt >= PLAIN_PROGRESS_EVERY_MS) {
        process.stdout.write(`${lastProgress}\n`);
        lastPlainAt = performance.now();
        lastProgress = "";
      }
    }
  }
  await worker.exited;
  // On a TTY, end the redrawn line; when piped, print the final count if it was not printed yet.
  if (tty || lastProgress) process.stdout.write(tty ? "\n" : `${lastProgress}\n`);
  if (!last || last.type === "progress") throw new Error(`the ${mode} demo daemon ended without a result (exit ${worker.exitCode})`);
  if (last.type === "unavailable") process.stdout.write(`${paint("cyan", LABELS[mode].padEnd(30))} ${paint("dim", `not available here: ${last.reason}`)}\n`);
  return last;
}

function formatMs(ms: number): string {
  return ms >= 100 ? `${Math.round(ms)} ms` : `${ms.toFixed(ms >= 10 ? 1 : 2)} ms`;
}

function resultRow(mode: DemoMode, result: Result): string[] {
  const label = LABELS[mode];
  if (result.type === "unavailable") return [label, "-", "-", "-", "-", "-", "-"];
  const left = result.zombiesLeft > 0 ? paint("red", String(result.zombiesLeft)) : paint("green", "0");
  const { count, p50Ms, p99Ms, maxMs } = result.lifetimes;
  const times = count === 0 ? ["-", "-", "-"] : [formatMs(p50Ms), formatMs(p99Ms), formatMs(maxMs)];
  return [label, String(result.orphans), String(result.reaped), left, ...times];
}

async function main(): Promise<void> {
  // The demo's own reaper: the reaper-less daemon's zombies land here when it exits.
  const ownReaper = await startOrphanReaper({ logger: pino({ level: "silent" }) });
  process.stdout.write(
    `${paint("bold", "orphan-reaper demo")}: a daemon starts ${TOOL_RUNS} tool runs, each a process group of sh and ` +
      `${HELPERS_PER_RUN} helpers;\nevery run times out and the daemon SIGKILLs its group, so the helpers become ` +
      `zombies reparented to the daemon (a child subreaper).\n\n`,
  );
  const rows: string[][] = [];
  for (const mode of MODES) rows.push(resultRow(mode, await playDaemon(mode)));
  const header = ["daemon", "orphans", "reaped", "zombies left", "p50", "p99", "max"].map((cell) => paint("bold", cell));
  process.stdout.write(`\n${formatTable([header, ...rows])}\n`);
  process.stdout.write(
    paint("dim", "\nzombie lifetime: from the SIGKILL of the group to the reap of each helper (kernel teardown included).\n") +
      paint("dim", `the reaper-less daemon's zombies stayed until it exited; then the demo's own reaper (${ownReaper.source}) reaped ${ownReaper.stats().reaped}.\n`),
  );
  await ownReaper.stop();
}

await main();
