/**
 * The reaper core: every source funnels into it, so there is one policy and
 * one reap path. It finds waitable zombies of the main thread in the cheapest
 * way the situation allows; what is proven adopted is reaped at once
 * (src/adopted.ts), the rest is pinned and judged (src/judged-reap.ts). One
 * pass runs at a time; requests that arrive meanwhile join it.
 *
 * The ways in, cheapest first:
 * - an exit the proc connector named: reaped by its PID right after the
 *   drain that read it, O(1);
 * - a waitid peek (src/peeks.ts): on SIGCHLD without the proc connector, or
 *   with it when no exit named explains the signal (a zombie reparented to
 *   us after its exit, or an EXIT not queued yet: do_exit() notifies the
 *   parent before the proc connector): the kernel names one zombie;
 * - a scan of all our children: the sweep, an overrun, or a peek blocked by
 *   a zombie that stays (the runtime's, vetoed, in its grace window).
 */
import type { Logger } from "pino";
import { DueTimer, QuietTimer } from "./due-timer.ts";
import { ExitNotices } from "./exit-notices.ts";
import { Judge } from "./judge.ts";
import { JudgedReaper } from "./judged-reap.ts";
import type { Libc } from "./libc.ts";
import { RateLimitedLog } from "./log.ts";
import type { ReaperMetrics } from "./metrics.ts";
import { isLoopLate } from "./policy.ts";
import { listOwnChildren, yieldToEventLoop } from "./procfs.ts";
import { Reporter } from "./report.ts";
import { RuntimePidfdLook } from "./runtime-pidfds.ts";
import type { Drained, NetlinkSource } from "./sources/netlink.ts";
import { zeroBySource, type ExitNotice, type ReapCandidate, type ReapedProcess, type ReaperCounts, type SourceName } from "./types.ts";
import { isChildWaitable } from "./zombie.ts";
import { reapProvenAdopted } from "./adopted.ts";
import { MERGED_SIGNALS_CHECK_MS, ZombiePeeks } from "./peeks.ts";

/** Zombies pinned, judged and reaped together; the loop runs between batches. */
const ZOMBIES_PER_BATCH = 64;
/** Beside the proc connector, how often SIGCHLD that came with exits is checked for a reparented zombie. */
const REPARENT_CHECK_MS = 1_000;
/** A peek blocked by the same zombie twice: at most one full scan per this. */
const BLOCKED_SCAN_INTERVAL_MS = 100;
/** After a failed pass (say /proc unreadable), look again after this. */
const FAILURE_RETRY_MS = 1_000;
/** What a batch reaped in full leaves: one array for all, not one made per exit. */
const NOTHING_LEFT: readonly ExitNotice[] = Object.freeze([]);

export interface CoreSettings {
  readonly libc: Libc;
  readonly logger: Logger;
  readonly graceMs: number;
  readonly alwaysGrace: boolean;
  readonly reapLogLevel: "info" | "debug";
  readonly onReap?: (reaped: ReapedProcess) => void;
  readonly shouldReap?: (candidate: ReapCandidate) => boolean;
  /** Whether the runtime holds a pidfd for every child it spawns (probed at start). */
  readonly runtimeMarksChildrenWithPidfd: boolean;
  /** The reaper's own record of each reap's lifetime (metrics); never throws. */
  readonly lifetimes?: Pick<ReaperMetrics, "recordLifetime">;
}

/** What a pass does: drain the proc connector, peek for one zombie (a SIGCHLD) or all, scan all children, look at zombies whose time is due. */
type Work = "exits" | "signal" | "peek" | "scan" | "due";

