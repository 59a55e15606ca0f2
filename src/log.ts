/**
 * The reaper's logger: the daemon's pino logger when given, else one of our
 * own; either way a child bound to { component: "orphan-reaper" }, as pino's
 * docs recommend for a library.
 */
import pino, { type Logger } from "pino";

export function reaperLogger(logger?: Logger): Logger {
  return (logger ?? pino({ level: process.env.ORPHAN_REAPER_LOG_LEVEL ?? "info" })).child({
    component: "orphan-reaper",
  });
}
