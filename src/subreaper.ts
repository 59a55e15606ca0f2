/**
 * How orphans come to this process: PID 1 gets them; otherwise it becomes a
 * child subreaper (PR_SET_CHILD_SUBREAPER). The flag belongs to the process,
 * not to one reaper, so it is reference-counted across every reaper in the
 * process, even reapers of two copies of this library (the count lives on
 * globalThis under a registered symbol): stopping one never disarms another.
 * A flag that was set before any reaper (by the daemon itself) is left alone.
 */
import type { Libc } from "./libc.ts";

export type ReaperRole = "pid1" | "subreaper";

export interface OrphanIntake {
  readonly role: ReaperRole;
  /** Idempotent: drops this reaper's hold; the last hold clears the flag it set. */
  readonly release: () => void;
}

interface SubreaperHolds {
  count: number;
}

const HOLDS_KEY = Symbol.for("orphan-reaper.subreaper-holds");

function sharedHolds(): SubreaperHolds {
  const global = globalThis as { [HOLDS_KEY]?: SubreaperHolds };
  return (global[HOLDS_KEY] ??= { count: 0 });
}

function hold(libc: Libc, holds: SubreaperHolds): OrphanIntake {
  holds.count += 1;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    holds.count -= 1;
    if (holds.count === 0) libc.setChildSubreaper(false);
  };
  return { role: "subreaper", release };
}

/** Makes sure orphans come to us, or says why they cannot. */
export function takeOrphans(libc: Libc, mayBecomeSubreaper: boolean): OrphanIntake | string {
  if (libc.getpid() === 1) return { role: "pid1", release: () => {} };
  const holds = sharedHolds();
  if (holds.count > 0) return hold(libc, holds);
  if (libc.isChildSubreaper()) return { role: "subreaper", release: () => {} };
  if (!mayBecomeSubreaper)
    return "neither PID 1 nor a child subreaper, and the subreaper option is false: orphans go to init; set subreaper: true, or run as PID 1";
  libc.setChildSubreaper(true);
  return hold(libc, holds);
}
