/** Real processes for tests: orphans made by double fork, and /proc checks. */
import { listOwnChildren, readStats } from "../../src/procfs.ts";

/**
 * Makes `count` real orphans: shells fork them in the background and exit at
 * once, so they are reparented to us (we must be PID 1 or a subreaper). Each
 * runs the shell code `body` in a subshell.
 */
export async function makeOrphansRunning(count: number, body: string): Promise<void> {
  const perShell = 25;
  const shells = [];
  for (let made = 0; made < count; made += perShell) {
    const here = Math.min(perShell, count - made);
    const script = `i=0; while [ $i -lt ${here} ]; do (${body}) & i=$((i+1)); done; exit 0`;
    shells.push(Bun.spawn(["sh", "-c", script], { stdio: ["ignore", "ignore", "inherit"] }).exited);
  }
  await Promise.all(shells);
}

/** Orphans that sleep `sleepSeconds`, then exit with `exitCode`. */
export function makeOrphans(count: number, exitCode = 3, sleepSeconds = 0.2): Promise<void> {
  return makeOrphansRunning(count, `sleep ${sleepSeconds}; exit ${exitCode}`);
}

/** Our zombie children right now, read from /proc. */
export async function zombieChildren(): Promise<number[]> {
  const stats = await readStats(await listOwnChildren(process.pid));
  return stats.filter((stat) => stat.state === "Z").map((stat) => stat.pid);
}

/** Polls `condition` every 10 ms until it holds or `timeoutMs` passes; returns whether it held. */
export async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await condition()) return true;
    await Bun.sleep(10);
  }
  return condition();
}

/** Open file descriptors of this process. */
export function openFdCount(): number {
  return require("node:fs").readdirSync("/proc/self/fd").length;
}

/** Whether a command exists on PATH (for tests that need unshare, python3...). */
export function hasCommand(name: string): boolean {
  return Bun.which(name) !== null;
}
