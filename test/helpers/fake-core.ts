/**
 * A tiny real ReaperCore for source tests: it records what a source tells it
 * and, for adopted exits, really reaps through pidfd + waitid(P_PIDFD), so
 * tests can assert on wait statuses. Its scans reap only the zombie children
 * a test names (`reapable`), never a child Bun tracks.
 */
import pino from "pino";
import { loadLibc, P_PIDFD, WEXITED, WNOHANG, type WaitResult } from "../../src/libc.ts";
import { hasErrnoCode } from "../../src/errno.ts";
import type { CoreCounter, ExitNotice, ReaperCore, SourceName } from "../../src/sources/source.ts";
import { isZombie } from "./processes.ts";

export interface ScanRequest {
  readonly by: SourceName;
  readonly reason: string | undefined;
  /** performance.now() when it was asked for. */
  readonly at: number;
}

export interface RecordingCore extends ReaperCore {
  readonly notices: (ExitNotice & { noticedAt: number })[];
  readonly scans: ScanRequest[];
  readonly counts: Record<CoreCounter, number>;
  readonly logs: { level: number; msg: string; [key: string]: unknown }[];
  readonly reaped: Map<number, WaitResult>;
  /** PIDs the test allows scans to reap. */
  readonly reapable: Set<number>;
  /** Settable, as a source under test would see activity. */
  lastActivityAt: number;
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
      core.scans.push({ by, reason, at: performance.now() });
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