export class Core {
  readonly selfPid: number;
  readonly #libc: Libc;
  readonly #errors: RateLimitedLog;
  readonly #judge: Judge;
  readonly #reporter: Reporter;
  readonly #runtimeLook: RuntimePidfdLook;
  readonly #judged: JudgedReaper;
  /** No grace rule everywhere (alwaysGrace) and no veto (shouldReap): a zombie proven adopted is reaped at once, without the judge. */
  readonly #provenIsReaped: boolean;
  /** And the runtime marks every child it spawns with a pidfd (probed at start): without the proc connector, no pidfd held proves adoption. */
  readonly #markProves: boolean;
  readonly #counts = { reaped: 0, reapedBySource: zeroBySource(), overruns: 0, malformed: 0, vetoed: 0, failures: 0 };
  #exact: NetlinkSource | undefined;
  readonly #notices: ExitNotices;
  readonly #wanted = new Set<Work>();
  #scanBy: SourceName = "sweep";
  #blockedBy = 0;
  #lastBlockedScanAt = -Infinity;
  #lastReparentCheckAt = -Infinity;
  readonly #peeks: ZombiePeeks;
  /** The empty peek a SIGCHLD's run owes (src/peeks.ts), made if no SIGCHLD makes it first. */
  readonly #mergedSignalsCheck = new QuietTimer(MERGED_SIGNALS_CHECK_MS, () => this.#request("peek", "sigchld"));
  /** The last drain read the socket to the end (it did not stop at its bound). */
  #drainedAll = true;
  #running = false;
  #stopped = false;
  /** Zombies and own exits due, and work deferred: a reparent check, a rate-limited scan, a retry after a failure. */
  readonly #timer = new DueTimer<Work>((owed, due) => this.#onDue(owed, due));
  #problem: string | undefined;
  lastActivityAt = -Infinity;
  lastSweepAt: number | undefined;

