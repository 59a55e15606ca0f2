/**
 * Reporting one reap: the internal record first (counters, lifetimes,
 * activity), then the log line, then the daemon's onReap. The user's callback
 * is kept apart: if it throws, the reap is still counted, and the warning
 * about it is rate-limited.
 */
import type { Logger } from "pino";
import { RateLimitedLog } from "./log.ts";
import type { ReapedProcess, ReapProvenance, SourceName } from "./types.ts";
import type { ExitStatus } from "./zombie.ts";

export interface ReportSettings {
  readonly logger: Logger;
  readonly reapLogLevel: "info" | "debug";
  readonly onReap?: (reaped: ReapedProcess) => void;
  /** The reaper's own bookkeeping; never throws. */
  readonly record: (reaped: ReapedProcess) => void;
}

export class Reporter {
  readonly #settings: ReportSettings;
  readonly #warnings: RateLimitedLog;

  constructor(settings: ReportSettings) {
    this.#settings = settings;
    this.#warnings = new RateLimitedLog(settings.logger);
  }

  /** Whether anyone will see a reaped process's comm (so /proc/PID/stat is worth reading). */
  get wantsComm(): boolean {
    return this.#settings.onReap !== undefined || this.#settings.logger.isLevelEnabled(this.#settings.reapLogLevel);
  }

  /** A reap just made: `exitedAt` when the kernel told the exit, `firstSeenAt` when the reaper first saw the zombie (performance.now() ms). */
  reaped(pid: number, comm: string, exit: ExitStatus, source: SourceName, provenance: ReapProvenance, exitedAt: number | undefined, firstSeenAt: number): void {
    const reapedAt = performance.now();
    // Fields written out, not spread: this runs once per exit, mostly before the JIT has compiled it.
    this.#report({
      pid,
      comm,
      exitCode: exit.exitCode,
      signal: exit.signal,
      coreDumped: exit.coreDumped,
      source,
      provenance,
      lifetimeMs: exitedAt === undefined ? undefined : reapedAt - exitedAt,
      seenForMs: reapedAt - firstSeenAt,
    });
  }

  #report(reaped: ReapedProcess): void {
    const { logger, reapLogLevel, onReap, record } = this.#settings;
    record(reaped);
    // Checked first: the line's fields are not built at a level nobody listens to.
    if (logger.isLevelEnabled(reapLogLevel)) logger[reapLogLevel]({ orphan: reaped }, "reaped orphan");
    if (!onReap) return;
    try {
      onReap(reaped);
    } catch (err) {
      this.#warnings.log("warn", { err, orphan: { pid: reaped.pid } }, "onReap threw; the reaper carries on");
    }
  }
}
