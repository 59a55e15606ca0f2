/**
 * The Bun daemon under test: starts our reaper (or none), runs one command as
 * its child, and writes a JSON report when the command has exited.
 *
 *   bun scripts/bench/daemon.ts [--reaper none|floor|netlink-floor|auto|netlink|sigchld|sweep]
 *       [--children N] [--loop-delay] [--repo DIR] [--report FILE] -- command args...
 *
 * --reaper none is the baseline: a subreaper (or PID 1) that never reaps, what
 * a Bun daemon is without the library. --reaper floor is the
 * cheapest reaper woken by SIGCHLD that peeks, --reaper netlink-floor the
 * cheapest told each exit by the proc connector (floor-reaper.mjs), this
 * repository's, for reference. --children N keeps N long-lived
 * Bun.spawn children (`sleep`) while the command runs, so every SIGCHLD meets
 * a daemon with many children of its own. --loop-delay samples a 1 ms
 * setInterval and reports how late it fired. --repo DIR loads the library from
 * DIR/src (another worktree's code) instead of this repository's, so that one
 * harness measures both.
 */
import pino from "pino";
import { existsSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { OrphanReaper, SourceName } from "../../src/index.ts";
import type { Libc } from "../../src/libc.ts";
import * as wait from "../../src/libc.ts";
import { loadLibc } from "../../src/runtime/index.ts";
import * as netlinkEvents from "../../src/netlink/constants.ts";
import * as netlinkSocket from "../../src/netlink/socket.ts";
import { startFloorReaper, startNetlinkFloorReaper, type FloorReaper } from "./floor-reaper.mjs";

export type ReaperMode = "none" | "floor" | "netlink-floor" | "auto" | SourceName;
const REAPER_MODES: readonly string[] = ["none", "floor", "netlink-floor", "auto", "netlink", "sigchld", "sweep"] satisfies ReaperMode[];
/** The repository whose src/ is measured unless --repo names another. */
export const THIS_REPO = resolve(import.meta.dir, "../..");

export interface DaemonReport {
  readonly pid: number;
  readonly reaper: ReaperMode;
  /** The repository whose src/ was measured. */
  readonly repo: string;
  /** The source our reaper ended up with ("off" when it could not start), or "none". */
  readonly source: string;
  readonly reaped: number;
  readonly reapedBySource?: Readonly<Record<string, number>>;
  readonly children: number;
  readonly exitCode: number | null;
  /** Lateness of a 1 ms interval timer, ms. */
  readonly loopDelay?: { readonly samples: number; readonly p50: number; readonly p99: number; readonly max: number };
}

interface DaemonArgs {
  readonly reaper: ReaperMode;
  readonly children: number;
  readonly loopDelay: boolean;
  readonly report: string | undefined;
  readonly repo: string;
  readonly command: string[];
}

function parseArgs(argv: string[]): DaemonArgs {
  const dash = argv.indexOf("--");
  const flags = dash < 0 ? argv : argv.slice(0, dash);
  const command = dash < 0 ? [] : argv.slice(dash + 1);
  const value = (name: string) => {
    const i = flags.indexOf(name);
    return i < 0 ? undefined : flags[i + 1];
  };
  const reaper = value("--reaper") ?? "auto";
  if (!REAPER_MODES.includes(reaper)) throw new Error(`--reaper must be one of ${REAPER_MODES.join(", ")}, got ${reaper}`);
  if (command.length === 0) throw new Error("usage: daemon.ts [--reaper MODE] [--children N] [--loop-delay] [--report FILE] -- command...");
  return {
    reaper: reaper as ReaperMode,
    children: Number(value("--children") ?? 0),
    loopDelay: flags.includes("--loop-delay"),
    report: value("--report"),
    repo: resolve(value("--repo") ?? THIS_REPO),
    command,
  };
}

async function startReaper(mode: ReaperMode, repo: string): Promise<OrphanReaper | FloorReaper | undefined> {
  if (mode === "floor") return startFloorReaper(loadLibc(), wait);
  if (mode === "netlink-floor") return startNetlinkFloorReaper(loadLibc(), wait, netlinkSocket, netlinkEvents);
  if (mode === "none") {
    // Orphans must still come to this process, or the host's init would reap them for us.
    // The libc loader sits in src/runtime/ since the runtime seam, in src/libc.ts before it.
    const seam = join(repo, "src/runtime/index.ts");
    const { loadLibc }: { loadLibc: () => Libc } = await import(existsSync(seam) ? seam : join(repo, "src/libc.ts"));
    if (process.pid !== 1) loadLibc().setChildSubreaper(true);
    return undefined;
  }
  const { startOrphanReaper }: typeof import("../../src/index.ts") = await import(join(repo, "src/index.ts"));
  // Per-reap log lines are at info; the bench keeps them out (tini logs nothing either).
  return startOrphanReaper({ source: mode, subreaper: true, logger: pino({ level: "warn" }) });
}

/** Samples how late a 1 ms interval fires: the event loop's delay as a daemon's own timers see it. */
function sampleLoopDelay(): () => NonNullable<DaemonReport["loopDelay"]> {
  const lateness: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lateness.push(Math.max(0, now - last - 1));
    last = now;
  }, 1);
  return () => {
    clearInterval(timer);
    const sorted = lateness.sort((a, b) => a - b);
    const at = (p: number) => sorted[Math.round(p * (sorted.length - 1))] ?? -1;
    return { samples: sorted.length, p50: at(0.5), p99: at(0.99), max: at(1) };
  };
}

async function main(args: DaemonArgs): Promise<void> {
  const reaper = await startReaper(args.reaper, args.repo);
  const children = Array.from({ length: args.children }, () =>
    Bun.spawn(["sleep", "100000"], { stdio: ["ignore", "ignore", "ignore"] }),
  );
  const stopSampling = args.loopDelay ? sampleLoopDelay() : undefined;
  const command = Bun.spawn(args.command, { stdio: ["ignore", "inherit", "inherit"] });
  if (reaper && "leave" in reaper) reaper.leave(command.pid);
  const exitCode = await command.exited;
  const loopDelay = stopSampling?.();
  for (const child of children) child.kill("SIGKILL");
  await Promise.all(children.map((child) => child.exited));
  const stats = reaper?.stats();
  const report: DaemonReport = {
    pid: process.pid,
    reaper: args.reaper,
    repo: args.repo,
    source: reaper?.source ?? "none",
    reaped: stats?.reaped ?? 0,
    reapedBySource: stats?.reapedBySource,
    children: args.children,
    exitCode,
    loopDelay,
  };
  await reaper?.stop();
  const line = `${JSON.stringify(report)}\n`;
  if (args.report) writeFileSync(args.report, line);
  else process.stderr.write(line);
  process.exit(exitCode ?? 1);
}

if (import.meta.main) await main(parseArgs(process.argv.slice(2)));
