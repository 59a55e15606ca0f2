/**
 * The reap primitive: pin one zombie child by its PID, then take the exit
 * status of exactly that process, never with waitpid(-1). Every waitid here
 * carries __WNOTHREAD: only children of the calling thread, the main thread,
 * where the kernel reparents orphans; a Worker's children are never touched.
 */
import { hasErrnoCode } from "./errno.ts";
import {
  __WNOTHREAD,
  CLD_DUMPED,
  CLD_EXITED,
  P_ALL,
  P_PID,
  P_PIDFD,
  WEXITED,
  WNOHANG,
  WNOWAIT,
  type Libc,
} from "./libc.ts";
import { readStat } from "./procfs.ts";

export interface ExitStatus {
  /** The exit code, or null when a signal ended the process. */
  readonly exitCode: number | null;
  readonly signal: number | null;
  readonly coreDumped: boolean;
}

/**
 * A zombie reaped: its exit status and, where someone wanted it, its comm
 * (read before the reap: /proc forgets the process with it). One object per
 * reap, made where the status is read: a reap runs once per exit, cold.
 */
export interface ReapedZombie extends ExitStatus {
  readonly kind: "reaped";
  readonly comm: string | undefined;
}

export type ReapOutcome =
  | ReapedZombie
  /** The leader exited but other threads live: not waitable yet, retry. */
  | { readonly kind: "not-yet" }
  /** No longer our zombie (reaped by another waiter). */
  | { readonly kind: "gone" };

const PEEK = WEXITED | WNOHANG | WNOWAIT | __WNOTHREAD;
const REAP = WEXITED | WNOHANG | __WNOTHREAD;

/** A waitable child of the main thread (the kernel names the first it finds), or 0; one syscall, takes nothing. */
export function peekWaitableChild(libc: Libc): number {
  try {
    return libc.waitid(P_ALL, 0, PEEK).pid;
  } catch (error) {
    if (hasErrnoCode(error, "ECHILD")) return 0;
    throw error;
  }
}

/** What a child of the main thread is, asked without taking anything: "none" when it is not one (gone, or another thread's). */
function peekChild(libc: Libc, pid: number, pidfd?: number): "waitable" | "running" | "none" {
  try {
    const named = (pidfd === undefined ? libc.waitid(P_PID, pid, PEEK) : libc.waitid(P_PIDFD, pidfd, PEEK)).pid;
    return named === pid ? "waitable" : "running";
  } catch (error) {
    if (hasErrnoCode(error, "ECHILD", "EINTR")) return "none";
    throw error;
  }
}

/** True when `pid` is a child of the main thread that is waitable now, peeked through its pidfd when given; takes nothing. */
export function isChildWaitable(libc: Libc, pid: number, pidfd?: number): boolean {
  return peekChild(libc, pid, pidfd) === "waitable";
}

/** True when `pid` is a child of the main thread that has not exited (stopped counts as running). */
export function isChildRunning(libc: Libc, pid: number): boolean {
  return peekChild(libc, pid) === "running";
}

/** A waitable zombie child of ours, pinned: its pidfd names exactly this process until it is reaped. */
export interface PinnedZombie {
  readonly pid: number;
  /** Undefined where there are no pidfds (before Linux 5.3, or denied by seccomp). */
  readonly pidfd: number | undefined;
  /** Without a pidfd: the start time that names this instance, checked again right before the reap. */
  readonly startTime?: number;
}

/**
 * A pidfd on `pid`, or why not: the process is gone (reaped), or there are
 * no pidfds here: the kernel predates pidfd_open (ENOSYS), or a seccomp
 * profile denies it (EPERM, which pidfd_open itself never returns: Docker's
 * default profile before 20.10).
 */
function openPidfd(libc: Libc, pid: number): number | "gone" | "unsupported" {
  try {
    return libc.pidfdOpen(pid);
  } catch (error) {
    if (hasErrnoCode(error, "ESRCH")) return "gone";
    if (hasErrnoCode(error, "ENOSYS", "EPERM")) return "unsupported";
    throw error;
  }
}

