/**
 * The runtime's mark on its own children: Bun holds a pidfd on every child it
 * spawns until it has reaped it (on Node, src/runtime/child-pidfds.ts makes
 * this process do the same), so a zombie on which this process holds a
 * pidfd belongs to the runtime and must never be reaped (Bun dies of ECHILD
 * if it is). Where the probe shows the mark is reliable, a zombie child
 * without it is an adopted orphan.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import type { Libc } from "./libc.ts";
import { forEachChunked, LastPidCounter, listOwnFds, PIDFD_LINK, procShowsOwnPids, readFdLink, readPidfdTarget } from "./procfs.ts";
import { childrenWithoutPidfd, listedRuntimeChildren } from "./runtime/index.ts";

export interface RuntimePidfdProbe {
  readonly holds: boolean;
  readonly reason: string;
}

const NO_FDS: ReadonlySet<number> = new Set();

/** Up to this many fds, asking each costs less than a poll over them first. */
const FEW_FDS = 16;

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

/**
 * The runtime-pidfd look for zombies the caller just peeked waitable. An fd
 * is asked with one waitid(P_PIDFD, WNOWAIT) which waitable child it names
 * (any other fd answers nothing); with many fds, one poll(2) first leaves
 * those that are readable, as a pidfd is once its process is waitable.
 * Listing /proc/self/fd is skipped while the PID namespace's last PID has not
 * moved: a runtime opens the pidfd on a child in the step that spawns it,
 * and a spawn takes a new PID, so with no new PID since the listing no new
 * pidfd exists (ns_last_pid would have to wrap all the way round between two
 * looks), and an fd found to be none is not asked again. The second look at
 * one listing learns which PID each pidfd names (fdinfo; fixed while the fd
 * is open): from then on, a look lists and asks nothing unless a pidfd names
 * the PID looked for, and then asks that fd, which may have been closed since.
 * Not where /proc shows another PID namespace's PIDs (`unshare -p` without
 * --mount-proc): fdinfo's would not be ours. Where ns_last_pid cannot be
 * read, every look lists. Where this process lists the runtime's children
 * itself (Node), the list answers, no fd.
 */
export class RuntimePidfdLook {
  readonly #libc: Libc;
  readonly #listed = listedRuntimeChildren();
  readonly #lastPid: LastPidCounter | undefined;
  /** fdinfo's PIDs are ours to compare with. */
  readonly #learnsTargets: boolean;
  /** The fds that may be pidfds: those listed, less those found to be none since. */
  #fds: number[] = [];
  #lastPidAtListing: number | undefined;
  /** Once learned, the PID each of #fds names (same index), and #fds holds only pidfds. */
  #targets: number[] | undefined;
  readonly #named: number[] = [];
  readonly #notPidfds: number[] = [];

  constructor(libc: Libc) {
    this.#libc = libc;
    this.#lastPid = this.#listed ? undefined : LastPidCounter.open(libc);
    this.#learnsTargets = this.#lastPid !== undefined && procShowsOwnPids(libc.getpid());
  }

  /** Which of `pids` (waitable zombies) the runtime holds a pidfd on; `ownPidfds` are the caller's pins, not the runtime's. */
  heldAmong(pids: readonly number[], ownPidfds: ReadonlySet<number> = NO_FDS): Set<number> {
    const listed = this.#listed;
    if (listed) return new Set(pids.filter((pid) => listed.has(pid)));
    const named = this.#namedByPidfds(pids, ownPidfds, this.#lastPid?.read());
    return new Set(pids.filter((pid) => named.includes(pid)));
  }

  /** heldAmong for one zombie, with no pins of the caller's: the per-exit path. */
  holds(pid: number): boolean {
    if (this.#listed) return this.#listed.has(pid);
    const lastPid = this.#lastPid?.read();
    const targets = this.#targets;
    if (!targets || lastPid !== this.#lastPidAtListing) return this.#namedByPidfds([pid], NO_FDS, lastPid).includes(pid);
    // The usual case: no fd listed, and one asked only if it names this PID.
    for (let i = 0; i < targets.length; i++) if (targets[i] === pid && this.#libc.waitablePidOfFd(this.#fds[i]!) === pid) return true;
    return false;
  }

  /** Which of `asked` the runtime's pidfds name as waitable children now (one array, reused); `lastPid` just read. */
  #namedByPidfds(asked: readonly number[], ownPidfds: ReadonlySet<number>, lastPid: number | undefined): readonly number[] {
    if (lastPid === undefined || lastPid !== this.#lastPidAtListing) {
      this.#fds = listOwnFds();
      this.#lastPidAtListing = lastPid;
      this.#targets = undefined;
    } else if (!this.#targets && this.#learnsTargets) {
      this.#learnTargets();
    }
    const targets = this.#targets;
    const candidates = this.#fds.filter((fd, i) => !ownPidfds.has(fd) && (!targets || asked.includes(targets[i]!)));
    this.#named.length = 0;
    this.#notPidfds.length = 0;
    for (const fd of candidates.length <= FEW_FDS ? candidates : this.#libc.readableAmong(candidates)) {
      const pid = this.#libc.waitablePidOfFd(fd);
      if (pid > 0) this.#named.push(pid);
      else if (pid === -1) this.#notPidfds.push(fd);
    }
    // No fd becomes a pidfd without a new PID (a spawn): until then, an fd that is none is not asked again.
    if (this.#notPidfds.length > 0) {
      this.#fds = this.#fds.filter((fd) => !this.#notPidfds.includes(fd));
      this.#targets = undefined; // learned again, for the fds left
    }
    return this.#named;
  }

  /** What each of #fds names (fdinfo); an fd with no PID there is none, or closed since. */
  #learnTargets(): void {
    const fds: number[] = [];
    const targets: number[] = [];
    for (const fd of this.#fds) {
      const target = readPidfdTarget(fd);
      if (target === undefined) continue;
      fds.push(fd);
      targets.push(target);
    }
    this.#fds = fds;
    this.#targets = targets;
  }

  close(): void {
    this.#lastPid?.close();
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
export async function probeRuntimePidfds(): Promise<RuntimePidfdProbe> {
  let child: ChildProcess;
  try {
    child = await spawnProbeChild();
  } catch (err) {
    return { holds: false, reason: `could not spawn a probe child: ${String(err)}` };
  }
  const pid = child.pid!;
  const exited = once(child, "exit");
  const heldWhileRunning = (await runtimeHoldsPidfd([pid])).has(pid);
  child.kill("SIGKILL");
  await exited;
  const heldAfterReap = (await runtimeHoldsPidfd([pid])).has(pid);
  if (!heldWhileRunning) return { holds: false, reason: "the runtime holds no pidfd on a child it spawned" };
  if (heldAfterReap) return { holds: false, reason: "the runtime kept a pidfd after reaping its child" };
  return { holds: true, reason: "the runtime holds a pidfd on each child until it reaps it" };
}
