/**
 * The reap path that needs the judge: pins a batch of zombies
 * (src/zombie.ts), reads the proc connector after the pin, asks the judge
 * (src/judge.ts) with the runtime-pidfd look, reaps what it may through each
 * pin, reports it and releases every pin. Its batches come from a scan of
 * all our children, from zombies whose time is due, or from the core.
 */
import type { Logger } from "pino";
import type { ExitNotices } from "./exit-notices.ts";
import type { Candidate, Decision, Judge } from "./judge.ts";
import type { Libc } from "./libc.ts";
import { listOwnChildren, readStat, yieldToEventLoop, type ProcStat } from "./procfs.ts";
import type { Reporter } from "./report.ts";
import type { RuntimePidfdLook } from "./runtime-pidfds.ts";
import type { NetlinkSource } from "./sources/netlink.ts";
import type { ExitNotice, SourceName } from "./types.ts";
import { isChildWaitable, peekWaitableChild, pinZombies, reapZombie, releaseZombies, type PinnedZombie } from "./zombie.ts";

/** Zombies pinned, judged and reaped together; the loop runs between batches. */
export const ZOMBIES_PER_BATCH = 64;

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
  /** Reads the proc connector (the core's drain, which keeps every kind of news); false when it stopped before the end. */
  readonly drain: () => boolean;
  /** Exit notices of some of the PIDs, when the proc connector gave them. */
  readonly exits?: ReadonlyMap<number, ExitNotice>;
  /** The reaper was stopped meanwhile (say by a shouldReap callback): reap nothing. */
  readonly stopped: () => boolean;
}

export class JudgedReaper {
  readonly #settings: JudgedReapSettings;
  #vetoed = 0;

  constructor(settings: JudgedReapSettings) {
    this.#settings = settings;
  }

  /** Zombies that shouldReap vetoed (the judge asks once per zombie). */
  get vetoed(): number {
    return this.#vetoed;
  }

  /** Every waitable child of the main thread, in batches; what is no longer our child is forgotten. */
  async scan(batch: Batch): Promise<void> {
    const { libc, selfPid, judge, notices, runtimeLook } = this.#settings;
    const children = await listOwnChildren(selfPid);
    const childSet = new Set(children);
    judge.forgetExcept(childSet);
    notices.forgetExcept(childSet);
    runtimeLook.forgetExcept(childSet);
    // None waitable, the usual answer: one peek, where a look at each child costs a waitid apiece.
    if (peekWaitableChild(libc) === 0) return;
    const waitable = children.filter((pid) => isChildWaitable(libc, pid));
    for (let start = 0; start < waitable.length && !batch.stopped(); start += ZOMBIES_PER_BATCH) {
      if (start > 0) await yieldToEventLoop();
      this.reap(waitable.slice(start, start + ZOMBIES_PER_BATCH), batch);
    }
  }

  /** Zombies whose grace or retry time has come, and own children nobody reaped within their grace. */
  reapDue(now: number, batch: Batch): void {
    const { judge, notices } = this.#settings;
    const dueExits = notices.takeDueOwn(now);
    const pids = new Set([...dueExits.map((exit) => exit.pid), ...judge.duePids(now)]);
    if (pids.size === 0) return;
    this.reap(pids, { ...batch, exits: new Map(dueExits.map((exit) => [exit.pid, exit])) });
    judge.forgetStillDue(now);
  }

  /** Pins, judges and reaps `pids`; returns how many were reaped. */
  reap(pids: Iterable<number>, batch: Batch): number {
    const { libc, selfPid, judge, runtimeLook, notices } = this.#settings;
    const zombies = pinZombies(libc, selfPid, pids);
    try {
      // Pinned first, then drained to the end: every FORK event of a pinned zombie is read by now.
      const readToEnd = batch.drain();
      const candidates = zombies.map((zombie) => candidate(zombie, batch, readToEnd, batch.exits?.get(zombie.pid) ?? notices.own(zombie.pid), runtimeLook));
      const ownPidfds = new Set(zombies.flatMap(({ pidfd }) => (pidfd === undefined ? [] : [pidfd])));
      const now = performance.now();
      const decisions = judge.decide(candidates, now, (held) => runtimeLook.heldAmong(held, ownPidfds));
      return batch.stopped() ? 0 : this.#act(decisions, now);
    } finally {
      releaseZombies(libc, zombies);
    }
  }

  #act(decisions: readonly Decision[], now: number): number {
    const { libc, selfPid, logger, judge, reporter, notices } = this.#settings;
    let reaped = 0;
    for (const decision of decisions) {
      if (decision.action === "veto") this.#vetoed += 1;
      if (decision.action === "runtime") logger.debug({ pid: decision.candidate.zombie.pid }, "zombie belongs to the runtime (it holds a pidfd): left to it");
      if (decision.action !== "reap") continue;
      const { candidate, provenance, firstSeenAt, seenBy } = decision;
      const outcome = reapZombie(libc, selfPid, candidate.zombie, reporter.wantsComm ? (candidate.stat()?.comm ?? "") : undefined);
      if (outcome.kind === "not-yet") judge.retrySoon(decision, now);
      notices.settled(candidate.zombie.pid);
      if (outcome.kind !== "reaped") continue;
      reaped += 1;
      reporter.reaped(candidate.zombie.pid, outcome, seenBy, provenance, candidate.exitedAt, firstSeenAt, now);
    }
    return reaped;
  }
}

function candidate(zombie: PinnedZombie, batch: Batch, readToEnd: boolean, exit: ExitNotice | undefined, look: RuntimePidfdLook): Candidate {
  let stat: ProcStat | undefined | null = null;
  const statOnce = () => (stat === null ? (stat = readStat(zombie.pid)) : stat);
  const forkedBySelf = batch.exact?.forkedBySelf(zombie.pid);
  return {
    zombie,
    seenBy: batch.by,
    // A drain that stopped at its bound may have left a FORK unread (a reused PID's): then "not ours" is not proven; "ours" still is.
    forkedBySelf: readToEnd || forkedBySelf === true ? forkedBySelf : undefined,
    exitedAt: exit?.exitedAt,
    predatesMarking: look.predatesMarking(zombie.pid, statOnce),
    stat: statOnce,
  };
}
