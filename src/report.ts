/**
 * Reporting one reap: the internal record first (counts kept here, lifetimes
 * to metrics), then the log line, then the daemon's onReap. The user's
 * callback is kept apart: if it throws, the reap is still counted, and the
 * warning about it is rate-limited. This runs once per exit, mostly before the JIT
 * has compiled it, after the process slept: where nobody listens (no onReap,
 * the line's level off) no record object is built and pino is not asked.
 */
import type { Logger } from "pino";
import { RateLimitedLog } from "./log.ts";
import type { ReaperMetrics } from "./metrics.ts";
import { zeroBySource, type ReapedProcess, type ReapProvenance, type SourceName } from "./types.ts";
import type { ReapedZombie } from "./zombie.ts";

export interface ReportSettings {
  readonly logger: Logger;
  readonly reapLogLevel: "info" | "debug";
  readonly onReap?: (reaped: ReapedProcess) => void;
  /** The reaper's own record of each reap's lifetime (metrics); never throws. */
  readonly lifetimes?: Pick<ReaperMetrics, "recordLifetime">;
}

export class Reporter {
  readonly #settings: ReportSettings;
  readonly #warnings: RateLimitedLog;
  /** The logger's level when #logsReaps was last worked out: a level set on it or on its parent (which a pino child follows) shows here. */
  #levelVal = Number.NaN;
  /** Whether the logger writes the reap line: asked of pino only when the level has changed, not per reap. */
  #logsReaps = false;
  /** Whether anyone sees a reap's record: the log line or onReap. */
  #listened = false;
  #reaped = 0;
  readonly #reapedBySource = zeroBySource();
  #lastReapAt = -Infinity;

  constructor(settings: ReportSettings) {
    this.#settings = settings;
    this.#warnings = new RateLimitedLog(settings.logger);
  }

  /** When the last reap was made (performance.now() ms), or -Infinity. */
  get lastReapAt(): number {
    return this.#lastReapAt;
  }

  /** Reaps made so far, in all and by source (a copy). */
  counts(): { reaped: number; reapedBySource: Record<SourceName, number> } {
    return { reaped: this.#reaped, reapedBySource: { ...this.#reapedBySource } };
  }

  /** Whether anyone will see a reaped process's comm (so /proc/PID/stat is worth reading). */
  get wantsComm(): boolean {
    const { logger, reapLogLevel, onReap } = this.#settings;
    if (logger.levelVal !== this.#levelVal) {
      this.#levelVal = logger.levelVal;
      this.#logsReaps = logger.isLevelEnabled(reapLogLevel);
      this.#listened = this.#logsReaps || onReap !== undefined;
    }
    return this.#listened;
  }

  /**
   * A reap just made, in the wake that began at `reapedAt`: `exitedAt` when
   * the kernel told the exit, `firstSeenAt` when the reaper first saw the
   * zombie (performance.now() ms). Its comm is undefined when wantsComm said
   * nobody listens: then only the record is kept.
   */
  reaped(
    pid: number, reaped: ReapedZombie, source: SourceName, provenance: ReapProvenance,
    exitedAt: number | undefined, firstSeenAt: number, reapedAt: number,
  ): void {
    const lifetimeMs = exitedAt === undefined ? undefined : reapedAt - exitedAt;
    // Kept here, not called back: this runs once per exit, mostly before the JIT has compiled it.
    this.#reaped += 1;
    this.#reapedBySource[source] += 1;
    this.#lastReapAt = reapedAt;
    this.#settings.lifetimes?.recordLifetime(source, lifetimeMs ?? reapedAt - firstSeenAt);
    if (reaped.comm === undefined) return;
    // Fields written out, not spread.
    this.#report({
      pid,
      comm: reaped.comm,
      exitCode: reaped.exitCode,
      signal: reaped.signal,
      coreDumped: reaped.coreDumped,
      source,
      provenance,
      lifetimeMs,
      seenForMs: reapedAt - firstSeenAt,
    });
  }

  #report(reaped: ReapedProcess): void {
    const { logger, reapLogLevel, onReap } = this.#settings;
    if (this.#logsReaps) logger[reapLogLevel]({ orphan: reaped }, "reaped orphan");
    if (!onReap) return;
    try {
      onReap(reaped);
    } catch (err) {
      this.#warnings.log("warn", { err, orphan: { pid: reaped.pid } }, "onReap threw; the reaper carries on");
    }
  }
}
