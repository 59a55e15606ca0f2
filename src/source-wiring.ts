/**
 * The one place that wires sources to the core: it runs the chooser's plan
 * (the primary, its companions, the sweep underneath, and which source gives
 * the core exact provenance), and swaps the primary at run time. A preferred
 * source whose probe failed for time (a slow or busy host at start) is probed
 * again with backoff, each time with a longer timeout; when it serves, it
 * becomes the primary, the switch is logged and kept for stats().
 */
import type { Logger } from "pino";
import {
  COMPANION_STARTERS,
  planAround,
  PROBES,
  runProbe,
  type EventDrivenSource,
  type Probe,
  type ProbeContext,
  type RunningSource,
  type SourcePlan,
} from "./chooser.ts";
import type { NormalizedOptions } from "./options.ts";
import { startSweepSource } from "./sources/sweep.ts";
import type { EventSource } from "./sources/source.ts";
import type { SourceName } from "./types.ts";

/** First retry of a probe that failed for time, then doubling up to RETRY_MAX_DELAY_MS. */
export const RETRY_FIRST_DELAY_MS = 1_000;
const RETRY_MAX_DELAY_MS = 300_000;
/** The host was too slow for the probe's timeout: each retry allows this many times longer... */
const RETRY_TIMEOUT_GROWTH = 4;
/** ...up to this (or netlinkProbeTimeoutMs, if longer): stop() waits for a probe under way. */
const RETRY_TIMEOUT_MAX_MS = 10_000;

export interface SourceChange {
  /** Date.now() of the switch. */
  readonly at: number;
  readonly from: SourceName;
  readonly to: SourceName;
  readonly reason: string;
}

export interface ProbeRetry {
  readonly source: EventDrivenSource;
  /** Probes made again so far. */
  readonly attempts: number;
  /** Date.now() of the next probe. */
  readonly nextAt: number;
}

export class SourceWiring {
  readonly #context: ProbeContext;
  readonly #options: NormalizedOptions;
  readonly #log: Logger;
  readonly #probes: Readonly<Record<EventDrivenSource, Probe>>;
  readonly #running = new Map<SourceName, EventSource>();
  readonly #changes: SourceChange[] = [];
  #plan: SourcePlan;
  #retryAttempts = 0;
  #retryAt: number | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #retrying: Promise<void> | undefined;
  #stopped = false;

  constructor(context: ProbeContext, options: NormalizedOptions, plan: SourcePlan, probes = PROBES) {
    this.#context = context;
    this.#options = options;
    this.#log = context.logger;
    this.#plan = plan;
    this.#probes = probes;
    // The plan's primary runs already: stop() must stop it even if start() never runs or fails.
    if (plan.primary) this.#running.set(plan.primary.name, plan.primary.source);
  }

  /** Starts the companions and the sweep, and schedules the retry of a probe that failed for time. */
  start(): void {
    this.#wire(this.#plan);
    this.#scheduleRetry();
  }

  /** The primary source's name, or "sweep" when the sweep serves alone. */
  get source(): SourceName {
    return this.#plan.primary?.name ?? "sweep";
  }

  get notChosen(): SourcePlan["notChosen"] {
    return this.#plan.notChosen;
  }

  get alongside(): SourcePlan["alongside"] {
    return this.#plan.alongside;
  }

  get changes(): readonly SourceChange[] {
    return this.#changes;
  }

  get retry(): ProbeRetry | undefined {
    const source = this.#plan.retry;
    return source && this.#retryAt !== undefined ? { source, attempts: this.#retryAttempts, nextAt: this.#retryAt } : undefined;
  }

  /** Stops every source it runs, and any probe still being made. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    await this.#retrying;
    const running = [...this.#running.values()];
    this.#running.clear();
    await Promise.all(running.map((source) => source.stop()));
  }

  #wire(plan: SourcePlan): void {
    const { primary } = plan;
    if (primary) this.#running.set(primary.name, primary.source);
    for (const name of plan.companions) {
      const start = COMPANION_STARTERS[name];
      if (start && !this.#running.has(name)) this.#running.set(name, start(this.#context.core));
    }
    // The core drains the proc connector for exits and exact provenance.
    this.#context.core.useExactSource(primary?.name === "netlink" ? primary.source : undefined);
    this.#restartSweep(primary !== undefined);
  }

  /** Beside an event source the sweep may back off while nothing happens; alone it may not. */
  #restartSweep(besideEventSource: boolean): void {
    void this.#running.get("sweep")?.stop();
    const maxIntervalMs = besideEventSource ? this.#options.sweepMaxIntervalMs : undefined;
    this.#running.set("sweep", startSweepSource(this.#context.core, { intervalMs: this.#options.sweepIntervalMs, maxIntervalMs }));
  }

  #scheduleRetry(): void {
    if (this.#stopped || this.#plan.retry === undefined) return;
    const delayMs = Math.min(RETRY_FIRST_DELAY_MS * 2 ** this.#retryAttempts, RETRY_MAX_DELAY_MS);
    this.#retryAt = Date.now() + delayMs;
    const retry = () =>
      this.#retryProbe().catch((err) => this.#log.error({ err }, "probing a source again failed; the current source carries on"));
    this.#retryTimer = setTimeout(() => (this.#retrying = retry()), delayMs);
    // A retry must never keep the daemon alive on its own.
    this.#retryTimer.unref();
  }

  async #retryProbe(): Promise<void> {
    const name = this.#plan.retry;
    if (name === undefined) return;
    this.#retryAttempts += 1;
    const firstTimeoutMs = this.#options.netlinkProbeTimeoutMs;
    const timeoutMs = Math.min(firstTimeoutMs * RETRY_TIMEOUT_GROWTH ** this.#retryAttempts, Math.max(firstTimeoutMs, RETRY_TIMEOUT_MAX_MS));
    const result = await runProbe(this.#probes[name], this.#context, this.#options, { timeoutMs });
    if (this.#stopped) {
      if (result.ok) result.running.source.stop();
      return;
    }
    if (result.ok) return this.#switchTo(result.running, timeoutMs);
    const notChosen = { ...this.#plan.notChosen, [name]: result.reason };
    const retry = result.retryable ? name : undefined;
    this.#plan = { ...this.#plan, notChosen, retry };
    const attempts = this.#retryAttempts;
    if (retry) this.#log.debug({ source: name, attempts, reason: result.reason }, `${name} probe failed again for time; it will be retried`);
    else this.#log.info({ source: name, attempts, reason: result.reason }, `${name} probe failed for good; no more retries`);
    this.#scheduleRetry();
  }

  #switchTo(primary: RunningSource, timeoutMs: number): void {
    const from = this.source;
    const previous = this.#plan.primary;
    const plan = { ...planAround(primary, this.#options, this.#plan.notChosen), retry: undefined };
    if (previous && !plan.companions.includes(previous.name)) {
      this.#running.delete(previous.name);
      void previous.source.stop();
    }
    if (previous && previous.name !== primary.name) plan.notChosen[previous.name] ??= `${primary.name} serves now`;
    this.#plan = plan;
    this.#retryAt = undefined;
    this.#wire(plan);
    const reason = `the ${primary.name} probe succeeded on retry ${this.#retryAttempts} (timeout ${timeoutMs} ms)`;
    this.#changes.push({ at: Date.now(), from, to: primary.name, reason });
    this.#log.info({ from, to: primary.name, reason, alongside: plan.alongside }, `orphan reaper switched source: ${from} -> ${primary.name}`);
  }
}
