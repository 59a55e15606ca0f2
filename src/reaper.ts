/**
 * The reaper core: every source funnels into it, so there is one policy and
 * one reap path. It lists our own waitable zombies, sorts them with the pure
 * policy, reaps what may be reaped, keeps the rest pending on a grace timer,
 * and reports each reap (log line, onReap, counters).
 */
import type { Logger } from "pino";
import type { Libc } from "./libc.ts";
import type { NormalizedOptions, ReapedProcess } from "./options.ts";
import { classifyZombie, isLoopLate, judgeZombie, type Provenance, type ProvenanceFacts, type Verdict } from "./policy.ts";
import { listOwnChildren, yieldToEventLoop, type ProcStat } from "./procfs.ts";
import { runtimeHoldsPidfd } from "./runtime-pidfds.ts";
import {
  isChildWaitable,
  peekWaitableChild,
  pinZombie,
  reapZombie,
  releaseZombie,
  type ExitStatus,
  type PinnedZombie,
} from "./reap.ts";
import type { CoreCounter, EventSource, ExitNotice, ReaperCore, SourceName } from "./sources/source.ts";

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
/**
 * Zombies reaped one by one as waitid names them before a scan lists all our
 * children. Each costs O(1) instead of O(children); past a few, one batched
 * scan is cheaper (it makes one runtime-pidfd look for all).
 */
const PEEKED_REAPS_PER_SCAN = 8;
/**
 * Zombies read, judged and reaped together: in a burst the first are reaped
 * before the stats of thousands are read, and the loop runs between batches.
 */
const ZOMBIES_PER_PASS = 64;

export interface CoreCounters {
  reaped: number;
  reapedBySource: Record<SourceName, number>;
  overruns: number;
  malformed: number;
  vetoed: number;
  failures: number;
}

export interface CoreSettings {
  readonly libc: Libc;
  readonly logger: Logger;
  readonly options: NormalizedOptions;
  /** Whether the runtime holds a pidfd for every child it spawns (probed at start). */
  readonly runtimeMarksChildrenWithPidfd: boolean;
  /** Called with each reap, after the log line and onReap (metrics hook). */
  readonly onReaped?: (reaped: ReapedProcess) => void;
}

export class Core implements ReaperCore {
  readonly selfPid: number;
  readonly logger: Logger;
  readonly libc: Libc;
  readonly counters: CoreCounters = {
    reaped: 0,
    reapedBySource: { netlink: 0, sigchld: 0, sweep: 0 },
    overruns: 0,
    malformed: 0,
    vetoed: 0,
    failures: 0,
  };
  lastSweepAt: number | undefined;
  lastActivityAt = -Infinity;
  /** The source whose knowledge of forks refines provenance (the proc connector). */
  exactSource: EventSource | undefined;

  readonly #settings: CoreSettings;
  readonly #pending = new Map<number, PendingZombie>();
  /** Zombies already judged the runtime's, by PID and start time: no pidfd scan for them again. */
  readonly #runtimeZombies = new Map<number, number>();
  #notices: ExitNotice[] = [];
  #scanQueued: SourceName | undefined;
  #draining = false;
  #loopLateAt = -Infinity;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(settings: CoreSettings) {
    this.#settings = settings;
    this.libc = settings.libc;
    this.logger = settings.logger;
    this.selfPid = settings.libc.getpid();
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  count(counter: CoreCounter): void {
    this.counters[counter] += 1;
  }

  requestScan(by: SourceName): void {
    if (by === "sweep") this.lastSweepAt = Date.now();
    else this.lastActivityAt = performance.now();
    this.#queueScan(by);
  }

  #queueScan(by: SourceName): void {
    if (this.#stopped) return;
    this.#scanQueued ??= by;
    this.#startDrain();
  }

