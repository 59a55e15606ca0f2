/**
 * The fast path for exits the proc connector proves adopted (an EXIT with no
 * FORK by us before it): reaped by PID inside the SIGCHLD handler, with no
 * judge, no promise and no /proc read unless someone wants the comm. Per
 * zombie: pidfd_open, waitid through the pidfd, close; one drain per batch.
 * What it cannot settle (a leader whose threads still run, a PID that now
 * names a child we forked, no pidfd support) goes back to the core's pass.
 */
import type { Libc } from "./libc.ts";
import { readStat } from "./procfs.ts";
import type { NetlinkSource } from "./sources/netlink.ts";
import type { ExitNotice } from "./types.ts";
import { openPidfd, reapZombie, releaseZombies, type ExitStatus, type PinnedZombie } from "./zombie.ts";

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
