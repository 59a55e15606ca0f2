/**
 * The fast paths for zombies proven adopted, run inside the SIGCHLD handler
 * with no judge, no promise and no /proc read unless someone wants the comm:
 * - exits the proc connector proves adopted (an EXIT with no FORK by us
 *   before it), right after a drain. Per zombie: waitid by PID;
 * - without it, a zombie a waitid peek names that the runtime holds no pidfd
 *   on, where the probe showed the runtime marks every child it spawns. Per
 *   zombie: the peek, the runtime-pidfd look, waitid by PID.
 * What they cannot settle (a leader whose threads still run, a PID that now
 * names a child we forked, a runtime's zombie, no pidfd support) goes back to
 * the core's pass. Each runs once per exit, mostly before the JIT has
 * compiled it: one loop, few calls.
 */
import { P_PID, type Libc } from "./libc.ts";
import { readStat } from "./procfs.ts";
import type { Reporter } from "./report.ts";
import type { RuntimePidfdLook } from "./runtime-pidfds.ts";
import type { NetlinkSource } from "./sources/netlink.ts";
import type { ExitNotice } from "./types.ts";
import { reapChild, type ReapedZombie } from "./zombie.ts";

/** What a batch reaped in full leaves: one array for all, not one made per exit. */
const NOTHING_LEFT: readonly ExitNotice[] = Object.freeze([]);

/** The comm for the report, read before the reap (/proc forgets the process with it); undefined where nobody listens. */
const commIfWanted = (pid: number, wanted: boolean) => (wanted ? (readStat(pid)?.comm ?? "") : undefined);

/**
 * Reaps by PID each zombie an EXIT of `exits` proved adopted, and reports
 * it; returns the exits left for the core's pass. The caller drained the
 * proc connector to the end in this same synchronous step: a PID the main
 * thread forked again since the exit would have its FORK event read by now
 * (queued before fork returns), and the main thread, running this, forks
 * nothing meanwhile. So whatever waitable child of the main thread holds the
 * PID is the zombie the EXIT named, or an orphan reparented to us since; a
 * Worker's child is never one (__WNOTHREAD). No pidfd is needed to pin it.
 * An exit someone else reaped first is dropped.
 */
export function reapProvenExits(
  libc: Libc, exact: NetlinkSource, reporter: Reporter, exits: readonly ExitNotice[], now: number,
): readonly ExitNotice[] {
  const wantsComm = reporter.wantsComm;
  let left: ExitNotice[] | undefined;
  // Indexed: for-of makes an iterator, once per exit on the baseline tier.
  for (let i = 0; i < exits.length; i++) {
    const exit = exits[i]!;
    const outcome = exact.forkedBySelf(exit.pid) === false ? reapChild(libc, P_PID, exit.pid, commIfWanted(exit.pid, wantsComm)) : undefined;
    if (outcome === undefined || outcome.kind === "not-yet") (left ??= []).push(exit);
    else if (outcome.kind === "reaped") reporter.reaped(exit.pid, outcome, "netlink", "adopted", exit.exitedAt, exit.exitedAt, now);
  }
  return left ?? NOTHING_LEFT;
}

/**
 * Reaps `pid`, which a waitid peek just named, if the runtime holds no pidfd
 * on it. Peek, look and reap are one synchronous step: whatever waitable
 * child of the main thread holds the PID at the reap is the zombie peeked,
 * or an orphan reparented to us since; never a child the runtime forked
 * since, as only the main thread forks those and it is running this. "held"
 * when the runtime holds it (it is the runtime's to reap); undefined when it
 * could not be reaped, or when it may have been a child before marking
 * began (its missing mark proves nothing): the core's judge takes it from there.
 */
export function reapPeekedUnlessHeld(libc: Libc, look: RuntimePidfdLook, pid: number, wantsComm: boolean): ReapedZombie | "held" | undefined {
  if (look.holds(pid)) return "held";
  if (look.mayPredateMarking(pid)) return undefined;
  const outcome = reapChild(libc, P_PID, pid, commIfWanted(pid, wantsComm));
  return outcome.kind === "reaped" ? outcome : undefined;
}
