/**
 * The runtime's mark on its own children: Bun holds a pidfd on every child it
 * spawns until it has reaped it (on Node, src/runtime/child-pidfds.ts makes
 * this process do the same), so a zombie on which this process holds a
 * pidfd belongs to the runtime and must never be reaped (Bun dies of ECHILD
 * if it is). Where the probe shows the mark is reliable, a zombie child
 * without it is an adopted orphan.
 */
import { availableParallelism, cpus } from "node:os";
import { hasErrnoCode } from "./errno.ts";
import type { Libc } from "./libc.ts";
import {
  forEachChunked,
  freePidsNow,
  LastPidCounter,
  listOwnFds,
  PIDFD_LINK,
  readFdLink,
  readFdTableSize,
  readPidfdTarget,
  whyProcIsNotOurs,
  type ProcStat,
} from "./procfs.ts";
import {
  childrenBeforeMarking,
  childrenWithoutPidfd,
  forgetChildrenBeforeMarkingExcept,
  isChildFromBeforeMarking,
  listedRuntimeChildren,
} from "./runtime/index.ts";

const NO_FDS: ReadonlySet<number> = new Set();

/**
 * Which of `pids` this process holds a pidfd on, now (or, on Node, knows as
 * its own child although pidfd_open failed for it). Reads each fd's link and
 * fdinfo, yielding between chunks: safe, since only a new spawn opens a
 * pidfd and a new child is never among the PIDs asked about. For zombies
 * just peeked waitable, RuntimePidfdLook is the cheap way.
 */
export async function runtimeHoldsPidfd(pids: readonly number[]): Promise<Set<number>> {
  const held = unmarkedAmong(pids);
  const wanted = new Set(pids);
  await forEachChunked(listOwnFds(), (fd) => {
    const pid = readFdLink(fd) === PIDFD_LINK ? readPidfdTarget(fd) : undefined;
    if (pid !== undefined && wanted.has(pid)) held.add(pid);
  });
  return held;
}

/** Node's children the mark could not be put on (pidfd_open failed): the runtime's all the same. */
function unmarkedAmong(pids: readonly number[]): Set<number> {
  const unmarked = childrenWithoutPidfd();
  return new Set(pids.filter((pid) => unmarked.has(pid)));
}

/** Up to this many fds, listing them costs less than reading the fd table's size and polling all of it. */
const FEW_FDS = 256;

/**
 * Learning asks each fd (a waitid) and reads each pidfd's fdinfo (an open, a
 * read and a close): after one over N fds the next waits N times this, so
 * where PIDs move all the time it costs about one fd per millisecond at most.
 */
const LEARN_WAIT_MS_PER_FD = 1;

/**
 * Less CPU time than any machine spends making a task (a clone), in ms: a
 * whole round of PIDs takes at least this per free PID, spread over every
 * CPU. Thread creation measures in the tens of microseconds.
 */
const MIN_CPU_MS_PER_NEW_PID = 0.001;

/**
 * The runtime-pidfd look for zombies the caller just peeked waitable. An fd
 * is asked with one waitid(P_PIDFD, WNOWAIT) which waitable child it names
 * (any other fd answers nothing). A pidfd polls readable once its process is
 * waitable, so one poll(2) leaves the few fds to ask: over the fds listed
 * where there are few, over the whole fd table where there are many (2000
 * live children: 2000 pidfds), with no listing.
 * While the PID namespace's last PID does not move, no pidfd can be new: a
 * runtime opens it on a child in the step that spawns it, and a spawn takes
 * a new PID (ns_last_pid would have to come round to the same value between
 * two looks: a wrap of the whole PID space, or a write of ns_last_pid, as
 * CRIU does). So at a second look with no new PID the look learns which PID each
 * pidfd names (fdinfo; fixed while the fd is open), and until a new PID comes
 * it polls nothing and asks only an fd that names the PID looked for (that
 * fd may have been closed since). The last PID can come round to its value
 * unseen (measured: a spawnSync child that used up the PID space, then a
 * spawn, crashed Bun with ECHILD): so what was learned answers only while
 * every look since the learning saw the same last PID, each sooner after the
 * one before than a whole round of the free PIDs could take; else it is
 * dropped and the look polls. Learning reads every fd, so where PIDs move
 * all the time (a container making processes) it waits LEARN_WAIT_MS_PER_FD
 * per fd it last read. Not where /proc shows another PID namespace's PIDs
 * (`unshare -p` without --mount-proc): fdinfo's would not be ours; nor where
 * ns_last_pid cannot be read. Where this process lists the runtime's
 * children itself (Node), the list answers, no fd; and the children that
 * were there before it began to (which carry no mark, whoever forked them)
 * are listed beside it, so that the mark rule is not applied to them.
 */
