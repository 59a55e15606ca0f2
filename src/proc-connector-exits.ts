/**
 * The proc connector's way into the core: reads what the source queued,
 * counts what it could not use, keeps the exits it names
 * (src/exit-notices.ts), and reaps by PID those it proves adopted
 * (src/adopted.ts). What a pass must do after a read (read on, scan after
 * lost events) is the core's to decide from the drain this returns.
 */
import type { ExitNotices } from "./exit-notices.ts";
import { ZOMBIES_PER_BATCH } from "./judged-reap.ts";
import type { Libc } from "./libc.ts";
import type { RateLimitedLog } from "./log.ts";
import type { Reporter } from "./report.ts";
import type { Drained, NetlinkSource } from "./sources/netlink.ts";
import type { ExitNotice } from "./types.ts";
import { reapProvenExits } from "./adopted.ts";

export interface ProcConnectorExitsSettings {
  readonly libc: Libc;
  readonly errors: RateLimitedLog;
  readonly reporter: Reporter;
  readonly notices: ExitNotices;
  /** No grace rule everywhere and no veto: an exit proven adopted is reaped at once, without the judge. */
  readonly provenIsReaped: boolean;
}

export class ProcConnectorExits {
  readonly #settings: ProcConnectorExitsSettings;
  /** The last read went to the end of the socket (it did not stop at its bound). */
  #readToEnd = true;
  #malformed = 0;
  #overruns = 0;

  constructor(settings: ProcConnectorExitsSettings) {
    this.#settings = settings;
  }

  /** Whether the last read went to the end of the socket (true before any read). */
  get readToEnd(): boolean {
    return this.#readToEnd;
  }

  /** Messages malformed or not sent by the kernel, ignored. */
  get malformed(): number {
    return this.#malformed;
  }

  /** Reads that found events lost (ENOBUFS). */
  get overruns(): number {
    return this.#overruns;
  }

  /** Reads what the proc connector queued; the exits it names are the caller's to keep or reap. */
  read(source: NetlinkSource): Drained {
    const drained = source.drain();
    this.#malformed += drained.malformed + drained.forged;
    if (drained.forged > 0) this.#settings.errors.log("warn", { forged: drained.forged }, "ignored proc connector messages not sent by the kernel");
    if (drained.overrun) this.#overruns += 1;
    this.#readToEnd = !drained.more;
    return drained;
  }

  /** Keeps what a read named for the pass; returns how many exits it named. */
  keep(drained: Drained): number {
    return this.#settings.notices.add(drained.adoptedExits, drained.ownExits);
  }

  /**
   * Reaps at once (at most a batch) what `drained` proves adopted, in the
   * same synchronous step as the read that went to the end: what
   * src/adopted.ts relies on. Exits kept from before go first, in a pass, so
   * then this keeps them all. True when every exit read was reaped.
   */
  reapRead(source: NetlinkSource, drained: Drained, now: number): boolean {
    const { libc, reporter, notices, provenIsReaped } = this.#settings;
    const { adoptedExits, ownExits } = drained;
    if (!provenIsReaped || !this.#readToEnd || notices.adoptedCount > 0) {
      notices.add(adoptedExits, ownExits);
      return false;
    }
    const reapNow = adoptedExits.length <= ZOMBIES_PER_BATCH ? adoptedExits : adoptedExits.slice(0, ZOMBIES_PER_BATCH);
    const unreaped = reapProvenExits(libc, source, reporter, reapNow, now);
    const left = reapNow === adoptedExits ? unreaped : [...unreaped, ...adoptedExits.slice(ZOMBIES_PER_BATCH)];
    if (left.length > 0 || ownExits.length > 0) notices.add(left, ownExits);
    return left.length === 0 && ownExits.length === 0;
  }

  /**
   * One batch of the adopted exits kept: by PID where the last read went to
   * the end, and through `judgeAndReap` otherwise and for what that leaves.
   * True when more are left.
   */
  reapKeptBatch(source: NetlinkSource | undefined, judgeAndReap: (exits: ReadonlyMap<number, ExitNotice>) => void): boolean {
    const { libc, reporter, notices, provenIsReaped } = this.#settings;
    const batch = notices.takeAdopted(ZOMBIES_PER_BATCH);
    // Where no grace or veto applies (src/policy.ts: "adopted" is reaped at once).
    const left = source && provenIsReaped && this.#readToEnd ? reapProvenExits(libc, source, reporter, batch, performance.now()) : batch;
    if (left.length > 0) judgeAndReap(new Map(left.map((exit) => [exit.pid, exit])));
    return notices.adoptedCount > 0;
  }
}
