/**
 * Ending every process below this one, for the test runners. They are child
 * subreapers, so whatever a test leaves behind (its process group, orphans,
 * processes that called setsid) is reparented to them when its parent dies,
 * and can be found by walking /proc/PID/task/TID/children down from us.
 */
import { loadLibc, P_PID, WEXITED, WNOHANG } from "../src/libc.ts";
import { readStat, readTaskChildren } from "../src/procfs.ts";

const ROUND_PAUSE_MS = 20;
const GIVE_UP_AFTER_MS = 10_000;

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

/**
 * SIGKILLs every descendant, again and again until none is left (a process
 * may fork while we walk; a killed parent's children come up to us), then
 * reaps the zombie children we adopted. Call it only when the runtime tracks
 * no child of ours any more: the reap takes every zombie child.
 * Returns how many processes it killed.
 */
export async function killDescendants(): Promise<number> {
  const killed = new Set<number>();
  const giveUpAt = performance.now() + GIVE_UP_AFTER_MS;
  for (let live = liveDescendants(); live.length > 0; live = liveDescendants()) {
    for (const pid of live) {
      try {
        process.kill(pid, "SIGKILL");
        killed.add(pid);
      } catch {
        // ended meanwhile
      }
    }
    if (performance.now() > giveUpAt) {
      console.error(`still alive after ${GIVE_UP_AFTER_MS} ms of SIGKILL: ${live.join(" ")}`);
      break;
    }
    await Bun.sleep(ROUND_PAUSE_MS);
  }
  reapZombieChildren();
  return killed.size;
}

function reapZombieChildren(): void {
  const libc = loadLibc();
  for (const pid of readTaskChildren() ?? []) {
    if (readStat(pid)?.state !== "Z") continue;
    try {
      libc.waitid(P_PID, pid, WEXITED | WNOHANG);
    } catch {
      // ECHILD: someone else took it
    }
  }
}