export class RuntimePidfdLook {
  readonly #libc: Libc;
  readonly #listed = listedRuntimeChildren();
  /** Children there before marking began (Node: before the wrapper went on), by PID: their start time. */
  readonly #beforeMarking = childrenBeforeMarking();
  readonly #lastPid: LastPidCounter | undefined;
  /** fdinfo's PIDs are ours to compare with. */
  readonly #learnsTargets: boolean;
  /** The namespace's last PID at the previous look. */
  #lastPidAtLook: number | undefined;
  /** The pidfds and the PID each names (same index), learned when the last PID was #lastPidAtLearning. */
  #pidfds: number[] = [];
  #targets: number[] | undefined;
  #lastPidAtLearning: number | undefined;
  /** How soon after the look before a look must come for what was learned to answer (no round of PIDs fits in between). */
  #trustedForMs = 0;
  /** When the previous look was made (performance.now()). */
  #lookedAt = -Infinity;
  /** Every CPU a task could be made on, counted at the first learning (os.cpus() reads /proc each time). */
  #cpuCount: number | undefined;
  /** No learning before this (performance.now()). */
  #nextLearningAt = -Infinity;
  #pollsWholeTable = true;
  /** How many fds the last listing found. */
  #fdsListed = 0;
  readonly #named: number[] = [];

  constructor(libc: Libc) {
    this.#libc = libc;
    this.#lastPid = this.#listed ? undefined : LastPidCounter.open(libc);
    // fdinfo's "Pid:" is in /proc's PID namespace: learned targets are ours only where it is ours.
    this.#learnsTargets = this.#lastPid !== undefined && whyProcIsNotOurs(libc.getpid()) === undefined;
  }

  /** Which of `pids` (waitable zombies) the runtime holds a pidfd on; `ownPidfds` are the caller's pins, not the runtime's. */
  heldAmong(pids: readonly number[], ownPidfds: ReadonlySet<number> = NO_FDS): Set<number> {
    const listed = this.#listed;
    if (listed) return new Set(pids.filter((pid) => listed.has(pid)));
    const targets = this.#currentTargets();
    const named = targets ? this.#namedByTargets(targets, pids, ownPidfds) : this.#namedAmongReadable(ownPidfds);
    return new Set(pids.filter((pid) => named.includes(pid)));
  }