  constructor(settings: CoreSettings) {
    this.#libc = settings.libc;
    this.#errors = new RateLimitedLog(settings.logger);
    this.selfPid = settings.libc.getpid();
    this.#notices = new ExitNotices(settings.graceMs);
    this.#provenIsReaped = !settings.alwaysGrace && settings.shouldReap === undefined;
    this.#markProves = this.#provenIsReaped && settings.runtimeMarksChildrenWithPidfd;
    this.#judge = new Judge(settings);
    this.#runtimeLook = new RuntimePidfdLook(settings.libc);
    this.#reporter = new Reporter({
      logger: settings.logger,
      reapLogLevel: settings.reapLogLevel,
      onReap: settings.onReap,
      record: (source, lifetimeMs, reapedAt) => {
        this.#counts.reaped += 1;
        this.#counts.reapedBySource[source] += 1;
        this.lastActivityAt = reapedAt;
        settings.lifetimes?.recordLifetime(source, lifetimeMs);
      },
    });
    this.#peeks = new ZombiePeeks({ libc: settings.libc, runtimeLook: this.#runtimeLook, reporter: this.#reporter });
    this.#judged = new JudgedReaper({
      libc: settings.libc, selfPid: this.selfPid, logger: settings.logger, judge: this.#judge,
      runtimeLook: this.#runtimeLook, reporter: this.#reporter, notices: this.#notices,
    });
  }

  /** The proc connector source whose events give exact provenance and exit notices; undefined for none. */
  useExactSource(source: NetlinkSource | undefined): void {
    this.#exact = source;
  }

  get exactSource(): NetlinkSource | undefined {
    return this.#exact;
  }

  counts(): ReaperCounts {
    return { ...this.#counts, reapedBySource: { ...this.#counts.reapedBySource } };
  }

  get pendingCount(): number {
    return this.#judge.pendingCount;
  }

  /** Why reaping is failing right now (cleared by the next pass that works), or undefined. */
  get problem(): string | undefined {
    return this.#problem;
  }

  /**
   * SIGCHLD: a child of ours exited (or stopped), handled here, with no
   * pass unless work is left. With the proc connector: read it and reap the
   * exits it proves adopted (src/adopted.ts). Without: reap the zombie a peek
   * names. While a pass runs, it does the work.
   */
  onChildSignal(): void {
    const now = performance.now();
    this.lastActivityAt = now;
    if (this.#running || this.#stopped) return this.#request(this.#exact ? "exits" : "signal", "sigchld");
    let settled = false;
    try {
      if (this.#exact) settled = this.#readAndReapExits(now);
      else if (this.#peek("sigchld", true)) {
        // A long run of reaps lets the event loop in before the rest.
        return void setImmediate(() => this.#startRun());
      }
      // Handled without a pass, and it worked: whatever failed before (/proc unmounted, EMFILE) has ended.
      this.#problem = undefined;
    } catch (err) {
      this.#failed(err);
    }
    // Every exit read was reaped and no work is owed: no due time changed, the timer stays as it is.
    if (settled) return;
    if (this.#wanted.size > 0 || this.#notices.adoptedCount > 0) this.#startRun();
    else this.#armTimer();
  }

  /** The sweep: drain, then look at every child. */
  sweep(): void {
    this.lastSweepAt = Date.now();
    this.#request("scan", "sweep");
  }

  stop(): void {
    this.#stopped = true;
    this.#timer.stop();
    this.#mergedSignalsCheck.cancel();
    this.#runtimeLook.close();
    this.#notices.clear();
  }

  #request(work: Work, by: SourceName): void {
    if (this.#stopped) return;
    if (work !== "exits" && work !== "due") this.#scanBy = by;
    this.#wanted.add(work);
    this.#startRun();
  }

  /** Runs a pass now, synchronously up to its first await (a scan, a yield); a request made meanwhile joins it. */
  #startRun(): void {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    void this.#run();
  }

  async #run(): Promise<void> {
    try {
      while (!this.#stopped && (this.#wanted.size > 0 || this.#notices.adoptedCount > 0)) {
        const named = this.#drainExact();
        if (this.#takeWork("exits")) this.#checkReparented(named, performance.now());
        let more = false;
        if (this.#notices.adoptedCount > 0) more = this.#reapAdoptedExits();
        else if (this.#takeWork("scan")) await this.#scan(this.#scanBy);
        else if (this.#takeWork("due")) this.#lookAtDue();
        else if (this.#takeWork("peek")) more = this.#peek(this.#scanBy, false);
        else if (this.#takeWork("signal")) more = this.#peek(this.#scanBy, true);
        // A long run of reaps lets the event loop in between batches.
        if (more) await yieldToEventLoop();
      }
      this.#problem = undefined;
    } catch (err) {
      this.#failed(err);
    } finally {
      this.#running = false;
    }
    this.#armTimer();
  }

  /** A pass failed (say /proc unreadable): counted, logged (rate-limited), shown in stats, tried again later. */
  #failed(err: unknown): void {
    this.#counts.failures += 1;
    this.#problem = `reaping failed: ${err instanceof Error ? err.message : String(err)}`;
    this.#errors.log("error", { err }, "orphan reaping failed; looking again shortly", "pass failed");
    this.#wanted.clear();
    this.#owe("scan", performance.now() + FAILURE_RETRY_MS);
  }

  #takeWork(work: Work): boolean {
    return this.#wanted.delete(work);
  }

  /** Reads what the proc connector queued, and turns it into work; returns how many exits it named. */
  #drainExact(): number {
    const drained = this.#readExact();
    return drained ? this.#notices.add(drained.adoptedExits, drained.ownExits) : 0;
  }

  /** Reads what the proc connector queued; the exits it names are the caller's to queue or reap. */
  #readExact(): Drained | undefined {
    if (!this.#exact) return undefined;
    const drained = this.#exact.drain();
    this.#counts.malformed += drained.malformed + drained.forged;
    if (drained.forged > 0) this.#errors.log("warn", { forged: drained.forged }, "ignored proc connector messages not sent by the kernel");
    this.#drainedAll = !drained.more;
    if (drained.more) this.#wanted.add("exits");
    if (drained.overrun) {
      this.#counts.overruns += 1;
      this.#scanBy = "netlink";
      this.#wanted.add("scan");
    }
    return drained;
  }

  /**
   * The listener's work beside the proc connector: read it, and reap at once
   * (at most a batch) what it proves adopted, in the same synchronous step
   * as the read that went to the end: what src/adopted.ts relies on. Exits
   * read before and still queued go first, in a pass. True when every exit
   * read was reaped and no work is owed.
   */
  #readAndReapExits(now: number): boolean {
    const drained = this.#readExact();
    if (!drained) return false;
    const { adoptedExits, ownExits } = drained;
    this.#checkReparented(adoptedExits.length + ownExits.length, now);
    if (!this.#provenIsReaped || !this.#drainedAll || this.#notices.adoptedCount > 0) {
      this.#notices.add(adoptedExits, ownExits);
      return false;
    }
    const reapNow = adoptedExits.length <= ZOMBIES_PER_BATCH ? adoptedExits : adoptedExits.slice(0, ZOMBIES_PER_BATCH);
    const unreaped = this.#reapProven(reapNow, now);
    const left = reapNow === adoptedExits ? unreaped : [...unreaped, ...adoptedExits.slice(ZOMBIES_PER_BATCH)];
    if (left.length > 0 || ownExits.length > 0) this.#notices.add(left, ownExits);
    return left.length === 0 && ownExits.length === 0 && this.#wanted.size === 0;
  }

  /** SIGCHLD with no exit named: a zombie reparented to us after its exit event, or one whose EXIT is queued just after the signal. Peek now; beside exits, at most once a second. */
  #checkReparented(named: number, now: number): void {
    if (named === 0 || now - this.#lastReparentCheckAt >= REPARENT_CHECK_MS) {
      this.#lastReparentCheckAt = now;
      this.#scanBy = "netlink";
      this.#wanted.add("peek");
    } else if (!this.#timer.owes("peek")) {
      // Owed once until the timer hands it over, not asked for again on every exit.
      this.#owe("peek", this.#lastReparentCheckAt + REPARENT_CHECK_MS);
    }
  }

  /** One batch: by PID where the drain of this same step read to the end, judged otherwise and for what that leaves; true when more are left. */
  #reapAdoptedExits(): boolean {
    const batch = this.#notices.takeAdopted(ZOMBIES_PER_BATCH);
    const left = this.#drainedAll ? this.#reapProven(batch, performance.now()) : batch;
    if (left.length > 0) {
      const exits = new Map(left.map((exit) => [exit.pid, exit]));
      this.#judgeAndReap(exits.keys(), "netlink", exits);
    }
    return this.#notices.adoptedCount > 0;
  }

  /** Reaps by PID (src/adopted.ts) the exits of `batch` where no grace or veto applies (src/policy.ts: "adopted" is reaped at once); returns the rest. */
  #reapProven(batch: readonly ExitNotice[], now: number): readonly ExitNotice[] {
    if (!this.#provenIsReaped || !this.#exact || batch.length === 0) return batch;
    const wantsComm = this.#reporter.wantsComm;
    let left: ExitNotice[] | undefined;
    // Indexed: for-of makes an iterator, once per exit on the baseline tier.
    for (let i = 0; i < batch.length; i++) {
      const exit = batch[i]!;
      const reap = reapProvenAdopted(this.#libc, this.#exact, exit.pid, wantsComm);
      if (reap === "left") (left ??= []).push(exit);
      else if (reap !== "gone") this.#reporter.reaped(exit.pid, reap, "netlink", "adopted", exit.exitedAt, exit.exitedAt, now);
    }
    return left ?? NOTHING_LEFT;
  }

  /**
   * Reaps the zombies waitid names (src/peeks.ts); true when more may wait.
   * A zombie that stays hides the rest from the peek: the first time, look
   * again next turn (the runtime reaps its own within one); the second, scan
   * all children (at most once per BLOCKED_SCAN_INTERVAL_MS).
   */
  #peek(by: SourceName, forSignal: boolean): boolean {
    // Without the proc connector, no pidfd held by the runtime proves adoption where the runtime marks its children.
    const end = this.#peeks.run(by, forSignal, !this.#exact && this.#markProves, this.#judgeOne);
    // None left: the check owed would only cost a wakeup of its own.
    if (end.kind === "none-left") {
      this.#blockedBy = 0;
      this.#mergedSignalsCheck.cancel();
    } else if (end.kind === "blocked") {
      this.#blocked(end.pid, by);
    } else if (end.kind === "owed") {
      this.#mergedSignalsCheck.touch();
    } else {
      this.#scanBy = by;
      this.#wanted.add("peek");
    }
    return end.kind === "bound";
  }

  #blocked(pid: number, by: SourceName): void {
    const again = pid === this.#blockedBy;
    this.#blockedBy = pid;
    if (!again) return void setImmediate(() => this.#request("peek", by));
    const scanAt = this.#lastBlockedScanAt + BLOCKED_SCAN_INTERVAL_MS;
    if (performance.now() >= scanAt) {
      this.#lastBlockedScanAt = performance.now();
      this.#wanted.add("scan");
    } else {
      this.#owe("scan", scanAt);
    }
  }

  /** Every waitable child of the main thread, in batches. */
  async #scan(by: SourceName): Promise<void> {
    const children = await listOwnChildren(this.selfPid);
    const childSet = new Set(children);
    this.#judge.forgetExcept(childSet);
    this.#notices.forgetExcept(childSet);
    const waitable = children.filter((pid) => isChildWaitable(this.#libc, pid));
    for (let start = 0; start < waitable.length && !this.#stopped; start += ZOMBIES_PER_BATCH) {
      if (start > 0) await yieldToEventLoop();
      this.#judgeAndReap(waitable.slice(start, start + ZOMBIES_PER_BATCH), by);
    }
    this.#blockedBy = 0;
  }

  /** The one callback every run of peeks gets, rather than a closure made per SIGCHLD. */
  readonly #judgeOne = (pid: number, by: SourceName) => this.#judgeAndReap([pid], by);

  /** Pins, judges and reaps (src/judged-reap.ts); returns how many were reaped. */
  #judgeAndReap(pids: Iterable<number>, by: SourceName, exits?: ReadonlyMap<number, ExitNotice>): number {
    const batch = { by, exact: this.#exact, drain: () => void this.#drainExact(), exits, stopped: () => this.#stopped };
    const { reaped, vetoed } = this.#judged.reap(pids, batch);
    this.#counts.vetoed += vetoed;
    return reaped;
  }

  /** The timer, for the earliest due time: a pending zombie, an own child's grace. */
  #armTimer(): void {
    if (!this.#stopped) this.#timer.arm(Math.min(this.#judge.nextDueAt() ?? Infinity, this.#notices.ownDueAt()));
  }

  #owe(work: Work, at: number): void {
    if (!this.#stopped) this.#timer.owe(work, at);
  }

  #onDue(owed: readonly Work[], due: number): void {
    // Late by more than the threshold: the loop was blocked, the runtime could not reap.
    if (isLoopLate(due, performance.now())) this.#judge.noteLoopLate(performance.now());
    this.#scanBy = this.#exact ? "netlink" : "sigchld";
    for (const work of [...owed, "due" as const]) this.#wanted.add(work);
    this.#startRun();
  }

  /** Zombies whose grace or retry time has come, and own children nobody reaped within their grace. */
  #lookAtDue(): void {
    const now = performance.now();
    const dueExits = this.#notices.takeDueOwn(now);
    const pids = new Set([...dueExits.map((exit) => exit.pid), ...this.#judge.duePids(now)]);
    if (pids.size > 0) this.#judgeAndReap(pids, this.#exact ? "netlink" : "sigchld", new Map(dueExits.map((exit) => [exit.pid, exit])));
  }
}
