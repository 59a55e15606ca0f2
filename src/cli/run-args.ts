/**
 * `orphan-reaper run`'s arguments and their ORPHAN_REAPER_* environment
 * equivalents (a flag wins over its variable). Options end at the first
 * word that is not one, or at `--`: what follows is the command, so
 * `run sleep -g 1` passes `-g` to sleep. Not so tini: glibc's getopt
 * permutes, so `tini sleep -g 1` takes `-g` as its own and runs `sleep 1`
 * (hence its usage, `tini [OPTIONS] PROGRAM -- [ARGS]`).
 */
import { constants } from "node:os";
import type { Level } from "pino";
import type { LogFormat } from "./cli-log.ts";

export class UsageError extends Error {}

export interface RunOptions {
  readonly command: readonly string[];
  /** Signal the child's whole process group instead of the child alone (tini -g). */
  readonly group: boolean;
  /** How long descendants left behind get between SIGTERM and SIGKILL. */
  readonly graceMs: number;
  /** Exit codes of the command reported as 0 (tini -e). */
  readonly zeroExitCodes: readonly number[];
  /** Signal this process asks to get when its parent exits (tini -p), as a number. */
  readonly parentDeathSignal: number | undefined;
  readonly logLevel: Level;
  readonly logFormat: LogFormat | undefined;
}

export const DEFAULT_GRACE_MS = 5_000;
const LOG_LEVELS: readonly Level[] = ["fatal", "error", "warn", "info", "debug", "trace"];
const LOG_FORMATS: readonly LogFormat[] = ["json", "human"];
const MAX_EXIT_CODE = 255;

/** Each option: its flags, the variable that stands for it, and whether it takes a value. */
const OPTIONS = {
  group: { flags: ["-g", "--group"], env: "ORPHAN_REAPER_GROUP", takesValue: false },
  subreaper: { flags: ["-s", "--subreaper"], env: "ORPHAN_REAPER_SUBREAPER", takesValue: false },
  verbose: { flags: ["-v", "--verbose"], env: undefined, takesValue: false },
  graceMs: { flags: ["--grace-ms"], env: "ORPHAN_REAPER_GRACE_MS", takesValue: true },
  zeroExit: { flags: ["-e", "--expect-exit"], env: "ORPHAN_REAPER_EXPECT_EXIT", takesValue: true },
  parentDeath: { flags: ["-p", "--parent-death-signal"], env: "ORPHAN_REAPER_PARENT_DEATH_SIGNAL", takesValue: true },
  logFormat: { flags: ["--log-format"], env: "ORPHAN_REAPER_LOG_FORMAT", takesValue: true },
  logLevel: { flags: ["--log-level"], env: "ORPHAN_REAPER_LOG_LEVEL", takesValue: true },
} as const;
type OptionName = keyof typeof OPTIONS;

const BY_FLAG = new Map<string, OptionName>(
  Object.entries(OPTIONS).flatMap(([name, option]) => option.flags.map((flag) => [flag, name as OptionName])),
);

/**
 * The words before the command, split into option values (repeatable ones in
 * order). Short flags combine and take attached values as with getopt:
 * `-gv`, `-e143`.
 */
function splitOptions(args: readonly string[]): { given: Map<OptionName, string[]>; command: string[] } {
  const given = new Map<OptionName, string[]>();
  const words = [...args];
  let i = 0;
  for (; i < words.length; i++) {
    const word = words[i]!;
    if (word === "--") return { given, command: words.slice(i + 1) };
    if (!word.startsWith("-") || word === "-") break;
    const long = word.startsWith("--");
    const equals = long ? word.indexOf("=") : -1;
    const flag = long ? (equals === -1 ? word : word.slice(0, equals)) : word.slice(0, 2);
    const attached = long ? (equals === -1 ? undefined : word.slice(equals + 1)) : word.slice(2) || undefined;
    const name = BY_FLAG.get(flag);
    if (!name) throw new UsageError(`unknown option ${flag}`);
    let value = "1";
    if (OPTIONS[name].takesValue) {
      value = attached ?? words[++i]!;
      if (value === undefined) throw new UsageError(`${flag} needs a value`);
    } else if (attached !== undefined) {
      if (long) throw new UsageError(`${flag} takes no value`);
      words.splice(i + 1, 0, `-${attached}`); // the next short flags of the same word
    }
    given.set(name, [...(given.get(name) ?? []), value]);
  }
  return { given, command: words.slice(i) };
}

