/**
 * Node's children carry no mark: libuv holds no pidfd, it calls
 * wait4(pid, WNOHANG) for each child it spawned on SIGCHLD, and if anything
 * else reaps one first, that child's 'exit' never fires and the daemon hangs
 * on its handle. So, as Bun does, this process holds a pidfd on each child:
 * ChildProcess.prototype.spawn (under spawn, exec, execFile and fork) is
 * wrapped to open one right after the fork and close it on 'exit', which
 * Node emits once libuv has reaped the child. The pidfd is opened before the
 * event loop turns again, so before libuv or the reaper can reap the child.
 * spawnSync and friends block the loop until they have reaped their child,
 * so the reaper never runs while one lives. Children of a Worker run another
 * isolate's ChildProcess; they are not children of the main thread, which is
 * the only one the reaper waits on (__WNOTHREAD).
 *
 * Children spawned while no wrapper was on (before the first reaper, or
 * between a stop() and a restart) carry no mark either. The main thread's
 * children found when the wrapper goes on are listed as such: whose they are
 * is unknown, so the judge gives them the grace rule (src/policy.ts), not the
 * mark rule. Not "the runtime's while they live": an orphan among them that
 * is a zombie already must still be reaped, and libuv reaps Node's own
 * within a loop turn, well inside the grace window.
 *
 * One wrapper serves every copy of this library in the process (two versions
 * in node_modules): its state lives on globalThis under a registered symbol,
 * as the subreaper holds do (src/subreaper.ts), or one copy would take off
 * the wrapper another copy's reaper relies on.
 */
import { ChildProcess } from "node:child_process";
import type { Libc } from "../libc.ts";
import { listOwnChildren, readStats } from "../procfs.ts";

/** Node's ChildProcess.prototype.spawn: undocumented, but what spawn, exec, execFile and fork all call. */
type Spawn = (this: ChildProcess, options: unknown) => unknown;
const prototype = ChildProcess.prototype as unknown as { spawn: Spawn };

/**
 * One spawn's mark: its pidfd, or undefined where pidfd_open failed (the
 * child is the runtime's all the same). An object of its own, so that a late
 * 'exit' can tell its entry from a newer child's on the same PID.
 */
interface ChildMark {
  readonly pidfd: number | undefined;
}

/** What every copy of the library shares: one wrapper, one list of its children. */
interface SpawnMarks {
  /** Reapers holding the wrapper, in every copy. */
  holders: number;
  /** The wrapper last put on, and the spawn it calls. */
  wrapper: Spawn | undefined;
  unwrapped: Spawn | undefined;
  /** Every live child of the wrapper, until 'exit', by PID. */
  readonly live: Map<number, ChildMark>;
  /** Children of the main thread when the wrapper last went on, not its own, by PID: their start time. */
  readonly before: Map<number, number>;
  /** Settles once `before` is listed. */
  listed: Promise<void>;
}

// Versioned: a copy whose state has another shape keeps its own wrapper (both mark each child).
const MARKS_KEY = Symbol.for("orphan-reaper.spawn-marks.v2");

function sharedMarks(): SpawnMarks {
  const global = globalThis as { [MARKS_KEY]?: SpawnMarks };
  return (global[MARKS_KEY] ??= { holders: 0, wrapper: undefined, unwrapped: undefined, live: new Map(), before: new Map(), listed: Promise.resolve() });
}

const marks = sharedMarks();

/** Live children of the wrapper that carry no pidfd (pidfd_open failed: EMFILE, or before Linux 5.3). */
export function childrenWithoutPidfd(): ReadonlySet<number> {
  const unmarked = new Set<number>();
  for (const [pid, { pidfd }] of marks.live) if (pidfd === undefined) unmarked.add(pid);
  return unmarked;
}

/**
 * Every live child of the wrapper, with its pidfd or without: the children
 * the marks are on, so a look for the runtime's zombies needs no fds here.
 */
