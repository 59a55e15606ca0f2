/**
 * The public options, normalised once: defaults are applied here and nowhere
 * else, and an invalid value is rejected with a TypeError naming the option
 * and what it accepts (as execa does).
 */
import type { Logger } from "pino";
import type { MetricsRegistry } from "./metrics.ts";
import { SOURCE_NAMES, type ReapCandidate, type ReapedProcess, type SourceName } from "./types.ts";

export type SourceChoice = "auto" | SourceName;

/** Whether to start, and why: what readReaperConfig returns, so the one "off" line carries the cause. */
export interface StartDecision {
  readonly enabled: boolean;
  readonly reason: string;
  /** True when off because something failed (an unreadable config): logged at warn, not info. */
  readonly failed: boolean;
}

export interface OrphanReaperOptions {
  /** Start at all: a boolean, or readReaperConfig(path) (its reason goes into the "off" line). @default true */
  readonly enabled?: boolean | StartDecision;
  /** A pino logger; the reaper logs through `logger.child({ component: "orphan-reaper" })`. @default pino at info */
  readonly logger?: Logger;
  /** How long a zombie of unknown provenance stays before it is reaped, at most 2^31-1. @default 2000 */
  readonly graceMs?: number;
  /** How often the /proc sweep (the safety net under every source) runs, at most 2^31-1. @default 10000 */
  readonly sweepIntervalMs?: number;
  /**
   * Beside an event source, each sweep that follows no activity doubles the
   * wait before the next, up to this (at most 2^31-1). @default 300000
   */
  readonly sweepMaxIntervalMs?: number;
  /** Become a child subreaper when not PID 1. @default true */
  readonly subreaper?: boolean;
  /** Force one source ("netlink", "sigchld", "sweep") or choose by probing. @default "auto" */
  readonly source?: SourceChoice;
  /** Event sources never to use ("netlink", "sigchld"; the sweep always runs). @default [] */
  readonly disableSources?: readonly SourceName[];
  /** Apply the grace rule even where provenance is proven. @default false */
  readonly alwaysGrace?: boolean;
  /** Log level of the per-reap line. @default "info" */
  readonly reapLogLevel?: "info" | "debug";
  /** How long the proc connector probe waits for the kernel's ack, then for its child's exit event; at most 60000. @default 100 */
  readonly netlinkProbeTimeoutMs?: number;
  /** Receive buffer for the proc connector socket, in bytes (a C int). @default 4194304 */
  readonly netlinkReceiveBufferBytes?: number;
  readonly onReap?: (reaped: ReapedProcess) => void;
  readonly shouldReap?: (candidate: ReapCandidate) => boolean;
  /** A prom-client Registry to export the reaper's metrics to; prom-client is loaded only then. */
  readonly metricsRegistry?: MetricsRegistry;
}

type OptionalOptions = "logger" | "onReap" | "shouldReap" | "metricsRegistry";

export type NormalizedOptions = Required<Omit<OrphanReaperOptions, OptionalOptions | "enabled">> &
  Pick<OrphanReaperOptions, OptionalOptions> & { readonly enabled: StartDecision };

const SOURCE_CHOICES: readonly SourceChoice[] = ["auto", ...SOURCE_NAMES];

/** setTimeout keeps its delay in a signed 32-bit int: a longer one fires after 1 ms (a busy loop). */
export const TIMER_MAX_MS = 2 ** 31 - 1;
/** Start-up waits for the probe: past a minute it is broken, not slow (slow probes are retried later). */
export const NETLINK_PROBE_MAX_MS = 60_000;
/** setsockopt(SO_RCVBUF[FORCE]) takes a C int; a larger number wraps (2^31 became 2304 bytes granted). */
const INT_MAX = 2 ** 31 - 1;

export const DEFAULT_OPTIONS = {
  enabled: { enabled: true, reason: "enabled by the enabled option", failed: false },
  graceMs: 2_000,
  sweepIntervalMs: 10_000,
  sweepMaxIntervalMs: 300_000,
  subreaper: true,
  source: "auto",
  disableSources: [],
  alwaysGrace: false,
  reapLogLevel: "info",
  netlinkProbeTimeoutMs: 100,
  netlinkReceiveBufferBytes: 4 * 1024 * 1024,
} as const satisfies NormalizedOptions;

const OPTION_NAMES: readonly string[] = [
  ...Object.keys(DEFAULT_OPTIONS),
  ...(["logger", "onReap", "shouldReap", "metricsRegistry"] satisfies OptionalOptions[]),
];

