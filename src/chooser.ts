/**
 * Chooses the event source by evidence at start: netlink, then sigchld; the
 * sweep always runs underneath at its slow interval, and is the only source
 * when neither serves. Options can force one source or forbid some; every
 * source not chosen gets its reason, for stats() and the start-up log line.
 * The plan it returns is wired in one place (src/index.ts).
 */
import type { Logger } from "pino";
import type { Libc } from "./libc.ts";
import type { NormalizedOptions } from "./options.ts";
import { probeNetlinkSource, type NetlinkSource } from "./sources/netlink.ts";
import type { SourceName } from "./types.ts";

export interface SourcePlan {
  readonly source: SourceName;
  /** The proc connector, when chosen: drained by the core on every SIGCHLD and sweep. */
  readonly exact: NetlinkSource | undefined;
  /** Whether SIGCHLD wakes the core (netlink and sigchld; not the sweep alone). */
  readonly sigchld: boolean;
  /** Why each source other than the chosen one is not in use, or how it serves beside it. */
  readonly notChosen: Partial<Record<SourceName, string>>;
}

function refusal(name: SourceName, options: NormalizedOptions): string | undefined {
  if (options.disableSources.includes(name)) return "disabled by the disableSources option";
  if (options.source !== "auto" && options.source !== name) return `the source option asks for "${options.source}"`;
  return undefined;
}

export async function chooseSource(libc: Libc, logger: Logger, options: NormalizedOptions): Promise<SourcePlan> {
  const notChosen: Partial<Record<SourceName, string>> = {};
  const sweepBeside =
    `runs underneath as the safety net: every ${options.sweepIntervalMs} ms after activity, ` +
    `backing off to ${options.sweepMaxIntervalMs} ms while nothing happens`;
  const netlinkRefused = refusal("netlink", options);
  if (netlinkRefused === undefined) {
    const probe = await probeNetlinkSource(libc, logger, {
      selfTestTimeoutMs: options.netlinkProbeTimeoutMs,
      receiveBufferBytes: options.netlinkReceiveBufferBytes,
    });
    if (probe.ok) {
      notChosen.sigchld = "its signal wakes the netlink source, which reads the proc connector on each";
      notChosen.sweep = sweepBeside;
      return { source: "netlink", exact: probe.source, sigchld: true, notChosen };
    }
    notChosen.netlink = probe.reason;
  } else {
    notChosen.netlink = netlinkRefused;
  }
  const sigchldRefused = refusal("sigchld", options);
  if (sigchldRefused === undefined) {
    // PID 1 and child subreapers get SIGCHLD for adopted orphans with no privilege.
    notChosen.sweep = sweepBeside;
    return { source: "sigchld", exact: undefined, sigchld: true, notChosen };
  }
  notChosen.sigchld = sigchldRefused;
  return { source: "sweep", exact: undefined, sigchld: false, notChosen };
}
