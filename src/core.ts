/**
 * The reaper core: every source funnels into it, so there is one policy and
 * one reap path. It finds waitable zombies of the main thread in the cheapest
 * way the situation allows; what is proven adopted is reaped at once
 * (src/adopted.ts), the rest is pinned and judged (src/judged-reap.ts). One
 * pass runs at a time; requests that arrive meanwhile join it. This file
 * decides which work a pass does, and when.
 *
 * The ways in, cheapest first:
 * - an exit the proc connector named: reaped by its PID right after the
 *   drain that read it, O(1) (src/proc-connector-exits.ts);
 * - a waitid peek (src/peeks.ts): on SIGCHLD without the proc connector, or
 *   with it when no exit named explains the signal (a zombie reparented to
 *   us after its exit, or an EXIT not queued yet: do_exit() notifies the
 *   parent before the proc connector): the kernel names one zombie;
 * - a scan of all our children: the sweep, an overrun, or a peek blocked by
 *   a zombie that stays (the runtime's, vetoed, in its grace window).
 */
import { DueTimer, QuietTimer } from "./due-timer.ts";
import { messageOf } from "./errno.ts";
import { ExitNotices } from "./exit-notices.ts";
import { Judge, vetoOnThrow, type JudgeSettings } from "./judge.ts";
import { JudgedReaper, type Batch } from "./judged-reap.ts";
import type { Libc } from "./libc.ts";
import { RateLimitedLog } from "./log.ts";
import { MERGED_SIGNALS_CHECK_MS, ZombiePeeks } from "./peeks.ts";
import { isLoopLate } from "./policy.ts";
import { yieldToEventLoop } from "./procfs.ts";
import { ProcConnectorExits } from "./proc-connector-exits.ts";
import { Reporter, type ReportSettings } from "./report.ts";
import { RuntimePidfdLook } from "./runtime-pidfds.ts";
import type { Drained, NetlinkSource } from "./sources/netlink.ts";
import type { ExitNotice, ReaperCounts, SourceName } from "./types.ts";

/** Beside the proc connector, how often SIGCHLD that came with exits is checked for a reparented zombie. */
const REPARENT_CHECK_MS = 1_000;
/** After a failed pass (say /proc unreadable), look again after this. */
const FAILURE_RETRY_MS = 1_000;

/** What the judge and the reporter need, and the libc seam. */
export interface CoreSettings extends JudgeSettings, ReportSettings {
  readonly libc: Libc;
}

/** What a pass does: drain the proc connector, peek for one zombie (a SIGCHLD) or all, scan all children, look at zombies whose time is due. */
type Work = "exits" | "signal" | "peek" | "scan" | "due";

export class Core {
  readonly selfPid: number;
  readonly #errors: RateLimitedLog;
  readonly #judge: Judge;
  readonly #reporter: Reporter;
  readonly #runtimeLook: RuntimePidfdLook;
  readonly #judged: JudgedReaper;
  /** No grace or veto applies, and the runtime marks every child it spawns with a pidfd (probed at start): without the proc connector, no pidfd held proves adoption. */
  readonly #markProves: boolean;
  #failures = 0;
  /** No timed pass before this after a failure: a zombie whose due time has passed would otherwise retry at once, in a loop. */
  #retryAt = -Infinity;
  /** The proc connector source whose events give exact provenance and exit notices; undefined for none. */
  #exact: NetlinkSource | undefined;
  readonly #exits: ProcConnectorExits;
  readonly #notices: ExitNotices;
  readonly #wanted = new Set<Work>();
  #scanBy: SourceName = "sweep";
  #lastReparentCheckAt = -Infinity;
  readonly #peeks: ZombiePeeks;
  /** The empty peek a SIGCHLD's run owes (src/peeks.ts), made if no SIGCHLD makes it first. */
  readonly #mergedSignalsCheck = new QuietTimer(MERGED_SIGNALS_CHECK_MS, () => this.#request("peek", "sigchld"));
  #running = false;
  #stopped = false;
  /** Zombies and own exits due, and work deferred: a reparent check, a rate-limited scan, a retry after a failure. */
  readonly #timer = new DueTimer<Work>((owed, due) => this.#onDue(owed, due));
  #problem: string | undefined;
  #lastSignalAt = -Infinity;
  lastSweepAt: number | undefined;

