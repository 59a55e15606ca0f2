/**
 * The runtime's mark on its own children: Bun holds a pidfd on every child it
 * spawns until it has reaped it (on Node, src/runtime/child-pidfds.ts makes
 * this process do the same), so a zombie on which this process holds a
 * pidfd belongs to the runtime and must never be reaped (Bun dies of ECHILD
 * if it is). Where the probe shows the mark is reliable, a zombie child
 * without it is an adopted orphan.
 *
 * A pidfd polls readable once its process has exited with no live threads,
 * the same condition that makes it waitable. So for waitable zombies one
 * poll(2) over the fd table leaves a handful of candidate fds, and each is
 * asked with one waitid(P_PIDFD, WNOWAIT) which waitable child it names (a
 * non-pidfd answers nothing): no /proc read, however many fds there are.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { hasErrnoCode } from "./errno.ts";
import type { Libc } from "./libc.ts";
import { forEachChunked, listOwnFds, PIDFD_LINK, readFdLink, readFdTableSize, readPidfdTarget } from "./procfs.ts";
import { childrenWithoutPidfd } from "./runtime/index.ts";

/** What the caller knows of the PIDs it asks about (see runtimeHoldsPidfd). */
export type PidScope = "any" | "waitable zombies";

export interface RuntimePidfdProbe {
  readonly holds: boolean;
  readonly reason: string;
}

/**
 * Which of `pids` this process holds a pidfd on, now (or, on Node, knows as
 * its own child although pidfd_open failed for it). With "waitable
 * zombies" the caller peeked (waitid WNOWAIT) that each was waitable, so only
 * fds that poll readable are looked at. `ownPidfds` are the caller's, not the
 * runtime's. Looks yield between chunks of fds: safe, since only a new spawn
 * opens a pidfd and a new child is never among the zombies asked about.
 */
export async function runtimeHoldsPidfd(
  libc: Libc,
  pids: readonly number[],
  scope: PidScope = "any",
  ownPidfds: ReadonlySet<number> = new Set(),
): Promise<Set<number>> {
  const held = new Set<number>();
  if (pids.length === 0) return held;
  const unmarked = childrenWithoutPidfd();
  for (const pid of pids) if (unmarked.has(pid)) held.add(pid);
  const wanted = new Set(pids);
  if (scope === "waitable zombies") {
    for (const fd of readableFds(libc)) {
      const pid = ownPidfds.has(fd) ? 0 : libc.waitablePidOfFd(fd);
      if (wanted.has(pid)) held.add(pid);
    }
    return held;
  }
  await forEachChunked(listOwnFds(), (fd) => {
    const pid = readFdLink(fd) === PIDFD_LINK ? readPidfdTarget(fd) : undefined;
    if (pid !== undefined && wanted.has(pid)) held.add(pid);
  });
  return held;
}

function readableFds(libc: Libc): number[] {
  const tableSize = readFdTableSize();
  if (tableSize === undefined) return listOwnFds();
  try {
    return libc.readableFdsBelow(tableSize);
  } catch (error) {
    // poll refuses more fds than RLIMIT_NOFILE, and the table (grown in powers
    // of two) can be larger than a limit that is not one, or was lowered.
    if (hasErrnoCode(error, "EINVAL")) return listOwnFds();
    throw error;
  }
}

/** A child that waits for its stdin to close: this runtime's own binary, so PATH does not matter. */
function spawnProbeChild(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["-e", "process.stdin.resume()"], { stdio: ["pipe", "ignore", "ignore"] });
  return new Promise((resolve, reject) => {
    child.once("spawn", () => resolve(child));
    child.once("error", reject);
  });
}

/** Spawns a child and checks that the runtime holds a pidfd on it exactly until it has reaped it. */
export async function probeRuntimePidfds(libc: Libc): Promise<RuntimePidfdProbe> {
  let child: ChildProcess;
  try {
    child = await spawnProbeChild();
  } catch (err) {
    return { holds: false, reason: `could not spawn a probe child: ${String(err)}` };
  }
  const pid = child.pid!;
  const exited = once(child, "exit");
  const heldWhileRunning = (await runtimeHoldsPidfd(libc, [pid])).has(pid);
  child.kill("SIGKILL");
  await exited;
  const heldAfterReap = (await runtimeHoldsPidfd(libc, [pid])).has(pid);
  if (!heldWhileRunning) return { holds: false, reason: "the runtime holds no pidfd on a child it spawned" };
  if (heldAfterReap) return { holds: false, reason: "the runtime kept a pidfd after reaping its child" };
  return { holds: true, reason: "the runtime holds a pidfd on each child until it reaps it" };
}
