/**
 * The fast paths for zombies proven adopted, run inside the SIGCHLD handler
 * with no judge, no promise and no /proc read unless someone wants the comm:
 * - exits the proc connector proves adopted (an EXIT with no FORK by us
 *   before it). Per zombie: pidfd_open, waitid through the pidfd, close; one
 *   drain per batch;
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
import type { ExitNotice } from "./types.ts";
import { openPidfd, reapPeekedZombie, reapZombie, releaseZombies, type ExitStatus, type PinnedZombie } from "./zombie.ts";

export interface AdoptedReap {
  readonly exit: ExitNotice;
  readonly status: ExitStatus;
  readonly comm: string;
}

export interface AdoptedReaps {
  readonly reaped: AdoptedReap[];
  /** For the core's pass. */
  readonly left: ExitNotice[];
}

/**
 * `drainQueued` reads what the proc connector queued since (the core's own
 * drain, which keeps every kind of news it brings: more exits, an overrun).
 */
export function reapProvenAdopted(
  libc: Libc,
  selfPid: number,
  exact: NetlinkSource,
  exits: readonly ExitNotice[],
  wantsComm: boolean,
  drainQueued: () => void,
): AdoptedReaps {
  const reaped: AdoptedReap[] = [];
  const left: ExitNotice[] = [];
  const pinned: { exit: ExitNotice; zombie: PinnedZombie }[] = [];
  try {
    for (const exit of exits) {
      const pidfd = openPidfd(libc, exit.pid);
      if (pidfd === "gone") continue;
      if (pidfd === "unsupported") left.push(exit);
      else pinned.push({ exit, zombie: { pid: exit.pid, pidfd } });
    }
    // Pinned, then drained: a child we forked since under a reused PID has its FORK event read now.
    drainQueued();
    for (const { exit, zombie } of pinned) {
      if (exact.forkedBySelf(exit.pid) !== false) {
        left.push(exit);
        continue;
      }
      const comm = wantsComm ? (readStat(exit.pid)?.comm ?? "") : "";
      const outcome = reapZombie(libc, selfPid, zombie);
      if (outcome.kind === "reaped") reaped.push({ exit, status: outcome.exit, comm });
      else if (outcome.kind === "not-yet") left.push(exit);
    }
    return { reaped, left };
  } finally {
    releaseZombies(libc, pinned.map(({ zombie }) => zombie));
  }
}

export interface PeekedReap {
  readonly status: ExitStatus;
  readonly comm: string;
}

/**
 * Reaps `pid`, which a waitid peek just named, if the runtime holds no pidfd
 * on it. Peek, look and reap are one synchronous step (see
 * reapPeekedZombie). Undefined when the runtime holds it or it could not be
 * reaped: the core's judge takes it from there.
 */
export function reapPeekedUnlessHeld(libc: Libc, look: RuntimePidfdLook, pid: number, wantsComm: boolean): PeekedReap | undefined {
  if (look.holds(pid)) return undefined;
  const comm = wantsComm ? (readStat(pid)?.comm ?? "") : "";
  const outcome = reapPeekedZombie(libc, pid);
  return outcome.kind === "reaped" ? { status: outcome.exit, comm } : undefined;
}
