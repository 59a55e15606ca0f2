/**
 * The command line's logger: pino lines on stderr, as JSON when stderr is not
 * a terminal (or when asked), as short human lines on a terminal. Written
 * synchronously: the last lines must be out before process.exit. A line that
 * cannot be written is dropped: an init must not die of its log. No `pid`
 * or `hostname` base fields: each line names the processes it is about itself.
 */
import { writeSync } from "node:fs";
import pino, { type DestinationStream, type Level, type Logger } from "pino";

export type LogFormat = "json" | "human";

const STDERR = 2;
/** Fields every line has; the human form shows them its own way. */
const FRAME_FIELDS = new Set(["level", "time", "msg", "component"]);

function formatValue(value: unknown): string {
  return typeof value === "string" && !/\s/.test(value) ? value : JSON.stringify(value);
}

/** One pino JSON line as `orphan-reaper: [warn] message key=value ...`. */
export function humanLine(json: string): string {
  const record = JSON.parse(json) as Record<string, unknown>;
  const level = pino.levels.labels[record.level as number] ?? String(record.level);
  const fields = Object.entries(record)
    .filter(([key]) => !FRAME_FIELDS.has(key))
    .map(([key, value]) => ` ${key}=${formatValue(value)}`)
    .join("");
  const tag = level === "info" ? "" : `[${level}] `;
  return `orphan-reaper: ${tag}${record.msg ?? ""}${fields}\n`;
}

/** EPIPE (a pipe nobody reads), EIO (a terminal hung up), EAGAIN (a full non-blocking pipe): the line is lost, nothing else. */
function writeOrDrop(text: string): void {
  try {
    writeSync(STDERR, text);
  } catch {
    // dropped
  }
}

export function cliLogger(level: Level, format: LogFormat): Logger {
  const destination: DestinationStream = { write: (line: string) => writeOrDrop(format === "json" ? line : humanLine(line)) };
  return pino({ level, base: null }, destination);
}

/** JSON unless stderr is a terminal. */
export function defaultLogFormat(): LogFormat {
  return process.stderr.isTTY ? "human" : "json";
}