  constructor(settings: CoreSettings) {
    this.#errors = new RateLimitedLog(settings.logger);
    this.selfPid = settings.libc.getpid();
    this.#notices = new ExitNotices(settings.graceMs);
    // No grace rule everywhere (alwaysGrace) and no veto (shouldReap): a zombie proven adopted is reaped at once, without the judge.
    const provenIsReaped = !settings.alwaysGrace && settings.shouldReap === undefined;
    this.#markProves = provenIsReaped && settings.runtimeMarksChildrenWithPidfd;
    const { shouldReap } = settings;
    this.#judge = new Judge({ ...settings, shouldReap: shouldReap && vetoOnThrow(shouldReap, this.#errors) });
    this.#runtimeLook = new RuntimePidfdLook(settings.libc);
    this.#reporter = new Reporter(settings);
    this.#peeks = new ZombiePeeks({ libc: settings.libc, runtimeLook: this.#runtimeLook, reporter: this.#reporter });
    this.#judged = new JudgedReaper({
      libc: settings.libc, selfPid: this.selfPid, logger: settings.logger, judge: this.#judge,
      runtimeLook: this.#runtimeLook, reporter: this.#reporter, notices: this.#notices,
    });
    this.#exits = new ProcConnectorExits({
      libc: settings.libc, errors: this.#errors, reporter: this.#reporter, notices: this.#notices, provenIsReaped,
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
    const { overruns, malformed } = this.#exits;
    return { ...this.#reporter.counts(), overruns, malformed, vetoed: this.#judged.vetoed, failures: this.#failures };
  }

  /** When a SIGCHLD last came or a zombie was last reaped (performance.now() ms): the sweep backs off while neither happens. */
  get lastActivityAt(): number {
    return Math.max(this.#lastSignalAt, this.#reporter.lastReapAt);
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
    this.#lastSignalAt = performance.now();
    if (this.#running || this.#stopped) return this.#request(this.#exact ? "exits" : "signal", "sigchld");
    let settled = false;
    try {
      if (this.#exact) {
        // Beside the proc connector: read it, and reap at once what it proves adopted.
        const drained = this.#readExact(this.#exact);
        // Read after the read, not at the signal: an exit it names may be later than the signal.
        const now = performance.now();
        this.#checkReparented(drained.adoptedExits.length + drained.ownExits.length, now);
        settled = this.#exits.reapRead(this.#exact, drained, now) && this.#wanted.size === 0;
      } else if (this.#peek("sigchld", true)) {
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
        if (this.#notices.adoptedCount > 0) more = this.#exits.reapKeptBatch(this.#exact, this.#judgeExits);
        else if (this.#takeWork("scan")) await this.#scan(this.#scanBy);
        else if (this.#takeWork("due")) this.#judged.reapDue(performance.now(), this.#batch(this.#exact ? "netlink" : "sigchld"));
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
    this.#failures += 1;
    this.#problem = `reaping failed: ${messageOf(err)}`;
    this.#errors.log("error", { err }, "orphan reaping failed; looking again shortly", "pass failed");
    this.#wanted.clear();
    this.#retryAt = performance.now() + FAILURE_RETRY_MS;
    this.#owe("scan", this.#retryAt);
  }

  #takeWork(work: Work): boolean {
    return this.#wanted.delete(work);
  }

  /** Reads what the proc connector queued, and keeps it as work; returns how many exits it named. */
  #drainExact(): number {
    return this.#exact ? this.#exits.keep(this.#readExact(this.#exact)) : 0;
  }

  /** Reads what the proc connector queued, and asks for the work that leaves; the exits it names are the caller's to keep or reap. */
  #readExact(source: NetlinkSource): Drained {
    const drained = this.#exits.read(source);
    // Read long after the kernel stamped it: the loop was blocked, and the runtime could not reap its own meanwhile.
    const stampedAt = Math.min(drained.adoptedExits[0]?.exitedAt ?? Infinity, drained.ownExits[0]?.exitedAt ?? Infinity);
    if (stampedAt !== Infinity) {
      const now = performance.now();
      if (isLoopLate(stampedAt, now)) this.#judge.noteLoopLate(now);
    }
    if (drained.more) this.#wanted.add("exits");
    if (drained.overrun) {
      this.#scanBy = "netlink";
      this.#wanted.add("scan");
    }
    return drained;
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

  /** Reaps the zombies waitid names (src/peeks.ts), and asks for what its end leaves to do; true when more may wait. */
  #peek(by: SourceName, forSignal: boolean): boolean {
    // Without the proc connector, no pidfd held by the runtime proves adoption where the runtime marks its children.
    const end = this.#peeks.run(by, forSignal, !this.#exact && this.#markProves, this.#judgeOne);
    // None left: the check owed would only cost a wakeup of its own.
    if (end.kind === "none-left") {
      this.#mergedSignalsCheck.cancel();
    } else if (end.kind === "blocked") {
      setImmediate(() => this.#request("peek", by));
    } else if (end.kind === "scan") {
      if (end.at === undefined) this.#wanted.add("scan");
      else this.#owe("scan", end.at);
    } else if (end.kind === "owed") {
      this.#mergedSignalsCheck.touch();
    } else {
      this.#scanBy = by;
      this.#wanted.add("peek");
    }
    return end.kind === "bound";
  }

  /** Every waitable child of the main thread, judged and reaped in batches. */
  async #scan(by: SourceName): Promise<void> {
    await this.#judged.scan(this.#batch(by));
    this.#peeks.scanned();
  }

  // The callbacks the judged path gets, made once rather than per SIGCHLD or batch.
  readonly #judgeOne = (pid: number, by: SourceName) => this.#judged.reap([pid], this.#batch(by));
  readonly #judgeExits = (exits: ReadonlyMap<number, ExitNotice>) => void this.#judged.reap(exits.keys(), this.#batch("netlink", exits));
  readonly #drainForBatch = () => {
    this.#drainExact();
    return this.#exits.readToEnd;
  };
  readonly #isStopped = () => this.#stopped;

  /** What the judged path (src/judged-reap.ts) works with: who found the zombies, the proc connector, the exits known. */
  #batch(by: SourceName, exits?: ReadonlyMap<number, ExitNotice>): Batch {
    return { by, exact: this.#exact, drain: this.#drainForBatch, exits, stopped: this.#isStopped };
  }

  /** The timer, for the earliest due time (a pending zombie, an own child's grace), and not before a retry's. */
  #armTimer(): void {
    const dueAt = Math.min(this.#judge.nextDueAt() ?? Infinity, this.#notices.ownDueAt());
    if (!this.#stopped) this.#timer.arm(Math.max(dueAt, this.#retryAt));
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
}
