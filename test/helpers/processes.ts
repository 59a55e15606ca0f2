/**
 * Real processes for tests: what /proc says about them (always through
 * procfs.parseStat), runtime children with known exit codes, and a child that
 * lives until it is killed or this process dies. Orphans are in orphans.ts,
 * waits in time.ts.
 */
import type { Subprocess } from "bun";
import { execFile } from "node:child_process";
import { readdirSync, readlinkSync } from "node:fs";
import { listOwnChildren, readStat, readStats } from "../../src/procfs.ts";
import { killIfAlive, liveDescendants } from "../../scripts/descendants.ts";

export { waitUntil } from "./time.ts";

/** Our zombie children right now, read from /proc. */
export async function zombieChildren(): Promise<number[]> {
  const stats = await readStats(await listOwnChildren(process.pid));
  return stats.filter((stat) => stat.state === "Z").map((stat) => stat.pid);
}

export function isZombie(pid: number): boolean {
  return readStat(pid)?.state === "Z";
}

/** Whether `pid` names a process that still runs (neither gone nor a zombie). */
export function isLive(pid: number): boolean {
  const state = readStat(pid)?.state;
  return state !== undefined && state !== "Z";
}

/**
 * For finally blocks: SIGKILLs `child` and every live process below it
 * (listed first: once it dies they move). Nothing once the runtime has
 * reaped it: its PID may name another process by then.
 */
export function killTree(child: Subprocess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  for (const pid of [child.pid, ...liveDescendants(child.pid)]) killIfAlive(pid);
}

/** The parent of `pid`, or undefined when it is gone. */
export function parentOf(pid: number): number | undefined {
  return readStat(pid)?.ppid;
}

/** Open file descriptors of this process. */
export function openFdCount(): number {
  return readdirSync("/proc/self/fd").length;
}

/** Each open fd with what it links to ("5 -> anon_inode:[pidfd]"): fds closed and reopened as something else differ. */
export function openFds(): Set<string> {
  const fds = new Set<string>();
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      fds.add(`${fd} -> ${readlinkSync(`/proc/self/fd/${fd}`)}`);
    } catch {
      // closed meanwhile (the listing's own fd)
    }
  }
  return fds;
}

/** The fds open now that were not in `before`. */
export function fdsOpenedSince(before: ReadonlySet<string>): string[] {
  return [...openFds()].filter((fd) => !before.has(fd));
}

/** Whether a command exists on PATH (for tests that need unshare, python3...). */
export function hasCommand(name: string): boolean {
  return Bun.which(name) !== null;
}

/**
 * A Bun.spawn child that blocks reading its stdin: it runs until killed, and
 * ends by itself when this process dies (its stdin sees EOF). Use it where a
 * test needs a live child for a while, instead of `sleep 30`.
 */
export function spawnLiveChild() {
  return Bun.spawn(["sh", "-c", "read _"], { stdin: "pipe", stdout: "ignore", stderr: "inherit" });
}

export interface RuntimeChildren {
  /** PIDs of the Bun.spawn children (the child_process ones are in `childProcessPids`). */
  readonly bunSpawnPids: readonly number[];
  readonly childProcessPids: readonly number[];
  /** The exit codes the runtime reported, once every child has ended. */
  readonly exitCodes: Promise<{ bunSpawn: number[]; childProcess: number[] }>;
  /** The exit codes each must report: Bun.spawn child i exits i % 7, child_process child i exits i % 5. */
  readonly expected: { bunSpawn: number[]; childProcess: number[] };
}

/**
 * Bun.spawn and child_process children of this process, all started at once;
 * every other one lingers 0.1 s before it exits, so exits overlap whatever
 * the test does next. A reaper that took one would change its exit code (or
 * kill Bun with ECHILD).
 */
export function spawnRuntimeChildren(bunSpawn: number, childProcess: number): RuntimeChildren {
  const body = (i: number, code: number) => (i % 2 === 0 ? `exit ${code}` : `sleep 0.1; exit ${code}`);
  const bunChildren = Array.from({ length: bunSpawn }, (_, i) =>
    Bun.spawn(["sh", "-c", body(i, i % 7)], { stdio: ["ignore", "ignore", "inherit"] }),
  );
  const cpPids: number[] = [];
  const cpCodes = Array.from(
    { length: childProcess },
    (_, i) =>
      new Promise<number>((resolve) => {
        const child = execFile("sh", ["-c", body(i, i % 5)], (error) => resolve(error ? Number(error.code) : 0));
        cpPids.push(child.pid!);
      }),
  );
  return {
    bunSpawnPids: bunChildren.map((child) => child.pid),
    childProcessPids: cpPids,
    exitCodes: Promise.all([Promise.all(bunChildren.map((child) => child.exited)), Promise.all(cpCodes)]).then(
      ([bunCodes, childProcessCodes]) => ({ bunSpawn: bunCodes, childProcess: childProcessCodes }),
    ),
    expected: {
      bunSpawn: Array.from({ length: bunSpawn }, (_, i) => i % 7),
      childProcess: Array.from({ length: childProcess }, (_, i) => i % 5),
    },
  };
}
