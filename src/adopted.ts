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
 * the core's pass.
 */
import type { Libc } from "./libc.ts";
import { readStat } from "./procfs.ts";
import type { RuntimePidfdLook } from "./runtime-pidfds.ts";
import type { NetlinkSource } from "./sources/netlink.ts";
import { reapPeekedZombie, type ReapedZombie } from "./zombie.ts";

/** The comm for the report, read before the reap (/proc forgets the process with it); undefined where nobody listens. */
const commIfWanted = (pid: number, wanted: boolean) => (wanted ? (readStat(pid)?.comm ?? "") : undefined);

/**
 * Reaps by its PID the zombie an EXIT proved adopted. The caller drained the
 * proc connector to the end in this same synchronous step: a PID the main
 * thread forked again since the exit would have its FORK event read by now
 * (queued before fork returns), and the main thread, running this, forks
 * nothing meanwhile. So whatever waitable child of the main thread holds the
 * PID is the zombie the EXIT named, or an orphan reparented to us since; a
 * Worker's child is never one (__WNOTHREAD). No pidfd is needed to pin it.
 * "left" for the core's pass; "gone" when someone reaped it first.
 */
export function reapProvenAdopted(libc: Libc, exact: NetlinkSource, pid: number, wantsComm: boolean): ReapedZombie | "left" | "gone" {
  if (exact.forkedBySelf(pid) !== false) return "left";
  const outcome = reapPeekedZombie(libc, pid, commIfWanted(pid, wantsComm));
  if (outcome.kind === "reaped") return outcome;
  return outcome.kind === "not-yet" ? "left" : "gone";
}

/**
 * Reaps `pid`, which a waitid peek just named, if the runtime holds no pidfd
 * on it. Peek, look and reap are one synchronous step (see
 * reapPeekedZombie). "held" when the runtime holds it (it is the runtime's to
 * reap); undefined when it could not be reaped: the core's judge takes it
 * from there.
 */
export function reapPeekedUnlessHeld(libc: Libc, look: RuntimePidfdLook, pid: number, wantsComm: boolean): ReapedZombie | "held" | undefined {
  if (look.holds(pid)) return "held";
  const outcome = reapPeekedZombie(libc, pid, commIfWanted(pid, wantsComm));
  return outcome.kind === "reaped" ? outcome : undefined;
}