/**
 * Pins `pid` if it is a waitable zombie child of the main thread, else
 * returns undefined and leaves nothing open. The pidfd is opened first and
 * peeked second, so what was found waitable is the pidfd's own process.
 * Without pidfds the stat is checked instead: a PID cannot be reused until
 * its zombie is reaped, and only we reap adopted ones. The caller releases it.
 */
export function pinZombie(libc: Libc, selfPid: number, pid: number): PinnedZombie | undefined {
  const opened = openPidfd(libc, pid);
  if (opened === "gone") return undefined;
  const pidfd = opened === "unsupported" ? undefined : opened;
  let pinned: PinnedZombie | undefined;
  try {
    const startTime = pidfd === undefined ? zombieChildStartTime(selfPid, pid) : undefined;
    const ours = pidfd !== undefined || startTime !== undefined;
    if (ours && isChildWaitable(libc, pid, pidfd)) pinned = { pid, pidfd, startTime };
    return pinned;
  } finally {
    if (!pinned && pidfd !== undefined) libc.close(pidfd);
  }
}

/** The start time of `pid` if it is a zombie child of `selfPid` now. */
function zombieChildStartTime(selfPid: number, pid: number): number | undefined {
  const stat = readStat(pid);
  return stat?.state === "Z" && stat.ppid === selfPid ? stat.startTime : undefined;
}

/** Pins each of `pids` that is a waitable zombie of ours; on a throw, releases what it had pinned. */
export function pinZombies(libc: Libc, selfPid: number, pids: Iterable<number>): PinnedZombie[] {
  const pinned: PinnedZombie[] = [];
  try {
    for (const pid of pids) {
      const zombie = pinZombie(libc, selfPid, pid);
      if (zombie) pinned.push(zombie);
    }
    return pinned;
  } catch (error) {
    releaseZombies(libc, pinned);
    throw error;
  }
}

export function releaseZombies(libc: Libc, zombies: readonly PinnedZombie[]): void {
  for (const { pidfd } of zombies) if (pidfd !== undefined) libc.close(pidfd);
}

/**
 * Reaps the pinned zombie, and only that process: waitid through its pidfd
 * cannot take another, even if the PID was freed and reused since. Without
 * pidfds, the stat is checked again and waitid(P_PID) follows in the same
 * synchronous step. Callers have judged that the runtime does not own it.
 */
export function reapZombie(libc: Libc, selfPid: number, zombie: PinnedZombie, comm?: string): ReapOutcome {
  const { pid, pidfd, startTime } = zombie;
  // No pidfd: the zombie may have been reaped and its PID reused since the pin.
  if (pidfd === undefined && zombieChildStartTime(selfPid, pid) !== startTime) return GONE;
  return pidfd === undefined ? reapChild(libc, P_PID, pid, comm) : reapChild(libc, P_PIDFD, pidfd, comm);
}

// The outcomes that carry nothing, made once: a reap runs once per exit.
const NOT_YET: ReapOutcome = { kind: "not-yet" };
const GONE: ReapOutcome = { kind: "gone" };

/**
 * Takes the exit status of the one waitable child of the main thread that
 * `id` names (a PID, or a pidfd). By PID, the caller must know that PID
 * still names the zombie it means (src/adopted.ts, reapZombie).
 */
export function reapChild(libc: Libc, idType: typeof P_PID | typeof P_PIDFD, id: number, comm: string | undefined): ReapOutcome {
  try {
    const wait = libc.waitid(idType, id, REAP);
    if (wait.pid === 0) return NOT_YET;
    const exited = wait.code === CLD_EXITED;
    return { kind: "reaped", exitCode: exited ? wait.status : null, signal: exited ? null : wait.status, coreDumped: wait.code === CLD_DUMPED, comm };
  } catch (error) {
    if (hasErrnoCode(error, "ECHILD")) return GONE;
    if (hasErrnoCode(error, "EINTR")) return NOT_YET;
    throw error;
  }
}
