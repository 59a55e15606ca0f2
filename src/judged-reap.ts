/**
 * The reap path that needs the judge: pins a batch of zombies
 * (src/zombie.ts), reads the proc connector after the pin, asks the judge
 * (src/judge.ts) with the runtime-pidfd look, reaps what it may through each
 * pin, reports it and releases every pin.
 */
import type { Logger } from "pino";
import type { ExitNotices } from "./exit-notices.ts";
import type { Candidate, Decision, Judge } from "./judge.ts";
import type { Libc } from "./libc.ts";
import { readStat, type ProcStat } from "./procfs.ts";
import type { Reporter } from "./report.ts";
import type { RuntimePidfdLook } from "./runtime-pidfds.ts";
import type { NetlinkSource } from "./sources/netlink.ts";
import type { ExitNotice, SourceName } from "./types.ts";
import { pinZombies, reapZombie, releaseZombies, type PinnedZombie } from "./zombie.ts";

export interface JudgedReapSettings {
  readonly libc: Libc;
  readonly selfPid: number;
  readonly logger: Logger;
  readonly judge: Judge;
  readonly runtimeLook: RuntimePidfdLook;
  readonly reporter: Reporter;
  readonly notices: ExitNotices;
}

/** What one batch is judged with. */
export interface Batch {
  readonly by: SourceName;
  /** The proc connector, for FORK provenance; undefined without it. */
  readonly exact: NetlinkSource | undefined;
  /** Reads the proc connector (the core's drain, which keeps every kind of news). */
  readonly drain: () => void;
  /** Exit notices of some of the PIDs, when the proc connector gave them. */
  readonly exits?: ReadonlyMap<number, ExitNotice>;
  /** The reaper was stopped meanwhile (say by a shouldReap callback): reap nothing. */
  readonly stopped: () => boolean;
}

export class JudgedReaper {
  readonly #settings: JudgedReapSettings;

  constructor(settings: JudgedReapSettings) {
    this.#settings = settings;
  }

  /** Pins, judges and reaps `pids`; how many were reaped and how many vetoed. */
  reap(pids: Iterable<number>, batch: Batch): { reaped: number; vetoed: number } {
    const { libc, selfPid, judge, runtimeLook, notices } = this.#settings;
    const zombies = pinZombies(libc, selfPid, pids);
    try {
      // Pinned first, then drained: every FORK event of a pinned zombie is read by now.
      batch.drain();
      const candidates = zombies.map((zombie) => candidate(zombie, batch, batch.exits?.get(zombie.pid) ?? notices.own(zombie.pid)));
      const ownPidfds = new Set(zombies.flatMap(({ pidfd }) => (pidfd === undefined ? [] : [pidfd])));
      const now = performance.now();
      const decisions = judge.decide(candidates, now, (held) => runtimeLook.heldAmong(held, ownPidfds));
      return batch.stopped() ? { reaped: 0, vetoed: 0 } : this.#act(decisions, now);
    } finally {
      releaseZombies(libc, zombies);
    }
  }

  #act(decisions: readonly Decision[], now: number): { reaped: number; vetoed: number } {
    const { libc, selfPid, logger, judge, reporter, notices } = this.#settings;
    let reaped = 0;
    let vetoed = 0;
    for (const decision of decisions) {
      if (decision.action === "veto") vetoed += 1;
      if (decision.action === "runtime") logger.debug({ pid: decision.candidate.zombie.pid }, "zombie belongs to the runtime (it holds a pidfd): left to it");
      if (decision.action !== "reap") continue;
      const { candidate, provenance, firstSeenAt } = decision;
      const outcome = reapZombie(libc, selfPid, candidate.zombie, reporter.wantsComm ? (candidate.stat()?.comm ?? "") : undefined);
      if (outcome.kind === "not-yet") judge.retrySoon(candidate, firstSeenAt, now);
      notices.settled(candidate.zombie.pid);
      if (outcome.kind !== "reaped") continue;
      reaped += 1;
      reporter.reaped(candidate.zombie.pid, outcome, candidate.seenBy, provenance, candidate.exitedAt, firstSeenAt, now);
    }
    return { reaped, vetoed };
  }
}

function candidate(zombie: PinnedZombie, batch: Batch, exit: ExitNotice | undefined): Candidate {
  let stat: ProcStat | undefined | null = null;
  return {
    zombie,
    seenBy: batch.by,
    forkedBySelf: batch.exact?.forkedBySelf(zombie.pid),
    exitedAt: exit?.exitedAt,
    stat: () => (stat === null ? (stat = readStat(zombie.pid)) : stat),
  };
}
