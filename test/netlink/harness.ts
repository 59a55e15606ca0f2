/**
 * A netlink source on the real kernel for tests, without the core: a test
 * drains it itself and keeps what every drain found, and reaps what it wants
 * through the real pin-and-reap primitive.
 */
import pino from "pino";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { loadLibc } from "../../src/runtime/index.ts";
import { probeNetlinkSource, type Drained, type NetlinkSettings, type NetlinkSource } from "../../src/sources/netlink.ts";
import {
  CN_MSG_SIZE,
  EXIT_PARENT_PID,
  EXIT_PARENT_TGID,
  EXIT_PROCESS_PID,
  EXIT_PROCESS_TGID,
  FORK_CHILD_PID,
  FORK_CHILD_TGID,
  FORK_PARENT_PID,
  FORK_PARENT_TGID,
  NLMSG_HDRLEN,
  NLMSG_PID,
  PROC_EVENT_DATA,
} from "../../src/netlink/constants.ts";
import type { ExitNotice } from "../../src/types.ts";
import capturedEvents from "../fixtures/proc-events.json";
import { pinZombie, reapZombie, releaseZombies, type ExitStatus } from "../../src/zombie.ts";
import { waitUntil } from "../helpers/processes.ts";
import { scaled } from "../helpers/time.ts";

export { waitUntil as until } from "../helpers/processes.ts";

export const DEFAULT_SETTINGS: NetlinkSettings = { selfTestTimeoutMs: 10_000, receiveBufferBytes: 4 * 1024 * 1024 };
/** For a whole reaper on netlink: long enough for the probe on a busy machine (these tests are not about its speed). */
export const PROBE_TIMEOUT_MS = scaled(5_000);
/** For a beforeAll that runs a probe: more than the probe may take. */
export const PROBE_HOOK_TIMEOUT_MS = scaled(20_000);

/** Everything the drains of one source have found. */
export class DrainLog {
  readonly adopted: ExitNotice[] = [];
  readonly own: ExitNotice[] = [];
  overruns = 0;
  malformed = 0;
  forged = 0;
  readonly logs: { level: number; msg: string; [key: string]: unknown }[] = [];
  readonly source: NetlinkSource;

  constructor(source: NetlinkSource) {
    this.source = source;
  }

  drain(): Drained {
    const drained = this.source.drain();
    this.adopted.push(...drained.adoptedExits);
    this.own.push(...drained.ownExits);
    this.overruns += drained.overrun ? 1 : 0;
    this.malformed += drained.malformed;
    this.forged += drained.forged;
    return drained;
  }

  /** Drains every 5 ms until `condition` holds (no process is started). */
  drainUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    return waitUntil(() => {
      this.drain();
      return condition();
    }, timeoutMs);
  }
}

/** A subscribed netlink source with its drain log; we become a child subreaper. */
export async function startDrainLog(settings: Partial<NetlinkSettings> = {}): Promise<DrainLog> {
  const libc = loadLibc();
  libc.setChildSubreaper(true);
  const logs: DrainLog["logs"] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const probe = await probeNetlinkSource(libc, logger, { ...DEFAULT_SETTINGS, ...settings });
  if (!probe.ok) throw new Error(`netlink probe failed: ${probe.reason}`);
  const log = new DrainLog(probe.source);
  log.logs.push(...logs);
  logs.length = 0;
  // Later lines land in the log too.
  Object.defineProperty(log, "logs", { value: logs });
  return log;
}

/** Reaps one zombie child of ours through the real primitive; undefined when it is not one (yet). */
export function reapChild(pid: number): ExitStatus | undefined {
  const libc = loadLibc();
  const zombie = pinZombie(libc, process.pid, pid);
  if (!zombie) return undefined;
  try {
    const outcome = reapZombie(libc, process.pid, zombie);
    return outcome.kind === "reaped" ? { exitCode: outcome.exitCode, signal: outcome.signal, coreDumped: outcome.coreDumped } : undefined;
  } finally {
    releaseZombies(libc, [zombie]);
  }
}

export function netlinkSocketFds(): Map<string, string> {
  // /proc/net/netlink lists every netlink socket of the namespace; column 10 is the inode.
  const netlinkInodes = new Set(
    readFileSync("/proc/self/net/netlink", "utf8")
      .trim()
      .split("\n")
      .slice(1)
      .map((line) => line.trim().split(/\s+/)[9]),
  );
  const held = new Map<string, string>();
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1];
      if (inode && netlinkInodes.has(inode)) held.set(fd, inode);
    } catch {
      // closed while we listed
    }
  }
  return held;
}

const EVENT_DATA = NLMSG_HDRLEN + CN_MSG_SIZE + PROC_EVENT_DATA;

/** A datagram the kernel sent (captured), rewritten: `fields` are event-data offsets and their new values. */
function rewrittenCapture(hex: string, fields: readonly (readonly [number, number])[]): Uint8Array {
  const bytes = Uint8Array.from(Buffer.from(hex, "hex"));
  const view = new DataView(bytes.buffer);
  view.setUint32(NLMSG_PID, 0, true); // the header says the kernel sent it (it did, before the rewrite)
  for (const [offset, value] of fields) view.setInt32(EVENT_DATA + offset, value, true);
  return bytes;
}

/** A real EXIT event, rewritten to say `pid`, a child of `parent`, exited. */
export function capturedExitOf(pid: number, parent = process.pid): Uint8Array {
  return rewrittenCapture(capturedEvents.exit3.hex, [[EXIT_PROCESS_PID, pid], [EXIT_PROCESS_TGID, pid], [EXIT_PARENT_PID, parent], [EXIT_PARENT_TGID, parent]]);
}

/** A real FORK event, rewritten to say `parent` forked `child`. */
export function capturedForkOf(parent: number, child: number): Uint8Array {
  return rewrittenCapture(capturedEvents.forkOfExit3.hex, [[FORK_PARENT_PID, parent], [FORK_PARENT_TGID, parent], [FORK_CHILD_PID, child], [FORK_CHILD_TGID, child]]);
}
