/**
 * The contract between the reaper core (src/reaper.ts) and one event source
 * (netlink, sigchld, sweep). A source only tells the core that something may
 * have changed, or what the kernel said about one exit; the core alone
 * decides and reaps, so every source shares one policy and one reap path.
 */
import type { Logger } from "pino";
import type { Libc } from "../libc.ts";

export type SourceName = "netlink" | "sigchld" | "sweep";

/** The exit of one child process of ours, as the kernel reported it. */
export interface ExitNotice {
  readonly pid: number;
  /** Raw wait status from the kernel (e.g. 768 = exit(3)). */
  readonly waitStatus: number;
  /** When the process exited, in performance.now() milliseconds. */
  readonly exitedAt: number;
  /** True when this process did not fork it (an adopted orphan). */
  readonly adopted: boolean;
}

export type CoreCounter = "overruns" | "malformed";

export interface ReaperCore {
  readonly selfPid: number;
  readonly logger: Logger;
  readonly libc: Libc;
  /** List our own zombie children and reap what the policy allows. Coalesced. `reason` is for tests and debugging. */
  requestScan(by: SourceName, reason?: string): void;
  /** A child exited (from the kernel): reap it now if it is an adopted orphan. */
  noteExit(notice: ExitNotice): void;
  count(counter: CoreCounter): void;
  /** performance.now() of the last event from a source other than the sweep, or of the last reap. */
  readonly lastActivityAt: number;
}

export interface EventSource {
  readonly name: SourceName;
  /**
   * Exact provenance where the source knows it: true when this process forked
   * `pid` itself, false when it surely did not, undefined when unknown.
   */
  forkedBySelf?(pid: number): boolean | undefined;
  /** Idempotent: clears timers, listeners and fds the source opened. */
  stop(): Promise<void>;
}

/** What a probe found: a running source, or why it cannot serve here. */
export type ProbeResult =
  | { readonly ok: true; readonly source: EventSource }
  | { readonly ok: false; readonly reason: string };
