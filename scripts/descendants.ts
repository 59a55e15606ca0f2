/**
 * The process tree around the test runners. Ending every process below this
 * one: the runners are child subreapers, so whatever a test leaves behind (its
 * process group, orphans, processes that called setsid) is reparented to them
 * when its parent dies, and can be found by walking /proc/PID/task/TID/children
 * down from us. And noticing when a process above ends.
 */
import { P_PID, WEXITED, WNOHANG } from "../src/libc.ts";
import { loadLibc } from "../src/runtime/index.ts";
import { readStat, readTaskChildren } from "../src/procfs.ts";
import { scaled } from "../test/helpers/scale.mjs";

const ROUND_PAUSE_MS = 20;
const GIVE_UP_AFTER_MS = 10_000;
const ANCESTOR_CHECK_MS = 100;
/** Our parent and its parent: npm runs scripts through `sh -c`, and sh outlives a SIGKILLed npm. */
const WATCHED_ANCESTORS = 2;

/** Every live (not zombie) descendant of `root`, parents before children. */
export function liveDescendants(root = process.pid): number[] {
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of readTaskChildren(queue.shift()!) ?? []) {
      queue.push(child);
      if (readStat(child)?.state !== "Z") found.push(child);
    }
  }
  return found;
}

/** SIGKILLs `pid` (a negative one: its process group); false when nothing had it any more. */
export function killIfAlive(pid: number): boolean {
  try {
    process.kill(pid, "SIGKILL");
    return true;
  } catch {
    return false; // ended meanwhile
  }
}

/**
 * SIGKILLs every descendant, again and again until none is left (a process
 * may fork while we walk; a killed parent's children come up to us), then
 * reaps the zombie children we adopted. Call it only when the runtime tracks
 * no child of ours any more but `runtimeChild`, whose zombie is left to it:
 * the reap takes every other zombie child.
 * Returns how many processes it killed.
 */
export async function killDescendants(runtimeChild?: number): Promise<number> {
  const killed = new Set<number>();
  const giveUpAt = performance.now() + scaled(GIVE_UP_AFTER_MS);
  for (let live = liveDescendants(); live.length > 0; live = liveDescendants()) {
    for (const pid of live) if (killIfAlive(pid)) killed.add(pid);
    if (performance.now() > giveUpAt) {
      console.error(`still alive after ${scaled(GIVE_UP_AFTER_MS)} ms of SIGKILL: ${live.join(" ")}`);
      break;
    }
    await Bun.sleep(ROUND_PAUSE_MS);
  }
  reapZombieChildren(runtimeChild);
  return killed.size;
}

function reapZombieChildren(runtimeChild: number | undefined): void {
  const libc = loadLibc();
  for (const pid of readTaskChildren() ?? []) {
    if (pid === runtimeChild || readStat(pid)?.state !== "Z") continue;
    try {
      libc.waitid(P_PID, pid, WEXITED | WNOHANG);
    } catch {
      // ECHILD: someone else took it
    }
  }
}

/**
 * Calls `onEnd` (once) when our parent or its parent ends: gone, a zombie, or
 * its PID now names another process. Reads /proc on a timer (no fork).
 */
export function whenAncestorEnds(onEnd: (pid: number) => void): void {
  const watched: { pid: number; startTime: number }[] = [];
  for (let pid = process.ppid; pid > 1 && watched.length < WATCHED_ANCESTORS; ) {
    const stat = readStat(pid);
    if (!stat) break;
    watched.push({ pid, startTime: stat.startTime });
    pid = stat.ppid;
  }
  const timer = setInterval(() => {
    const ended = watched.find(({ pid, startTime }) => {
      const stat = readStat(pid);
      return stat === undefined || stat.startTime !== startTime || stat.state === "Z";
    });
    if (!ended) return;
    clearInterval(timer);
    onEnd(ended.pid);
  }, ANCESTOR_CHECK_MS);
  timer.unref();
}
