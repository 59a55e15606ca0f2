/**
 * The reaper's logger: the daemon's pino logger when given, else one of our
 * own; either way a child bound to { component: "orphan-reaper" }, as pino's
 * docs recommend for a library. Lines on hot paths go through a rate limit.
 */
import pino, { type Logger } from "pino";

export function reaperLogger(logger?: Logger): Logger {
  return (logger ?? pino({ level: process.env.ORPHAN_REAPER_LOG_LEVEL ?? "info" })).child({
    component: "orphan-reaper",
  });
}

/** How long a repeated warning or error stays quiet after it was logged. */
export const REPEAT_QUIET_MS = 10_000;

/**
 * Logs the first line of each kind, then at most one per `quietMs`, carrying
 * how many were suppressed meanwhile: an error on every event (a full fd
 * table, an unreadable /proc) must not flood the daemon's log.
 */
export class RateLimitedLog {
  readonly #logger: Logger;
  readonly #quietMs: number;
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(logger: Logger, quietMs = REPEAT_QUIET_MS) {
    this.#logger = logger;
    this.#quietMs = quietMs;
  }

  /** `kind` groups lines that repeat (usually the message itself). */
  log(level: "warn" | "error", fields: Record<string, unknown>, message: string, kind = message): void {
    const now = performance.now();
    const last = this.#last.get(kind);
    if (last && now - last.at < this.#quietMs) {
      last.suppressed += 1;
      return;
    }
    const suppressed = last?.suppressed ?? 0;
    this.#last.set(kind, { at: now, suppressed: 0 });
    this.#logger[level](suppressed > 0 ? { ...fields, suppressed } : fields, message);
  }
}
