/**
 * The reaper core: every source funnels into it, so there is one policy and
 * one reap path. It finds our waitable zombies (from noticed exits, a waitid
 * peek, or a scan of all our children), pins them in batches, and hands each
 * batch to the judge (src/judge.ts), one pass at a time.
 */
import type { Logger } from "pino";
import { Judge } from "./judge.ts";
import type { Libc } from "./libc.ts";
import type { NormalizedOptions, ReapedProcess } from "./options.ts";
import { listOwnChildren, yieldToEventLoop } from "./procfs.ts";
import { isChildWaitable, peekWaitableChild, pinZombie, type PinnedZombie } from "./reap.ts";
import type { CoreCounter, EventSource, ExitNotice, ReaperCore, SourceName } from "./sources/source.ts";

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

  readonly #judge: Judge;
  #notices: ExitNotice[] = [];
  #scanQueued: SourceName | undefined;
  #draining = false;
  #stopped = false;

  constructor(settings: CoreSettings) {
    this.libc = settings.libc;
    this.logger = settings.logger;
    this.selfPid = settings.libc.getpid();
    this.#judge = new Judge({
      ...settings,
      selfPid: this.selfPid,
      counters: this.counters,
      forkedBySelf: (pid) => this.exactSource?.forkedBySelf?.(pid),
      onReaped: (reaped) => {
        this.lastActivityAt = performance.now();
        settings.onReaped?.(reaped);
      },
      onDue: () => this.#queueScan("sweep"),
    });
  }

  get pendingCount(): number {
    return this.#judge.pendingCount;
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
    this.#judge.stop();
    this.#notices = [];
  }

  /**
   * One pass at a time: noted exits first, then a queued scan. What arrives
   * during a pass waits for the next, so under load batches grow instead of
   * passes piling up (a scan reads every child's wait state).
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
    if (this.#judge.pendingCount === 0 && (await this.#reapPeeked(by))) return;
    const children = await listOwnChildren(this.selfPid);
    const waitable = children.filter((pid) => isChildWaitable(this.libc, pid));
    this.#judge.refresh(new Set(children), new Set(waitable));
    for (let start = 0; start < waitable.length && !this.#stopped; start += ZOMBIES_PER_PASS) {
      if (start > 0) await yieldToEventLoop();
      await this.#judge.judgeAndReap(this.#pin(waitable.slice(start, start + ZOMBIES_PER_PASS)), by);
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
      // Named twice: it stays (the runtime's, or vetoed), and hides the rest.
      const [zombie] = pid === previous ? [] : this.#pin([pid]);
      if (zombie === undefined) return false;
      await this.#judge.judgeAndReap([zombie], by);
      if (this.#judge.pendingCount > 0) return false;
      previous = pid;
    }
    return false;
  }

  async #reapNoticed(): Promise<void> {
    const notices = this.#notices.splice(0, ZOMBIES_PER_PASS);
    const exits = new Map(notices.map((notice) => [notice.pid, notice]));
    // A leader whose threads still run is not waitable: the scan that follows finds it later.
    await this.#judge.judgeAndReap(this.#pin([...exits.keys()]), "netlink", exits);
  }

  /** Those of `pids` that are waitable zombie children of ours, pinned; the judge releases them. */
  #pin(pids: readonly number[]): PinnedZombie[] {
    return pids.map((pid) => pinZombie(this.libc, this.selfPid, pid)).filter((zombie) => zombie !== undefined);
  }
}
