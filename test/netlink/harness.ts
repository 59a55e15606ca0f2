/**
 * A tiny real ReaperCore for tests: it records what a source tells it and,
 * for adopted exits, really reaps through pidfd + waitid(P_PIDFD), so tests
 * can assert on wait statuses. Its scans reap only the zombie children a
 * test names (`reapable`), never a child Bun tracks.
 */
import pino from "pino";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { P_PIDFD, WEXITED, WNOHANG, type WaitResult } from "../../src/libc.ts";
import { loadLibc } from "../../src/runtime/index.ts";
import { hasErrnoCode } from "../../src/errno.ts";
import { probeNetlinkSource, type NetlinkSourceOptions } from "../../src/sources/netlink.ts";
import type { CoreCounter, EventSource, ExitNotice, ReaperCore } from "../../src/sources/source.ts";

export { waitUntil as until } from "../helpers/processes.ts";

/** A recording core with a subscribed netlink source, for a test file's beforeAll (we become a subreaper). */
export async function startRecordingSource(options?: NetlinkSourceOptions): Promise<{ core: RecordingCore; source: EventSource }> {
  loadLibc().setChildSubreaper(true);
  const core = recordingCore();
  const probe = await probeNetlinkSource(core, options);
  if (!probe.ok) throw new Error(`netlink probe failed: ${probe.reason}`);
  return { core, source: probe.source };
}

export interface RecordingCore extends ReaperCore {
  readonly notices: (ExitNotice & { noticedAt: number })[];
  readonly scans: string[];
  readonly counts: Record<CoreCounter, number>;
  readonly logs: { level: number; msg: string; [key: string]: unknown }[];
  readonly reaped: Map<number, WaitResult>;
  /** PIDs the test allows scans to reap. */
  readonly reapable: Set<number>;
}

export function recordingCore(): RecordingCore {
  const libc = loadLibc();
  const logs: RecordingCore["logs"] = [];
  const reaped = new Map<number, WaitResult>();
  const reapable = new Set<number>();
  const reap = (pid: number) => {
    if (reaped.has(pid)) return;
    let pidfd: number;
    try {
      pidfd = libc.pidfdOpen(pid);
    } catch (error) {
      if (hasErrnoCode(error, "ESRCH")) return;
      throw error;
    }
    try {
      const result = libc.waitid(P_PIDFD, pidfd, WEXITED | WNOHANG);
      // A leader's exit event can precede its last thread's exit: retry.
      if (result.pid === 0) setTimeout(() => reap(pid), 1);
      else reaped.set(pid, result);
    } finally {
      libc.close(pidfd);
    }
  };
  const core: RecordingCore = {
    selfPid: process.pid,
    lastActivityAt: -Infinity,
    libc,
    logger: pino({ level: "debug" }, { write: (line: string) => void logs.push(JSON.parse(line)) }),
    notices: [],
    scans: [],
    counts: { overruns: 0, malformed: 0 },
    logs,
    reaped,
    reapable,
    requestScan(by, reason) {
      core.scans.push(reason ?? by);
      for (const pid of reapable) if (isZombie(pid)) reap(pid);
    },
    noteExit(notice) {
      core.notices.push({ ...notice, noticedAt: performance.now() });
      if (notice.adopted) reap(notice.pid);
    },
    count(counter) {
      core.counts[counter] += 1;
    },
  };
  return core;
}

export function isZombie(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z") ?? false;
  } catch {
    return false;
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
