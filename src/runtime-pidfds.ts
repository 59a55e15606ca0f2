/**
 * The runtime's mark on its own children: Bun holds a pidfd on every child it
 * spawns until it has reaped it, so a zombie on which this process holds a
 * pidfd belongs to the runtime and must never be reaped (Bun dies of ECHILD
 * if it is). Where the probe shows the mark is reliable, a zombie child
 * without it is an adopted orphan.
 *
 * Finding them could cost one look at every open fd; two things make it
 * cheap. A pidfd polls readable once its process has exited and has no live
 * threads, so for waitable zombies one poll(2) over the fd table leaves a
 * handful of candidates. And on pidfs (Linux 6.9+) all pidfds of one process
 * share one inode whose number is never reused, so one fstat per candidate,
 * compared with the zombie's inode, answers exactly, with no /proc read.
 * Before pidfs every pidfd (and eventfd, timerfd, ...) is the one anon inode:
 * each candidate's link and fdinfo are read.
 */
import { hasErrnoCode } from "./errno.ts";
import type { FileIdentity, Libc } from "./libc.ts";
import { forEachChunked, listOwnFds, PIDFD_LINK, readFdLink, readFdTableSize, readPidfdTarget } from "./procfs.ts";

// <linux/magic.h>
const PIDFS_MAGIC = 0x50494446;

export type PidfdLookup = "pidfs" | "fdinfo";
/** What the caller knows of the PIDs it asks about (see heldAmong). */
export type PidScope = "any" | "waitable zombies";

export interface RuntimePidfdProbe {
  readonly holds: boolean;
  readonly reason: string;
  /** How pidfds are matched: by pidfs inode with one fstat per fd, or by every fd's link and fdinfo. */
  readonly lookup: PidfdLookup;
}

export class PidfdIndex {
  readonly #libc: Libc;
  /** The device of pidfs, or undefined before Linux 6.9 (pidfds on the anon inode). */
  readonly #pidfsDev: bigint | undefined;

  /** `lookup` "fdinfo" forces the pre-pidfs way (tests compare the two). */
  constructor(libc: Libc, lookup: PidfdLookup | "auto" = "auto") {
    this.#libc = libc;
    this.#pidfsDev = lookup === "fdinfo" ? undefined : findPidfsDevice(libc);
    if (lookup === "pidfs" && this.#pidfsDev === undefined) throw new Error("pidfds are not on pidfs here (Linux 6.9+)");
  }

  get lookup(): PidfdLookup {
    return this.#pidfsDev === undefined ? "fdinfo" : "pidfs";
  }

  /**
   * Which of `pids` this process holds a pidfd on, now. With "waitable
   * zombies" the caller peeked (waitid WNOWAIT) that each was waitable, so
   * only fds that poll readable are looked at: a pidfd on a process that has
   * exited with no live threads left stays readable until the fd is closed.
   * Looks yield between chunks of fds: safe, since only a new spawn opens a
   * pidfd and a new child is never among the zombies asked about.
   */
  heldAmong(pids: readonly number[], scope: PidScope = "any"): Promise<Set<number>> {
    if (pids.length === 0) return Promise.resolve(new Set());
    const fds = scope === "waitable zombies" ? this.#readableFds() : listOwnFds();
    return this.#pidfsDev === undefined ? this.#heldByFdinfo(pids, fds) : this.#heldByInode(pids, fds, this.#pidfsDev);
  }

  #readableFds(): number[] {
    const tableSize = readFdTableSize();
    if (tableSize === undefined) return listOwnFds();
    try {
      return this.#libc.readableFdsBelow(tableSize);
    } catch (error) {
      // poll refuses more fds than RLIMIT_NOFILE, which may have been lowered below the table's size.
      if (hasErrnoCode(error, "EINVAL")) return listOwnFds();
      throw error;
    }
  }

