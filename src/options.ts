/**
 * The public options, normalised once: defaults are applied here and nowhere
 * else, and an invalid value is rejected with a TypeError naming the option
 * and what it accepts (as execa does).
 */
import type { Logger } from "pino";
import type { MetricsRegistry } from "./metrics.ts";
import { SOURCE_NAMES, type ReapCandidate, type ReapedProcess, type SourceName } from "./types.ts";

export type SourceChoice = "auto" | SourceName;

export interface OrphanReaperOptions {
  /** Start at all. @default true */
  readonly enabled?: boolean;
  /** A pino logger; the reaper logs through `logger.child({ component: "orphan-reaper" })`. @default pino at info */
  readonly logger?: Logger;
  /** How long a zombie of unknown provenance stays before it is reaped. @default 2000 */
  readonly graceMs?: number;
  /** How often the /proc sweep (the safety net under every source) runs. @default 10000 */
  readonly sweepIntervalMs?: number;
  /**
   * Beside an event source, each sweep that follows no activity doubles the
   * wait before the next, up to this; any event or reap brings it back to
   * sweepIntervalMs. @default 300000
   */
  readonly sweepMaxIntervalMs?: number;
  /** Become a child subreaper when not PID 1. @default true */
  readonly subreaper?: boolean;
  /** Force one source ("netlink", "sigchld", "sweep") or choose by probing. @default "auto" */
  readonly source?: SourceChoice;
  /** Sources never to use. @default [] */
  readonly disableSources?: readonly SourceName[];
  /** Apply the grace rule even where provenance is proven. @default false */
  readonly alwaysGrace?: boolean;
  /** Log level of the per-reap line. @default "info" */
  readonly reapLogLevel?: "info" | "debug";
  /** How long the proc connector self-test waits for its own child's exit event. @default 100 */
  readonly netlinkProbeTimeoutMs?: number;
  /** Receive buffer for the proc connector socket, in bytes. @default 4194304 */
  readonly netlinkReceiveBufferBytes?: number;
  readonly onReap?: (reaped: ReapedProcess) => void;
  readonly shouldReap?: (candidate: ReapCandidate) => boolean;
  /** A prom-client Registry to export the reaper's metrics to; prom-client is loaded only then. */
  readonly metricsRegistry?: MetricsRegistry;
}

type OptionalOptions = "logger" | "onReap" | "shouldReap" | "metricsRegistry";

export type NormalizedOptions = Required<Omit<OrphanReaperOptions, OptionalOptions>> &
  Pick<OrphanReaperOptions, OptionalOptions>;

const SOURCE_CHOICES: readonly SourceChoice[] = ["auto", ...SOURCE_NAMES];

export const DEFAULT_OPTIONS = {
  enabled: true,
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

function invalid(name: string, expected: string, value: unknown): TypeError {
  return new TypeError(`orphan-reaper: option "${name}" must be ${expected}, got ${JSON.stringify(value) ?? String(value)}`);
}

function checkBoolean(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== "boolean") throw invalid(name, "a boolean", value);
}

function checkInteger(name: string, value: unknown, min: number): void {
  if (value !== undefined && !(Number.isInteger(value) && (value as number) >= min)) {
    throw invalid(name, `an integer >= ${min}`, value);
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

export function normalizeOptions(options: OrphanReaperOptions = {}): NormalizedOptions {
  if (typeof options !== "object" || options === null) throw invalid("options", "an object", options);
  const { enabled, graceMs, sweepIntervalMs, subreaper, source, disableSources, alwaysGrace } = options;
  checkBoolean("enabled", enabled);
  checkBoolean("subreaper", subreaper);
  checkBoolean("alwaysGrace", alwaysGrace);
  checkInteger("graceMs", graceMs, 0);
  checkInteger("sweepIntervalMs", sweepIntervalMs, 1);
  checkInteger("sweepMaxIntervalMs", options.sweepMaxIntervalMs, sweepIntervalMs ?? DEFAULT_OPTIONS.sweepIntervalMs);
  checkInteger("netlinkProbeTimeoutMs", options.netlinkProbeTimeoutMs, 1);
  checkInteger("netlinkReceiveBufferBytes", options.netlinkReceiveBufferBytes, 1024);
  checkOneOf("source", source, SOURCE_CHOICES);
  checkOneOf("reapLogLevel", options.reapLogLevel, ["info", "debug"]);
  if (disableSources !== undefined && !Array.isArray(disableSources)) {
    throw invalid("disableSources", "an array of source names", disableSources);
  }
  for (const name of disableSources ?? []) checkOneOf("disableSources", name, SOURCE_NAMES);
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
  return { ...DEFAULT_OPTIONS, ...defined } as NormalizedOptions;
}
