/**
 * Judging and reaping: each batch of pinned zombies is sorted with the pure
 * policy (src/policy.ts), the runtime's are left to it, the adopted reaped,
 * the unknown kept pending on one grace timer, and each reap reported (log
 * line, onReap, counters). The core (src/reaper.ts) decides which zombies to
 * bring here and when.
 */
import type { Logger } from "pino";
import type { Libc } from "./libc.ts";
import type { NormalizedOptions, ReapedProcess } from "./options.ts";
import { classifyZombie, isLoopLate, judgeZombie, type Provenance, type ProvenanceFacts, type Verdict } from "./policy.ts";
import type { ProcStat } from "./procfs.ts";
import { reapZombie, releaseZombie, type ExitStatus, type PinnedZombie } from "./reap.ts";
import { runtimeHoldsPidfd } from "./runtime-pidfds.ts";
import type { ExitNotice, SourceName } from "./sources/source.ts";

/** A zombie that is not reapable yet: in its grace window, or its threads still live. */
interface PendingZombie {
  readonly stat: ProcStat;
  readonly firstSeenAt: number;
  readonly seenBy: SourceName;
  readonly exitedAt?: number;
  /** Earliest time to look again. */
  retryAt: number;
}

/** How soon to look again at a zombie leader whose other threads still run. */
const THREADS_ALIVE_RETRY_MS = 50;

export interface JudgeCounters {
  reaped: number;
  reapedBySource: Record<SourceName, number>;
  vetoed: number;
}

export interface JudgeSettings {
  readonly libc: Libc;
  readonly logger: Logger;
  readonly selfPid: number;
  readonly options: NormalizedOptions;
  /** Whether the runtime holds a pidfd for every child it spawns (probed at start). */
  readonly runtimeMarksChildrenWithPidfd: boolean;
  readonly counters: JudgeCounters;
  /** From the exact source (the proc connector): did this process fork `pid`? */
  readonly forkedBySelf: (pid: number) => boolean | undefined;
  /** Called with each reap, after the log line and onReap. */
  readonly onReaped: (reaped: ReapedProcess) => void;
  /** The earliest pending zombie is due: bring the waitable zombies back. */
  readonly onDue: () => void;
}