export function wrappedChildren(): ReadonlyMap<number, ChildMark> {
  return marks.live;
}

/** Children found when the wrapper went on, by PID: their start time. A Map lookup, for the per-exit path. */
export function childrenBeforeWrapper(): ReadonlyMap<number, number> {
  return marks.before;
}

/**
 * Whether `pid`, started at `startTime` (undefined: cannot tell), is a child
 * found when the wrapper went on. A start time that differs means the PID
 * changed hands: that child is gone, and is dropped.
 */
export function isChildFromBeforeWrapper(pid: number, startTime: number | undefined): boolean {
  const listed = marks.before.get(pid);
  if (listed === undefined) return false;
  if (startTime === undefined || startTime === listed) return true;
  marks.before.delete(pid);
  return false;
}

/** Drops the children found when the wrapper went on that are no longer among `children`: they were reaped. */
export function forgetChildrenBeforeWrapperExcept(children: ReadonlySet<number>): void {
  for (const pid of marks.before.keys()) if (!children.has(pid)) marks.before.delete(pid);
}

/**
 * Installs the wrapper (counted across reapers and copies); resolves to its
 * removal once the children that predate it are listed.
 */
export async function holdPidfdOnEachChild(libc: Libc): Promise<() => void> {
  // Not on top with no holder: taken off by someone else, or buried under another wrapper; a second one does no harm.
  if (marks.holders++ === 0 && prototype.spawn !== marks.wrapper) wrapSpawn(libc);
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    if (--marks.holders === 0) unwrapSpawn();
  };
  try {
    await marks.listed;
  } catch (error) {
    remove();
    throw error;
  }
  return remove;
}

function wrapSpawn(libc: Libc): void {
  const spawn = prototype.spawn;
  const wrapper = function (this: ChildProcess, options: unknown) {
    const result = spawn.call(this, options);
    if (this.pid !== undefined) holdUntilExit(libc, this, this.pid);
    return result;
  };
  marks.unwrapped = spawn;
  marks.wrapper = prototype.spawn = wrapper;
  // After the wrap: a child spawned while the list is read is the wrapper's, and left out.
  marks.listed = listChildrenBeforeWrapper();
}

/** Only while the wrapper is on top: a wrapper put over it (an APM's) would go with it. Else it stays on, marking. */
function unwrapSpawn(): void {
  if (prototype.spawn !== marks.wrapper || !marks.unwrapped) return;
  prototype.spawn = marks.unwrapped;
  marks.wrapper = marks.unwrapped = undefined;
}

async function listChildrenBeforeWrapper(): Promise<void> {
  const stats = await readStats(await listOwnChildren(process.pid));
  marks.before.clear();
  for (const { pid, startTime } of stats) if (!marks.live.has(pid)) marks.before.set(pid, startTime);
}

function holdUntilExit(libc: Libc, child: ChildProcess, pid: number): void {
  let pidfd: number | undefined;
  try {
    pidfd = libc.pidfdOpen(pid);
  } catch {
    // Out of fds, or no pidfd_open: the PID is remembered without one. It
    // cannot change hands before 'exit', which comes only once libuv has reaped it.
  }
  const mark: ChildMark = { pidfd };
  marks.live.set(pid, mark);
  child.once("exit", () => {
    // libuv reaps every exited child, then emits each 'exit': one emitted
    // before this may have spawned a child on this PID, which keeps its mark.
    if (marks.live.get(pid) === mark) marks.live.delete(pid);
    if (pidfd !== undefined) closeQuietly(libc, pidfd);
  });
}

/**
 * Runs inside Node's 'exit' emit: a throw there would be the daemon's
 * uncaught exception, and the listeners after this one would not run. The
 * fd is gone whatever close says (Linux frees it even on EINTR).
 */
function closeQuietly(libc: Libc, fd: number): void {
  try {
    libc.close(fd);
  } catch {
    // Nothing to do: see above.
  }
}
