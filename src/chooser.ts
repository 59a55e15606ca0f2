/**
 * Chooses the event source by evidence at start: netlink, then sigchld; the
 * sweep always runs underneath, and is the only source when neither serves.
 * Options can force one source or forbid some. The result is a plan (the
 * running primary, the companions wanted beside it, why each other source is
 * not in use, and which preferred source is worth probing again later) that
 * one place wires: src/source-wiring.ts.
 */
import type { Logger } from "pino";
import type { Core } from "./core.ts";
import { messageOf } from "./errno.ts";
import type { Libc } from "./libc.ts";
import type { NormalizedOptions } from "./options.ts";
import { probeNetlinkSource, type NetlinkSource } from "./sources/netlink.ts";
import { startSigchldSource } from "./sources/sigchld.ts";
import type { EventSource } from "./sources/source.ts";
import { SOURCE_NAMES, type SourceName } from "./types.ts";

export type EventDrivenSource = Exclude<SourceName, "sweep">;

/** What probes and sources are started with. */
export interface ProbeContext {
  readonly core: Core;
  readonly libc: Libc;
  readonly logger: Logger;
  /** Why no SIGCHLD listener may be added here (src/runtime/index.ts), or undefined: both event sources need one. */
  readonly sigchldNotOurs?: string;
}

export interface ProbeSettings {
  /** How long the probe may wait for its child to exit. */
  readonly timeoutMs: number;
}

/** The proc connector is drained by the core; SIGCHLD only wakes it. */
export type RunningSource =
  | { readonly name: "netlink"; readonly source: NetlinkSource }
  | { readonly name: "sigchld"; readonly source: EventSource };

/** A running source, or why it cannot serve here and whether a later probe might succeed (it failed for time). */
export type ProbeResult = { readonly ok: true; readonly running: RunningSource } | { readonly ok: false; readonly reason: string; readonly retryable: boolean };

export type Probe = (context: ProbeContext, options: NormalizedOptions, settings: ProbeSettings) => Promise<ProbeResult>;

export interface SourcePlan {
  /** The event-driven source, running, or undefined when only the sweep serves. */
  readonly primary: RunningSource | undefined;
  /** Sources to run beside the primary (SIGCHLD beside netlink). */
  readonly companions: readonly EventDrivenSource[];
  /** Why each source not in use is not. */
  readonly notChosen: Partial<Record<SourceName, string>>;
  /** What each source that runs beside the primary is there for. */
  readonly alongside: Partial<Record<SourceName, string>>;
  /** A source preferred to the primary whose probe failed for time: probe it again later. */
  readonly retry: EventDrivenSource | undefined;
}

/** The event sources in order of preference: SOURCE_NAMES less the sweep, which always runs. */
export const PREFERENCE: readonly EventDrivenSource[] = SOURCE_NAMES.filter((name): name is EventDrivenSource => name !== "sweep");

export const PROBES: Readonly<Record<EventDrivenSource, Probe>> = {
  netlink: async ({ libc, logger }, options, { timeoutMs }) => {
    const probe = await probeNetlinkSource(libc, logger, { selfTestTimeoutMs: timeoutMs, receiveBufferBytes: options.netlinkReceiveBufferBytes });
    return probe.ok ? { ok: true, running: { name: "netlink", source: probe.source } } : probe;
  },
  // PID 1 and child subreapers get SIGCHLD for adopted orphans with no privilege.
  sigchld: async ({ core }) => ({ ok: true, running: { name: "sigchld", source: startSigchldSource(core) } }),
};

/** Sources started beside a primary, never probed for it. */
export const COMPANION_STARTERS: Readonly<Partial<Record<EventDrivenSource, (core: Core) => EventSource>>> = {
  sigchld: startSigchldSource,
};

function refusal(name: SourceName, options: NormalizedOptions): string | undefined {
  if (options.disableSources.includes(name)) return "disabled by the disableSources option";
  if (options.source !== "auto" && options.source !== name) return `the source option asks for "${options.source}"`;
  return undefined;
}

/** A probe that throws (a spawn that failed) is a failed probe: the next source is tried. */
export async function runProbe(probe: Probe, context: ProbeContext, options: NormalizedOptions, settings: ProbeSettings): Promise<ProbeResult> {
  try {
    return await probe(context, options, settings);
  } catch (err) {
    return { ok: false, reason: `the probe failed: ${messageOf(err)}`, retryable: false };
  }
}

export async function chooseSources(
  context: ProbeContext,
  options: NormalizedOptions,
  probes: Readonly<Record<EventDrivenSource, Probe>> = PROBES,
): Promise<SourcePlan> {
  const notChosen: Partial<Record<SourceName, string>> = {};
  let retry: EventDrivenSource | undefined;
  for (const name of PREFERENCE) {
    // Netlink too: SIGCHLD wakes the core to read it.
    const refused = refusal(name, options) ?? context.sigchldNotOurs;
    if (refused) {
      notChosen[name] = refused;
      continue;
    }
    const result = await runProbe(probes[name], context, options, { timeoutMs: options.netlinkProbeTimeoutMs });
    if (result.ok) return { ...planAround(result.running, options, notChosen), retry };
    notChosen[name] = result.reason;
    if (result.retryable && retry === undefined) retry = name;
  }
  return { ...planAround(undefined, options, notChosen), retry };
}

/**
 * What runs beside `primary`. Beside netlink, SIGCHLD wakes the core, which
 * reads the proc connector on each; a SIGCHLD that no exit event explains (a
 * zombie reparented to us after its exit: test/netlink/reparent-race.test.ts)
 * leads to a peek.
 */
export function planAround(
  primary: RunningSource | undefined,
  options: NormalizedOptions,
  notChosenBefore: Partial<Record<SourceName, string>>,
): Omit<SourcePlan, "retry"> {
  const notChosen = { ...notChosenBefore };
  const alongside: Partial<Record<SourceName, string>> = {};
  const companions: EventDrivenSource[] = [];
  if (primary) {
    delete notChosen[primary.name];
    alongside.sweep =
      `runs underneath as the safety net: every ${options.sweepIntervalMs} ms after activity, ` +
      `backing off to ${options.sweepMaxIntervalMs} ms while nothing happens`;
  } else {
    alongside.sweep = `the only source: every ${options.sweepIntervalMs} ms`;
  }
  if (primary?.name === "netlink") {
    const refused = options.disableSources.includes("sigchld") ? "disabled by the disableSources option" : undefined;
    if (refused) notChosen.sigchld = refused;
    else {
      delete notChosen.sigchld;
      companions.push("sigchld");
      alongside.sigchld = "runs beside netlink: each SIGCHLD wakes the reaper to read the proc connector, and to peek for zombies reparented to us after their exit event";
    }
  }
  return { primary, companions, notChosen, alongside };
}
