/**
 * The daemon's config.json opt-in: { "daemon": { "reapOrphanedSubprocesses": true } }.
 * Off by default. It never throws, never blocks and never reads much: the path
 * is opened non-blocking (a FIFO would block open(2) forever), must be a
 * regular file (/dev/zero never ends), and at most CONFIG_MAX_BYTES are read.
 * It logs nothing: pass the result as startOrphanReaper's `enabled`, and its
 * one "off" line carries the reason.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import type { StartDecision } from "./options.ts";

export type ReaperConfig = StartDecision;

/** A config.json is a few lines; a larger file is a wrong path. */
export const CONFIG_MAX_BYTES = 1024 * 1024;

/** Up to CONFIG_MAX_BYTES of a regular file, or why it cannot be the config. */
function readSmallRegularFile(path: string): { text: string } | { problem: string; missing?: true } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? { problem: "no config file", missing: true } : { problem: `cannot open config (${code ?? String(err)})` };
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return { problem: `config is not a regular file (${fileKind(stat)})` };
    // One byte past the limit tells a file that is too large, whatever its stat said.
    const buffer = Buffer.alloc(CONFIG_MAX_BYTES + 1);
    let length = 0;
    for (let read = -1; read !== 0 && length < buffer.length; length += read) {
      read = readSync(fd, buffer, length, buffer.length - length, null);
    }
    if (length > CONFIG_MAX_BYTES) return { problem: `config is larger than ${CONFIG_MAX_BYTES} bytes` };
    return { text: buffer.toString("utf8", 0, length) };
  } catch (err) {
    return { problem: `cannot read config (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
  } finally {
    closeSync(fd);
  }
}

function fileKind(stat: import("node:fs").Stats): string {
  if (stat.isDirectory()) return "a directory";
  if (stat.isFIFO()) return "a FIFO";
  if (stat.isCharacterDevice()) return "a character device";
  if (stat.isBlockDevice()) return "a block device";
  if (stat.isSocket()) return "a socket";
  return "not a file";
}

export function readReaperConfig(path: string): ReaperConfig {
  const off = (reason: string, failed = true): ReaperConfig => ({ enabled: false, reason: `${reason}: ${path}`, failed });
  const file = readSmallRegularFile(path);
  if ("problem" in file) return off(file.problem, !file.missing);
  let config: unknown;
  try {
    config = JSON.parse(file.text);
  } catch (err) {
    return off(`config is not valid JSON (${(err as Error).message})`);
  }
  const value = (config as { daemon?: { reapOrphanedSubprocesses?: unknown } } | null)?.daemon?.reapOrphanedSubprocesses;
  if (value === undefined) return off("daemon.reapOrphanedSubprocesses is not set", false);
  if (typeof value !== "boolean") return off(`daemon.reapOrphanedSubprocesses is ${JSON.stringify(value)}, not a boolean`);
  if (!value) return off("daemon.reapOrphanedSubprocesses is false", false);
  return { enabled: true, reason: `daemon.reapOrphanedSubprocesses is true: ${path}`, failed: false };
}