function formatValue(value: unknown): string {
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  return JSON.stringify(value) ?? String(value);
}

function invalid(name: string, expected: string, value: unknown): TypeError {
  return new TypeError(`orphan-reaper: option "${name}" must be ${expected}, got ${formatValue(value)}`);
}

function checkKnownKeys(options: object): void {
  for (const key of Object.keys(options)) {
    if (OPTION_NAMES.includes(key)) continue;
    const near = OPTION_NAMES.find((name) => name.toLowerCase() === key.toLowerCase());
    const hint = near ? `did you mean "${near}"?` : `known options: ${OPTION_NAMES.join(", ")}`;
    throw new TypeError(`orphan-reaper: unknown option "${key}" (${hint})`);
  }
}

function checkBoolean(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== "boolean") throw invalid(name, "a boolean", value);
}

function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (value !== undefined && !(Number.isInteger(value) && (value as number) >= min && (value as number) <= max)) {
    throw invalid(name, `an integer from ${min} to ${max}`, value);
  }
}

function checkOneOf(name: string, value: unknown, allowed: readonly string[]): void {
  if (value !== undefined && !allowed.includes(value as string)) {
    throw invalid(name, `one of ${allowed.map((v) => `"${v}"`).join(", ")}`, value);
  }
}

function checkFunction(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== "function") throw invalid(name, "a function", value);
}

function normalizeEnabled(enabled: OrphanReaperOptions["enabled"]): StartDecision {
  if (enabled === undefined) return DEFAULT_OPTIONS.enabled;
  if (typeof enabled === "boolean")
    return { enabled, reason: `${enabled ? "enabled" : "disabled"} by the enabled option`, failed: false };
  const { enabled: on, reason, failed } = (enabled ?? {}) as Partial<StartDecision>;
  if (typeof on !== "boolean" || typeof reason !== "string" || typeof failed !== "boolean") {
    throw invalid("enabled", "a boolean or what readReaperConfig returns", enabled);
  }
  return { enabled: on, reason, failed };
}

function checkSources(source: unknown, disableSources: unknown): void {
  checkOneOf("source", source, SOURCE_CHOICES);
  if (disableSources === undefined) return;
  if (!Array.isArray(disableSources)) throw invalid("disableSources", "an array of source names", disableSources);
  for (const name of disableSources) checkOneOf("disableSources", name, SOURCE_NAMES);
  if (disableSources.includes("sweep")) {
    throw invalid("disableSources", 'free of "sweep" (the sweep is the safety net under every source and always runs)', disableSources);
  }
  if (typeof source === "string" && disableSources.includes(source)) {
    throw invalid("disableSources", `free of "${source}", the source the source option asks for`, disableSources);
  }
}

export function normalizeOptions(options: OrphanReaperOptions = {}): NormalizedOptions {
  if (typeof options !== "object" || options === null) throw invalid("options", "an object", options);
  checkKnownKeys(options);
  const enabled = normalizeEnabled(options.enabled);
  checkBoolean("subreaper", options.subreaper);
  checkBoolean("alwaysGrace", options.alwaysGrace);
  checkInteger("graceMs", options.graceMs, 0, TIMER_MAX_MS);
  checkInteger("sweepIntervalMs", options.sweepIntervalMs, 1, TIMER_MAX_MS);
  const sweepIntervalMs = options.sweepIntervalMs ?? DEFAULT_OPTIONS.sweepIntervalMs;
  checkInteger("sweepMaxIntervalMs", options.sweepMaxIntervalMs, sweepIntervalMs, TIMER_MAX_MS);
  checkInteger("netlinkProbeTimeoutMs", options.netlinkProbeTimeoutMs, 1, NETLINK_PROBE_MAX_MS);
  checkInteger("netlinkReceiveBufferBytes", options.netlinkReceiveBufferBytes, 1024, INT_MAX);
  checkSources(options.source, options.disableSources);
  checkOneOf("reapLogLevel", options.reapLogLevel, ["info", "debug"]);
  checkFunction("onReap", options.onReap);
  checkFunction("shouldReap", options.shouldReap);
  const registry = options.metricsRegistry;
  if (registry !== undefined && (typeof registry?.registerMetric !== "function" || typeof registry.removeSingleMetric !== "function")) {
    throw invalid("metricsRegistry", "a prom-client Registry", "(not a registry)");
  }
  if (options.logger !== undefined && typeof options.logger?.child !== "function") {
    throw invalid("logger", "a pino logger", "(not a logger)");
  }
  const defined = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
  return { ...DEFAULT_OPTIONS, ...defined, enabled } as NormalizedOptions;
}