export class Judge {
  readonly #settings: JudgeSettings;
  readonly #libc: Libc;
  readonly #logger: Logger;
  readonly #counters: JudgeCounters;
  readonly #pending = new Map<number, PendingZombie>();
  /** Zombies already judged the runtime's, by PID and start time: no pidfd look for them again. */
  readonly #runtimeZombies = new Map<number, number>();
  #loopLateAt = -Infinity;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(settings: JudgeSettings) {
    this.#settings = settings;
    this.#libc = settings.libc;
    this.#logger = settings.logger;
    this.#counters = settings.counters;
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Already judged the runtime's: judging it again would change nothing. */
  #isRuntimeZombie(stat: ProcStat): boolean {
    return this.#runtimeZombies.get(stat.pid) === stat.startTime;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#graceTimer);
    this.#pending.clear();
    this.#runtimeZombies.clear();
  }

  /**
   * Pending entries that are no longer our children were reaped by their
   * owner; those not waitable (a leader whose threads still run) wait a bit.
   */
  refresh(children: ReadonlySet<number>, waitable: ReadonlySet<number>): void {
    const retryAt = performance.now() + THREADS_ALIVE_RETRY_MS;
    for (const pid of this.#runtimeZombies.keys()) if (!children.has(pid)) this.#runtimeZombies.delete(pid);
    for (const [pid, entry] of this.#pending) {
      if (!children.has(pid)) this.#pending.delete(pid);
      else if (!waitable.has(pid)) entry.retryAt = Math.max(entry.retryAt, retryAt);
    }
    this.#armGraceTimer();
  }

  /** Judges and reaps pinned zombies (waitable, so only readable fds can be the runtime's pidfds on them), then releases them. */
  async judgeAndReap(zombies: readonly PinnedZombie[], by: SourceName, exits?: ReadonlyMap<number, ExitNotice>): Promise<void> {
    try {
      await this.#judgeAndReapPinned(zombies, by, exits);
    } finally {
      for (const zombie of zombies) releaseZombie(this.#libc, zombie);
    }
  }

  async #judgeAndReapPinned(zombies: readonly PinnedZombie[], by: SourceName, exits?: ReadonlyMap<number, ExitNotice>): Promise<void> {
    const fresh = zombies.filter(({ stat }) => !this.#isRuntimeZombie(stat));
    if (this.#stopped || fresh.length === 0) return this.#armGraceTimer();
    const now = performance.now();
    const judged = fresh.map((zombie) => {
      const { stat } = zombie;
      const known = this.#pending.get(stat.pid);
      const notice = exits?.get(stat.pid);
      const entry: PendingZombie =
        known?.stat.startTime === stat.startTime
          ? known
          : { stat, firstSeenAt: now, seenBy: by, exitedAt: notice?.exitedAt, retryAt: now };
      const facts: ProvenanceFacts = {
        runtimeHoldsPidfd: false,
        forkedBySelf: notice ? !notice.adopted : this.#settings.forkedBySelf(stat.pid),
        runtimeMarksChildrenWithPidfd: this.#settings.runtimeMarksChildrenWithPidfd,
        alwaysGrace: this.#settings.options.alwaysGrace,
      };
      return { entry, facts, zombie };
    });
    // The runtime-pidfd look is made only when a zombie would be reaped
    // unless the runtime holds it. Our own pins are not the runtime's.
    const wouldReap = judged.some(({ entry, facts }) => this.#verdict(entry, classifyZombie(facts), now).action === "reap");
    const ownPidfds = new Set(fresh.map(({ pidfd }) => pidfd).filter((fd) => fd !== undefined));
    const runtimePids = wouldReap
      ? await runtimeHoldsPidfd(this.#libc, fresh.map(({ stat }) => stat.pid), "waitable zombies", ownPidfds)
      : new Set<number>();
    if (this.#stopped) return;
    for (const { entry, facts, zombie } of judged) {
      this.#decide(entry, zombie, classifyZombie({ ...facts, runtimeHoldsPidfd: runtimePids.has(entry.stat.pid) }), now);
    }
    this.#armGraceTimer();
  }

  #verdict(entry: PendingZombie, provenance: Provenance, now: number): Verdict {
    const clock = { firstSeenAt: entry.firstSeenAt, loopLateAt: this.#loopLateAt, now, graceMs: this.#settings.options.graceMs };
    return judgeZombie(provenance, clock);
  }

  #decide(entry: PendingZombie, zombie: PinnedZombie, provenance: Provenance, now: number): void {
    const { pid } = entry.stat;
    const verdict = this.#verdict(entry, provenance, now);
    if (verdict.action === "leave" || provenance === "runtime") {
      this.#logger.debug({ pid, comm: entry.stat.comm }, "zombie belongs to the runtime (it holds a pidfd): left to it");
      this.#runtimeZombies.set(pid, entry.stat.startTime);
      this.#pending.delete(pid);
      return;
    }
    if (verdict.action === "wait") {
      entry.retryAt = verdict.until;
      this.#pending.set(pid, entry);
      return;
    }
    if (!this.#mayReap(entry, provenance)) {
      this.#pending.delete(pid);
      return;
    }
    const outcome = reapZombie(this.#libc, this.#settings.selfPid, zombie);
    if (outcome.kind === "not-yet") {
      entry.retryAt = now + THREADS_ALIVE_RETRY_MS;
      this.#pending.set(pid, entry);
      return;
    }
    this.#pending.delete(pid);
    if (outcome.kind === "reaped") this.#report(entry, provenance, outcome.exit);
  }

  #mayReap(entry: PendingZombie, provenance: "adopted" | "unknown"): boolean {
    const shouldReap = this.#settings.options.shouldReap;
    if (!shouldReap || shouldReap({ pid: entry.stat.pid, comm: entry.stat.comm, provenance })) return true;
    this.#counters.vetoed += 1;
    this.#logger.debug({ pid: entry.stat.pid, comm: entry.stat.comm }, "shouldReap vetoed reaping this zombie");
    return false;
  }

  #report(entry: PendingZombie, provenance: "adopted" | "unknown", exit: ExitStatus): void {
    const now = performance.now();
    const reaped: ReapedProcess = {
      pid: entry.stat.pid,
      comm: entry.stat.comm,
      ...exit,
      source: entry.seenBy,
      provenance,
      ...(entry.exitedAt === undefined ? {} : { lifetimeMs: now - entry.exitedAt }),
      seenForMs: now - entry.firstSeenAt,
    };
    this.#counters.reaped += 1;
    this.#counters.reapedBySource[reaped.source] += 1;
    this.#logger[this.#settings.options.reapLogLevel]({ orphan: reaped }, "reaped orphan");
    this.#notify(reaped);
  }

  #notify(reaped: ReapedProcess): void {
    try {
      this.#settings.options.onReap?.(reaped);
      this.#settings.onReaped(reaped);
    } catch (err) {
      this.#logger.warn({ err, pid: reaped.pid }, "onReap threw; the reaper carries on");
    }
  }

  /** One timer for the earliest pending deadline; its lateness tells whether the loop was blocked. */
  #armGraceTimer(): void {
    clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
    if (this.#stopped || this.#pending.size === 0) return;
    const due = Math.min(...[...this.#pending.values()].map((entry) => entry.retryAt));
    const delay = Math.max(0, due - performance.now());
    this.#graceTimer = setTimeout(() => {
      if (isLoopLate(due, performance.now())) this.#loopLateAt = performance.now();
      this.#settings.onDue();
    }, delay);
    this.#graceTimer.unref();
  }
}

