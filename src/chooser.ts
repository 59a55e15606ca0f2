/**
 * Chooses the event source by evidence at start: netlink, then sigchld; the
 * sweep always runs underneath, and is the only source when neither serves.
 * Options can force one source or forbid some. The result is a plan (the
 * running primary, the companions wanted beside it, why each other source is
 * not in use, and which preferred source is worth probing again later) that
 * one place wires: src/source-wiring.ts.
 */
import type { NormalizedOptions } from "./options.ts";
import { probeNetlinkSource } from "./sources/netlink.ts";
import { startSigchldSource } from "./sources/sigchld.ts";
import type { EventSource, ProbeResult, ReaperCore, SourceName } from "./sources/source.ts";

export type EventDrivenSource = Exclude<SourceName, "sweep">;

/** A failed probe says whether it failed for time (worth trying again) or for good. */
type ProbeFailure = Extract<ProbeResult, { ok: false }> & { readonly retryable?: boolean };

export interface ProbeSettings {
  /** How long the probe may wait for the kernel. */
  readonly timeoutMs: number;
}

export type Probe = (core: ReaperCore, options: NormalizedOptions, settings: ProbeSettings) => Promise<ProbeResult>;

export interface RunningSource {
  readonly name: EventDrivenSource;
  readonly source: EventSource;
}

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

export const PREFERENCE: readonly EventDrivenSource[] = ["netlink", "sigchld"];

export const PROBES: Readonly<Record<EventDrivenSource, Probe>> = {
  netlink: (core, options, { timeoutMs }) =>
    probeNetlinkSource(core, { selfTestTimeoutMs: timeoutMs, receiveBufferBytes: options.netlinkReceiveBufferBytes }),
  // PID 1 and child subreapers get SIGCHLD for adopted orphans with no privilege.
  sigchld: async (core) => ({ ok: true, source: startSigchldSource(core) }),
};

/** Sources started beside a primary, never probed for it. */
export const COMPANION_STARTERS: Readonly<Partial<Record<EventDrivenSource, (core: ReaperCore) => EventSource>>> = {
  sigchld: startSigchldSource,
};

function refusal(name: SourceName, options: NormalizedOptions): string | undefined {
  if (options.disableSources.includes(name)) return "disabled by the disableSources option";
  if (options.source !== "auto" && options.source !== name) return `the source option asks for "${options.source}"`;
  return undefined;
}

/** A probe that throws (a spawn that failed) is a failed probe: the next source is tried. */
export async function runProbe(probe: Probe, core: ReaperCore, options: NormalizedOptions, settings: ProbeSettings): Promise<ProbeResult & { readonly retryable?: boolean }> {
  try {
    return await probe(core, options, settings);
  } catch (err) {
    return { ok: false, reason: `the probe failed: ${err instanceof Error ? err.message : String(err)}` } satisfies ProbeFailure;
  }
}

export async function chooseSources(
  core: ReaperCore,
  options: NormalizedOptions,
  probes: Readonly<Record<EventDrivenSource, Probe>> = PROBES,
): Promise<SourcePlan> {
  const notChosen: Partial<Record<SourceName, string>> = {};
  let retry: EventDrivenSource | undefined;
  for (const name of PREFERENCE) {
    const refused = refusal(name, options);
    if (refused) {
      notChosen[name] = refused;
      continue;
    }
    const result = await runProbe(probes[name], core, options, { timeoutMs: options.netlinkProbeTimeoutMs });
    if (result.ok) return { ...planAround({ name, source: result.source }, options, notChosen), retry };
    notChosen[name] = result.reason;
    if (result.retryable && retry === undefined) retry = name;
  }
  return { ...planAround(undefined, options, notChosen), retry };
}

/**
 * What runs beside `primary`. Beside netlink, SIGCHLD stays on as a scan
 * trigger: a zombie reparented to us after its exit (its parent was killed
 * with it) gets no proc event naming us, only SIGCHLD
 * (measured: test/netlink/reparent-race.test.ts).
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
      alongside.sigchld = "runs beside netlink, for zombies reparented to us after their exit event";
    }
  }
  return { primary, companions, notChosen, alongside };
}
