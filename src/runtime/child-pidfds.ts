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
 * One wrapper serves every copy of this library in the process (two versions
 * in node_modules): its state lives on globalThis under a registered symbol,
 * as the subreaper holds do (src/subreaper.ts), or one copy would take off
 * the wrapper another copy's reaper relies on.
 */
import { ChildProcess } from "node:child_process";
import type { Libc } from "../libc.ts";

/** Node's ChildProcess.prototype.spawn: undocumented, but what spawn, exec, execFile and fork all call. */
type Spawn = (this: ChildProcess, options: unknown) => unknown;
const prototype = ChildProcess.prototype as unknown as { spawn: Spawn };

/** What every copy of the library shares: one wrapper, one list of its children. */
interface SpawnMarks {
  /** Reapers holding the wrapper, in every copy. */
  holders: number;
  /** The wrapper last put on, and the spawn it calls. */
  wrapper: Spawn | undefined;
  unwrapped: Spawn | undefined;
  /**
   * Every live child of the wrapper, until 'exit', with its pidfd, or
   * undefined where pidfd_open failed (the child is the runtime's all the same).
   */
  readonly live: Map<number, number | undefined>;
}

const MARKS_KEY = Symbol.for("orphan-reaper.spawn-marks");

function sharedMarks(): SpawnMarks {
  const global = globalThis as { [MARKS_KEY]?: SpawnMarks };
  return (global[MARKS_KEY] ??= { holders: 0, wrapper: undefined, unwrapped: undefined, live: new Map() });
}

const marks = sharedMarks();

/** Live children of the wrapper that carry no pidfd (pidfd_open failed: EMFILE, or before Linux 5.3). */
export function childrenWithoutPidfd(): ReadonlySet<number> {
  const unmarked = new Set<number>();
  for (const [pid, pidfd] of marks.live) if (pidfd === undefined) unmarked.add(pid);
  return unmarked;
}

/**
 * Every live child of the wrapper, with its pidfd or without: the children
 * the marks are on, so a look for the runtime's zombies needs no fds here.
 */
export function wrappedChildren(): ReadonlyMap<number, number | undefined> {
  return marks.live;
}

/** Installs the wrapper (counted across reapers and copies); returns its removal. */
export function holdPidfdOnEachChild(libc: Libc): () => void {
  // Not on top with no holder: taken off by someone else, or buried under another wrapper; a second one does no harm.
  if (marks.holders++ === 0 && prototype.spawn !== marks.wrapper) wrapSpawn(libc);
  let removed = false;
  return () => {
    if (removed) return;
    removed = true;
    if (--marks.holders === 0) unwrapSpawn();
  };
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
}

/** Only while the wrapper is on top: a wrapper put over it (an APM's) would go with it. Else it stays on, marking. */
function unwrapSpawn(): void {
  if (prototype.spawn !== marks.wrapper || !marks.unwrapped) return;
  prototype.spawn = marks.unwrapped;
  marks.wrapper = marks.unwrapped = undefined;
}

function holdUntilExit(libc: Libc, child: ChildProcess, pid: number): void {
  let pidfd: number | undefined;
  try {
    pidfd = libc.pidfdOpen(pid);
  } catch {
    // Out of fds, or no pidfd_open: the PID is remembered without one. It
    // cannot change hands before 'exit', which comes only once libuv has reaped it.
  }
  marks.live.set(pid, pidfd);
  child.once("exit", () => {
    marks.live.delete(pid);
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
