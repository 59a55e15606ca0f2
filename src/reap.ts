/**
 * The reap primitive: take the exit status of exactly one process instance,
 * by its PID, never with waitpid(-1). Also the cheap "is it waitable?" peek
 * (waitid with WNOWAIT), which reads no /proc file and takes nothing.
 */
import { hasErrnoCode } from "./errno.ts";
import {
  CLD_DUMPED,
  CLD_EXITED,
  P_ALL,
  P_PID,
  P_PIDFD,
  WEXITED,
  WNOHANG,
  WNOWAIT,
  type Libc,
  type WaitResult,
} from "./libc.ts";
import { readStat, type ProcStat } from "./procfs.ts";

export interface ExitStatus {
  /** The exit code, or null when a signal ended the process. */
  readonly exitCode: number | null;
  readonly signal: number | null;
  readonly coreDumped: boolean;
}

export type ReapOutcome =
  | { readonly kind: "reaped"; readonly exit: ExitStatus }
  /** The leader exited but other threads live: not waitable yet, retry. */
  | { readonly kind: "not-yet" }
  /** No longer our zombie of that instance (reaped elsewhere, or the PID is another process). */
  | { readonly kind: "gone"; readonly why: string };

export function exitStatusOf(wait: WaitResult): ExitStatus {
  const exited = wait.code === CLD_EXITED;
  return {
    exitCode: exited ? wait.status : null,
    signal: exited ? null : wait.status,
    coreDumped: wait.code === CLD_DUMPED,
  };
}

/** Decodes a raw wait status (as the proc connector reports it: 768 = exit(3)). */
export function exitStatusOfWaitStatus(status: number): ExitStatus {
  const signal = status & 0x7f;
  return signal === 0
    ? { exitCode: (status >> 8) & 0xff, signal: null, coreDumped: false }
    : { exitCode: null, signal, coreDumped: (status & 0x80) !== 0 };
}

const PEEK = WEXITED | WNOHANG | WNOWAIT;

/** A child of ours that is waitable now (the kernel names the first it finds), or 0; one syscall, takes nothing. */
export function peekWaitableChild(libc: Libc): number {
  try {
    return libc.waitid(P_ALL, 0, PEEK).pid;
  } catch (error) {
    if (hasErrnoCode(error, "ECHILD")) return 0;
    throw error;
  }
}

/** True when `pid` is a child of ours that is waitable now, peeked through its pidfd when given; takes nothing. */
export function isChildWaitable(libc: Libc, pid: number, pidfd?: number): boolean {
  try {
    return (pidfd === undefined ? libc.waitid(P_PID, pid, PEEK) : libc.waitid(P_PIDFD, pidfd, PEEK)).pid === pid;
  } catch (error) {
    if (hasErrnoCode(error, "ECHILD", "EINTR")) return false;
    throw error;
  }
}

/** A waitable zombie child of ours, pinned: its pidfd names exactly the process its stat describes. */
export interface PinnedZombie {
  readonly stat: ProcStat;
  /** Undefined before Linux 5.3 (no pidfd_open). */
  readonly pidfd: number | undefined;
}

/**
 * Pins `pid` if it is a waitable zombie child of ours, else returns undefined
 * and leaves nothing open. The pidfd is opened first, the stat read second,
 * and the pidfd peeked third: the process was unreaped all along, so its PID
 * could not change hands and the stat is its own. The caller releases it.
 */
export function pinZombie(libc: Libc, selfPid: number, pid: number): PinnedZombie | undefined {
  let pidfd: number | undefined;
  try {
    pidfd = libc.pidfdOpen(pid);
  } catch (error) {
    if (hasErrnoCode(error, "ESRCH")) return undefined;
    if (!hasErrnoCode(error, "ENOSYS")) throw error;
  }
  let pinned: PinnedZombie | undefined;
  try {
    const stat = readStat(pid);
    if (stat?.state === "Z" && stat.ppid === selfPid && isChildWaitable(libc, pid, pidfd)) pinned = { stat, pidfd };
    return pinned;
  } finally {
    if (!pinned && pidfd !== undefined) libc.close(pidfd);
  }
}

export function releaseZombie(libc: Libc, zombie: PinnedZombie): void {
  if (zombie.pidfd !== undefined) libc.close(zombie.pidfd);
}

/** Why a freshly read stat no longer matches the judged zombie, or undefined. */
function mismatch(judged: ProcStat, now: ProcStat | undefined, selfPid: number): string | undefined {
  if (!now) return "exited and was reaped";
  if (now.startTime !== judged.startTime) return "PID now names another process";
  if (now.ppid !== selfPid) return "no longer our child";
  if (now.state !== "Z") return "not a zombie";
  return undefined;
}

/**
 * Reaps the pinned zombie, and only that instance: waitid through its pidfd
 * cannot take another process, even if the PID was freed and reused since.
 * Callers have already checked that the runtime does not hold a pidfd on it.
 * Before Linux 5.3 (no pidfd) the stat is checked again first: a PID cannot
 * be reused until its zombie is reaped, so stat then waitid(P_PID) is safe.
 */
export function reapZombie(libc: Libc, selfPid: number, zombie: PinnedZombie): ReapOutcome {
  const { stat, pidfd } = zombie;
  try {
    const why = pidfd === undefined ? mismatch(stat, readStat(stat.pid), selfPid) : undefined;
    if (why) return { kind: "gone", why };
    const wait =
      pidfd === undefined ? libc.waitid(P_PID, stat.pid, WEXITED | WNOHANG) : libc.waitid(P_PIDFD, pidfd, WEXITED | WNOHANG);
    if (wait.pid === 0) return { kind: "not-yet" };
    return { kind: "reaped", exit: exitStatusOf(wait) };
  } catch (error) {
    if (hasErrnoCode(error, "ECHILD")) return { kind: "gone", why: "reaped by another waiter" };
    if (hasErrnoCode(error, "EINTR")) return { kind: "not-yet" };
    throw error;
  }
}
