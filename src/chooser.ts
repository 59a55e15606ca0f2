/**
 * Chooses the event source by evidence at start: netlink, then sigchld; the
 * sweep always runs underneath at its slow interval, and is the only source
 * when neither serves. Options can force one source or forbid some; every
 * source not chosen gets its reason, for stats() and the start-up log line.
 */
import type { NormalizedOptions } from "./options.ts";
import { startSigchldSource } from "./sources/sigchld.ts";
import type { EventSource, ProbeResult, ReaperCore, SourceName } from "./sources/source.ts";

type EventDrivenSource = "sigchld";

export interface SourceChoice {
  /** The event-driven source, or undefined when only the sweep serves. */
  readonly primary: EventSource | undefined;
  readonly source: SourceName;
  /** Why each source other than the chosen one is not in use. */
  readonly notChosen: Partial<Record<SourceName, string>>;
}

const PREFERENCE: readonly EventDrivenSource[] = ["sigchld"];

const probes: Record<EventDrivenSource, (core: ReaperCore, options: NormalizedOptions) => Promise<ProbeResult>> = {
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
      notChosen.sweep = `runs underneath every ${options.sweepIntervalMs} ms as the safety net`;
      for (const later of PREFERENCE.slice(PREFERENCE.indexOf(name) + 1)) {
        notChosen[later] ??= `${name} serves, which is preferred`;
      }
      return { primary: result.source, source: name, notChosen };
    }
    notChosen[name] = result.reason;
  }
  return { primary: undefined, source: "sweep", notChosen };
}
