/**
 * The daemon's config.json opt-in: { "daemon": { "reapOrphanedSubprocesses": true } }.
 * Off by default; a missing or malformed file means off, with one log line
 * saying why, and never a throw: start-up must not fail over a reaper.
 */
import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import { reaperLogger } from "./log.ts";

export interface ReaperConfig {
  readonly enabled: boolean;
  /** Why the reaper is on or off, for the start-up log line. */
  readonly reason: string;
}

export function readReaperConfig(path: string, logger?: Logger): ReaperConfig {
  const log = reaperLogger(logger);
  const off = (reason: string): ReaperConfig => {
    log.info({ path }, `orphan reaper off: ${reason}`);
    return { enabled: false, reason };
  };
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    return off(`cannot read config (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (err) {
    return off(`config is not valid JSON (${(err as Error).message})`);
  }
  const value = (config as { daemon?: { reapOrphanedSubprocesses?: unknown } } | null)?.daemon?.reapOrphanedSubprocesses;
  if (value === undefined) return off("daemon.reapOrphanedSubprocesses is not set");
  if (typeof value !== "boolean") return off(`daemon.reapOrphanedSubprocesses is ${JSON.stringify(value)}, not a boolean`);
  if (!value) return off("daemon.reapOrphanedSubprocesses is false");
  return { enabled: true, reason: "daemon.reapOrphanedSubprocesses is true" };
}