  /** heldAmong for one zombie, with no pins of the caller's: the per-exit path. */
  holds(pid: number): boolean {
    if (this.#listed) return this.#listed.has(pid);
    const targets = this.#currentTargets();
    if (!targets) return this.#namedAmongReadable(NO_FDS).includes(pid);
    // The usual case: nothing polled, and an fd asked only if it names this PID.
    for (let i = 0; i < targets.length; i++) if (targets[i] === pid && this.#libc.waitablePidOfFd(this.#pidfds[i]!) === pid) return true;
    return false;
  }

  /**
   * Whether `pid` may be a child that was there before marking began, whose
   * missing mark proves nothing: one Map lookup, for the per-exit path.
   */
  mayPredateMarking(pid: number): boolean {
    return this.#beforeMarking.has(pid);
  }

  /** The same, exactly: the same process by its start time, read only for a PID listed; a PID that changed hands since is dropped. */
  predatesMarking(pid: number, stat: () => ProcStat | undefined): boolean {
    return this.#beforeMarking.has(pid) && isChildFromBeforeMarking(pid, stat()?.startTime);
  }

  /** Forgets the children from before marking that are no longer among `children` (the main thread's, listed): they were reaped. */
  forgetExcept(children: ReadonlySet<number>): void {
    forgetChildrenBeforeMarkingExcept(children);
  }

  /** What each pidfd names, where no PID is new since that was learned; learned now at a second look with no new PID. */
  #currentTargets(): readonly number[] | undefined {
    // Where fdinfo's PIDs are not ours nothing is learned: the last PID need not be read.
    if (!this.#learnsTargets) return undefined;
    const lastPid = this.#lastPid?.read();
    const previous = this.#lastPidAtLook;
    const now = performance.now();
    const sinceLook = now - this.#lookedAt;
    this.#lastPidAtLook = lastPid;
    this.#lookedAt = now;
    if (lastPid === undefined) return undefined;
    if (this.#targets && lastPid === this.#lastPidAtLearning && sinceLook < this.#trustedForMs) return this.#targets;
    this.#targets = undefined;
    if (lastPid !== previous || now < this.#nextLearningAt) return undefined;
    this.#learnTargets(lastPid);
    return this.#targets;
  }

  /** Which of `asked` the pidfds that name them name as waitable children now (one array, reused). */
  #namedByTargets(targets: readonly number[], asked: readonly number[], ownPidfds: ReadonlySet<number>): readonly number[] {
    this.#named.length = 0;
    for (let i = 0; i < targets.length; i++) {
      const fd = this.#pidfds[i]!;
      if (!asked.includes(targets[i]!) || ownPidfds.has(fd)) continue;
      const pid = this.#libc.waitablePidOfFd(fd);
      if (pid > 0) this.#named.push(pid);
    }
    return this.#named;
  }

  /** The waitable children that the readable fds name (one array, reused). */
  #namedAmongReadable(ownPidfds: ReadonlySet<number>): readonly number[] {
    this.#named.length = 0;
    for (const fd of this.#readableFds()) {
      if (ownPidfds.has(fd)) continue;
      const pid = this.#libc.waitablePidOfFd(fd);
      if (pid > 0) this.#named.push(pid);
    }
    return this.#named;
  }

  /**
   * One poll(2): over the listed fds while the last listing found few, else
   * over the whole fd table (its size read from /proc/self/status), which
   * costs the same however many fds there are; listed where it cannot be read
   * or is larger than RLIMIT_NOFILE.
   */
  #readableFds(): number[] {
    const size = this.#fdsListed > FEW_FDS && this.#pollsWholeTable ? readFdTableSize() : undefined;
    if (size === undefined) return this.#libc.readableAmong(this.#listFds());
    try {
      return this.#libc.readableBelow(size);
    } catch (error) {
      // poll refuses more fds than RLIMIT_NOFILE, and the table (grown in powers
      // of two, never shrunk) can be larger than a limit that is not one, or was lowered.
      if (!hasErrnoCode(error, "EINVAL")) throw error;
      this.#pollsWholeTable = false;
      return this.#libc.readableAmong(this.#listFds());
    }
  }

  #listFds(): number[] {
    const fds = listOwnFds();
    this.#fdsListed = fds.length;
    return fds;
  }

  /** What each pidfd names (fdinfo); an fd with no PID there is none, or closed since. */
  #learnTargets(lastPid: number): void {
    const freePids = freePidsNow();
    if (!freePids) return;
    this.#cpuCount ??= Math.max(cpus().length, availableParallelism());
    this.#trustedForMs = (freePids * MIN_CPU_MS_PER_NEW_PID) / this.#cpuCount;
    const pidfds: number[] = [];
    const targets: number[] = [];
    const fds = this.#listFds();
    for (const fd of fds) {
      // One waitid tells any other fd (EBADF) for less than reading its fdinfo.
      if (this.#libc.waitablePidOfFd(fd) === -1) continue;
      const target = readPidfdTarget(fd);
      if (target === undefined) continue;
      pidfds.push(fd);
      targets.push(target);
    }
    this.#pidfds = pidfds;
    this.#targets = targets;
    this.#lastPidAtLearning = lastPid;
    this.#nextLearningAt = performance.now() + fds.length * LEARN_WAIT_MS_PER_FD;
  }

  close(): void {
    this.#lastPid?.close();
  }
}