  noteExit(notice: ExitNotice): void {
    if (this.#stopped) return;
    this.lastActivityAt = performance.now();
    this.#notices.push(notice);
    this.#startDrain();
  }

  #startDrain(): void {
    if (this.#draining) return;
    this.#draining = true;
    // A microtask: exits noted in the same turn (one netlink chunk) make one batch.
    queueMicrotask(() => void this.#drain());
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#graceTimer);
    this.#pending.clear();
    this.#runtimeZombies.clear();
    this.#notices = [];
  }

  /**
   * One pass at a time: noted exits first, then a queued scan. What arrives
   * during a pass waits for the next, so under load batches grow instead of
   * passes piling up (each may read every pidfd this process holds).
   */
  async #drain(): Promise<void> {
    try {
      while (!this.#stopped) {
        if (this.#notices.length > 0) {
          await this.#reapNoticed();
          if (this.#notices.length > 0) await yieldToEventLoop();
        } else if (this.#scanQueued) {
          const by = this.#scanQueued;
          this.#scanQueued = undefined;
          await this.#scan(by);
        } else {
          break;
        }
      }
    } catch (err) {
      this.counters.failures += 1;
      this.logger.error({ err }, "orphan scan failed; the next event or sweep tries again");
    } finally {
      this.#draining = false;
    }
  }

  async #scan(by: SourceName): Promise<void> {
    if (this.#pending.size === 0 && (await this.#reapPeeked(by))) return;
    const children = await listOwnChildren(this.selfPid);
    const waitable = children.filter((pid) => isChildWaitable(this.libc, pid));
    this.#refreshPending(new Set(children), new Set(waitable));
    if (waitable.length === 0) return this.#armGraceTimer();
    for (let start = 0; start < waitable.length && !this.#stopped; start += ZOMBIES_PER_PASS) {
      if (start > 0) await yieldToEventLoop();
      await this.#judgeAndReap(this.#pin(waitable.slice(start, start + ZOMBIES_PER_PASS)), by);
    }
  }

  /**
   * The common case without listing our children: waitid names a waitable
   * child, that one zombie is judged and reaped, and again, a few times. True
   * when nothing is waitable any more; false when a full scan must follow (the
   * peek names a zombie left waiting or to the runtime, which hides the rest).
   */
  async #reapPeeked(by: SourceName): Promise<boolean> {
    let previous = 0;
    for (let reaps = 0; reaps < PEEKED_REAPS_PER_SCAN; reaps++) {
      const pid = peekWaitableChild(this.libc);
      if (pid === 0) return true;
      const [zombie] = pid === previous ? [] : this.#pin([pid]);
      if (zombie === undefined) return false;
      if (this.#runtimeZombies.get(pid) === zombie.stat.startTime) {
        releaseZombie(this.libc, zombie);
        return false;
      }
      await this.#judgeAndReap([zombie], by);
      if (this.#pending.size > 0) return false;
      previous = pid;
    }
    return false;
  }

  async #reapNoticed(): Promise<void> {
    const notices = this.#notices.splice(0, ZOMBIES_PER_PASS);
    const exits = new Map(notices.map((notice) => [notice.pid, notice]));
    // A leader whose threads still run is not waitable: the scan that follows finds it later.
    await this.#judgeAndReap(this.#pin([...exits.keys()]), "netlink", exits);
  }

  /**
   * Pending entries that are no longer our children were reaped by their
   * owner; those not waitable (a leader whose threads still run) wait a bit.
   */
  #refreshPending(children: ReadonlySet<number>, waitable: ReadonlySet<number>): void {
    const retryAt = performance.now() + THREADS_ALIVE_RETRY_MS;
    for (const pid of this.#runtimeZombies.keys()) if (!children.has(pid)) this.#runtimeZombies.delete(pid);
    for (const [pid, entry] of this.#pending) {
      if (!children.has(pid)) this.#pending.delete(pid);
      else if (!waitable.has(pid)) entry.retryAt = Math.max(entry.retryAt, retryAt);
    }
  }

  /** Those of `pids` that are waitable zombie children of ours, pinned; #judgeAndReap releases them. */
  #pin(pids: readonly number[]): PinnedZombie[] {
    return pids.map((pid) => pinZombie(this.libc, this.selfPid, pid)).filter((zombie) => zombie !== undefined);
  }

  /** Judges and reaps pinned zombies (waitable, so only readable fds can be the runtime's pidfds on them), then releases them. */
  async #judgeAndReap(zombies: readonly PinnedZombie[], by: SourceName, exits?: ReadonlyMap<number, ExitNotice>): Promise<void> {
    try {
      await this.#judgeAndReapPinned(zombies, by, exits);
    } finally {
      for (const zombie of zombies) releaseZombie(this.libc, zombie);
    }
  }

  async #judgeAndReapPinned(zombies: readonly PinnedZombie[], by: SourceName, exits?: ReadonlyMap<number, ExitNotice>): Promise<void> {
    const fresh = zombies.filter(({ stat }) => this.#runtimeZombies.get(stat.pid) !== stat.startTime);
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
        forkedBySelf: notice ? !notice.adopted : this.exactSource?.forkedBySelf?.(stat.pid),
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
      ? await runtimeHoldsPidfd(this.libc, fresh.map(({ stat }) => stat.pid), "waitable zombies", ownPidfds)
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
      this.logger.debug({ pid, comm: entry.stat.comm }, "zombie belongs to the runtime (it holds a pidfd): left to it");
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
    const outcome = reapZombie(this.libc, this.selfPid, zombie);
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
    this.counters.vetoed += 1;
    this.logger.debug({ pid: entry.stat.pid, comm: entry.stat.comm }, "shouldReap vetoed reaping this zombie");
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
    this.counters.reaped += 1;
    this.lastActivityAt = now;
    this.counters.reapedBySource[reaped.source] += 1;
    this.logger[this.#settings.options.reapLogLevel]({ orphan: reaped }, "reaped orphan");
    this.#notify(reaped);
  }

  #notify(reaped: ReapedProcess): void {
    try {
      this.#settings.options.onReap?.(reaped);
      this.#settings.onReaped?.(reaped);
    } catch (err) {
      this.logger.warn({ err, pid: reaped.pid }, "onReap threw; the reaper carries on");
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
      this.#queueScan("sweep");
    }, delay);
    this.#graceTimer.unref();
  }
}