  async #heldByFdinfo(pids: readonly number[], fds: readonly number[]): Promise<Set<number>> {
    const wanted = new Set(pids);
    const held = new Set<number>();
    await forEachChunked(fds, (fd) => {
      const pid = readFdLink(fd) === PIDFD_LINK ? readPidfdTarget(fd) : undefined;
      if (pid !== undefined && wanted.has(pid)) held.add(pid);
    });
    return held;
  }

  async #heldByInode(pids: readonly number[], fds: readonly number[], pidfsDev: bigint): Promise<Set<number>> {
    // The inode names the process instance: a pidfd kept on a reaped process
    // whose PID was reused does not match. Ours are closed before the look.
    const pidByInode = new Map<bigint, number>();
    for (const pid of pids) {
      const ino = this.#inodeOf(pid);
      if (ino !== undefined) pidByInode.set(ino, pid);
    }
    const held = new Set<number>();
    if (pidByInode.size === 0) return held;
    await forEachChunked(fds, (fd) => {
      const identity = this.#identityOf(fd);
      const pid = identity?.dev === pidfsDev ? pidByInode.get(identity.ino) : undefined;
      if (pid !== undefined) held.add(pid);
    });
    return held;
  }

  /** The pidfs inode of process `pid`, or undefined once it is reaped. */
  #inodeOf(pid: number): bigint | undefined {
    let fd: number;
    try {
      fd = this.#libc.pidfdOpen(pid);
    } catch (error) {
      if (hasErrnoCode(error, "ESRCH")) return undefined;
      throw error;
    }
    try {
      return this.#libc.fileIdentity(fd).ino;
    } finally {
      this.#libc.close(fd);
    }
  }

  #identityOf(fd: number): FileIdentity | undefined {
    try {
      return this.#libc.fileIdentity(fd);
    } catch (error) {
      if (hasErrnoCode(error, "EBADF")) return undefined; // closed since the listing
      throw error;
    }
  }
}

/** pidfs's device, from a pidfd on ourselves; undefined where pidfds are not on pidfs. */
function findPidfsDevice(libc: Libc): bigint | undefined {
  let fd: number | undefined;
  try {
    fd = libc.pidfdOpen(libc.getpid());
    return libc.filesystemType(fd) === PIDFS_MAGIC ? libc.fileIdentity(fd).dev : undefined;
  } catch {
    return undefined; // no pidfd_open, or no fstat syscall number for this architecture
  } finally {
    if (fd !== undefined) libc.close(fd);
  }
}

// One per process: fds, and so pidfds, are process-wide.
let index: PidfdIndex | undefined;

/** Which of `pids` this process holds a pidfd on, now: those zombies are the runtime's. */
export function runtimeHoldsPidfd(libc: Libc, pids: readonly number[], scope: PidScope = "any"): Promise<Set<number>> {
  index ??= new PidfdIndex(libc);
  return index.heldAmong(pids, scope);
}

/** Spawns a child and checks that the runtime holds a pidfd on it exactly until it has reaped it. */
export async function probeRuntimePidfds(libc: Libc): Promise<RuntimePidfdProbe> {
  index ??= new PidfdIndex(libc);
  const { lookup } = index;
  let child: ReturnType<typeof Bun.spawn>;
  try {
    child = Bun.spawn(["sleep", "30"], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  } catch (err) {
    return { holds: false, lookup, reason: `could not spawn a probe child: ${String(err)}` };
  }
  const heldWhileRunning = (await runtimeHoldsPidfd(libc, [child.pid])).has(child.pid);
  child.kill("SIGKILL");
  await child.exited;
  const heldAfterReap = (await runtimeHoldsPidfd(libc, [child.pid])).has(child.pid);
  if (!heldWhileRunning) return { holds: false, lookup, reason: "the runtime holds no pidfd on a child it spawned" };
  if (heldAfterReap) return { holds: false, lookup, reason: "the runtime kept a pidfd after reaping its child" };
  return { holds: true, lookup, reason: "the runtime holds a pidfd on each child until it reaps it" };
}
