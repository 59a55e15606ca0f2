/**
 * Chooses the event source by evidence at start: netlink, then sigchld; the
 * sweep always runs underneath at its slow interval, and is the only source
 * when neither serves. Options can force one source or forbid some; every
 * source not chosen gets its reason, for stats() and the start-up log line.
 */
import type { NormalizedOptions } from "./options.ts";
import { probeNetlinkSource } from "./sources/netlink.ts";
import { startSigchldSource } from "./sources/sigchld.ts";
import type { EventSource, ProbeResult, ReaperCore, SourceName } from "./sources/source.ts";

type EventDrivenSource = Exclude<SourceName, "sweep">;

export interface SourceChoice {
  /** The event-driven source, or undefined when only the sweep serves. */
  readonly primary: EventSource | undefined;
  /** Sources that run beside the primary one (SIGCHLD beside netlink). */
  readonly companions: readonly EventSource[];
  readonly source: SourceName;
  /** Why each source other than the chosen one is not in use. */
  readonly notChosen: Partial<Record<SourceName, string>>;
}

const PREFERENCE: readonly EventDrivenSource[] = ["netlink", "sigchld"];

const probes: Record<EventDrivenSource, (core: ReaperCore, options: NormalizedOptions) => Promise<ProbeResult>> = {
  netlink: (core, options) =>
    probeNetlinkSource(core, {
      selfTestTimeoutMs: options.netlinkProbeTimeoutMs,
      receiveBufferBytes: options.netlinkReceiveBufferBytes,
    }),
  // PID 1 and child subreapers get SIGCHLD for adopted orphans with no privilege.
  sigchld: async (core) => ({ ok: true, source: startSigchldSource(core) }),
};

function refusal(name: SourceName, options: NormalizedOptions): string | undefined {
  if (options.disableSources.includes(name)) return "disabled by the disableSources option";
  if (options.source !== "auto" && options.source !== name) return `the source option asks for "${options.source}"`;
  return undefined;
}

export async function chooseSource(core: ReaperCore, options: NormalizedOptions): Promise<SourceChoice> {
  const notChosen: Partial<Record<SourceName, string>> = {};
  for (const name of PREFERENCE) {
    const refused = refusal(name, options);
    if (refused) {
      notChosen[name] = refused;
      continue;
    }
    const result = await probes[name](core, options);
    if (result.ok) {
      notChosen.sweep =
        `runs underneath as the safety net: every ${options.sweepIntervalMs} ms after activity, ` +
        `backing off to ${options.sweepMaxIntervalMs} ms while nothing happens`;
      return { primary: result.source, source: name, notChosen, companions: companionsOf(name, core, options, notChosen) };
    }
    notChosen[name] = result.reason;
  }
  return { primary: undefined, source: "sweep", notChosen, companions: [] };
}

/**
 * Beside netlink, SIGCHLD stays on as a scan trigger: a zombie reparented to
 * us after its exit (its parent was killed with it) gets no proc event naming
 * us, only SIGCHLD (measured: test/netlink/reparent-race.test.ts).
 */
function companionsOf(
  name: EventDrivenSource,
  core: ReaperCore,
  options: NormalizedOptions,
  notChosen: Partial<Record<SourceName, string>>,
): EventSource[] {
  if (name !== "netlink") return [];
  if (options.disableSources.includes("sigchld")) {
    notChosen.sigchld = "disabled by the disableSources option";
    return [];
  }
  notChosen.sigchld = "runs beside netlink, for zombies reparented to us after their exit event";
  return [startSigchldSource(core)];
}