function parseBoolean(text: string, source: string): boolean {
  if (["1", "true", "yes", "on"].includes(text.toLowerCase())) return true;
  if (["0", "false", "no", "off", ""].includes(text.toLowerCase())) return false;
  throw new UsageError(`${source} must be 1 or 0, got ${JSON.stringify(text)}`);
}

function parseWholeNumber(text: string, source: string, max = Number.MAX_SAFE_INTEGER): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value > max) throw new UsageError(`${source} must be a whole number up to ${max}, got ${JSON.stringify(text)}`);
  return value;
}

/** A signal by name (SIGTERM, TERM, term) or number. */
export function parseSignal(text: string, source: string): number {
  if (/^\d+$/.test(text)) return parseWholeNumber(text, source, 64);
  const upper = text.toUpperCase();
  const signal = constants.signals[(upper.startsWith("SIG") ? upper : `SIG${upper}`) as NodeJS.Signals];
  if (signal === undefined) throw new UsageError(`${source}: unknown signal ${JSON.stringify(text)}`);
  return signal;
}

function oneOf<T extends string>(text: string, allowed: readonly T[], source: string): T {
  if (!(allowed as readonly string[]).includes(text)) throw new UsageError(`${source} must be one of ${allowed.join(", ")}, got ${JSON.stringify(text)}`);
  return text as T;
}

/** -v shows the start line and each reap (info), unless the level asked for shows more already. */
function verboseAtLeast(level: Level, verbose: boolean): Level {
  return verbose && LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf("info") ? "info" : level;
}

export function parseRunArgs(args: readonly string[], env: NodeJS.ProcessEnv = process.env): RunOptions {
  const { given, command } = splitOptions(args);
  if (command.length === 0) throw new UsageError("run needs a command");
  /** Every value given on the command line, else the variable's, else none; with where it came from. */
  const values = (name: OptionName): { values: string[]; source: string } => {
    const option = OPTIONS[name];
    const fromFlags = given.get(name);
    if (fromFlags) return { values: fromFlags, source: option.flags.at(-1)! };
    const fromEnv = option.env && env[option.env];
    return { values: fromEnv === undefined || fromEnv === "" ? [] : [fromEnv], source: option.env ?? "" };
  };
  const last = (name: OptionName) => {
    const { values: all, source } = values(name);
    return { value: all.at(-1), source };
  };
  const flag = (name: OptionName) => {
    const { value, source } = last(name);
    return value !== undefined && parseBoolean(value, source);
  };
  flag("subreaper"); // accepted, checked: the reaper always makes itself a subreaper when not PID 1
  const grace = last("graceMs");
  const zeroExit = values("zeroExit");
  const deathSignal = last("parentDeath");
  const format = last("logFormat");
  const level = last("logLevel");
  return {
    command,
    group: flag("group"),
    graceMs: grace.value === undefined ? DEFAULT_GRACE_MS : parseWholeNumber(grace.value, grace.source),
    // The variable may list several codes: "143,130".
    zeroExitCodes: zeroExit.values.flatMap((text) => text.split(",")).map((code) => parseWholeNumber(code.trim(), zeroExit.source, MAX_EXIT_CODE)),
    parentDeathSignal: deathSignal.value === undefined ? undefined : parseSignal(deathSignal.value, deathSignal.source),
    logLevel: verboseAtLeast(level.value === undefined ? "warn" : oneOf(level.value, LOG_LEVELS, level.source), flag("verbose")),
    logFormat: format.value === undefined ? undefined : oneOf(format.value, LOG_FORMATS, format.source),
  };
}
