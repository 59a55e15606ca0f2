/**
 * Reaping the zombies waitid names, one at a time, without listing our
 * children: waitid(P_ALL, WNOWAIT) names the first waitable child of the main
 * thread in the kernel's list, or none after walking all of them. That empty
 * peek is what ends a run of reaps, and with many live children it is the
 * costliest call there is: for a SIGCHLD it comes at most once per
 * MERGED_SIGNALS_CHECK_MS, and in between a SIGCHLD reaps the zombie its peek
 * names and stops. The caller owes the empty peek then (exits whose signal
 * merged into this one wait for it): a later SIGCHLD makes it, or a timer.
 * A zombie that stays hides the rest from the peek: the first time, the
 * caller looks again next turn (the runtime reaps its own within one); the
 * second, it scans all children, at most once per BLOCKED_SCAN_INTERVAL_MS.
 */
import type { Libc } from "./libc.ts";
import type { Reporter } from "./report.ts";
import type { RuntimePidfdLook } from "./runtime-pidfds.ts";
import type { SourceName } from "./types.ts";
import { reapPeekedUnlessHeld } from "./adopted.ts";
import { peekWaitableChild } from "./zombie.ts";

/** Reaps one run of peeks makes before the event loop gets a turn. */
const PEEKS_PER_RUN = 64;
/**
 * At most one empty peek per this for SIGCHLDs; also how long one is owed at
 * most after the last. The longest an exit whose signal merged waits, when no
 * other SIGCHLD comes. At 200 exits/s, 25 ms puts the walk on one SIGCHLD in
 * five rather than one in two (10 ms): with 1000 live children, a tenth less
 * CPU per reap on Node (BENCHMARKS.md).
 */
export const MERGED_SIGNALS_CHECK_MS = 25;
/** A peek blocked by the same zombie twice: at most one full scan per this. */
const BLOCKED_SCAN_INTERVAL_MS = 100;

/** How a run of peeks ended. */
export type PeeksEnd =
  /** A peek found no zombie: every child was walked. */
  | { readonly kind: "none-left" }
  /** The zombie named first stays (the runtime's, vetoed, in its grace): it hides the rest. Peek again next turn. */
  | { readonly kind: "blocked" }
  /** The same zombie stayed twice: scan all children now, or at `at` (rate-limited). */
  | { readonly kind: "scan"; readonly at?: number }
  /** A SIGCHLD's run reaped one and stopped: the empty peek is owed. */
  | { readonly kind: "owed" }
  /** PEEKS_PER_RUN reaps: more may wait. */
  | { readonly kind: "bound" };

// The ends that carry nothing, made once: a run ends once per SIGCHLD.
const NONE_LEFT: PeeksEnd = { kind: "none-left" };
const BLOCKED: PeeksEnd = { kind: "blocked" };
const SCAN: PeeksEnd = { kind: "scan" };
const OWED: PeeksEnd = { kind: "owed" };
const BOUND: PeeksEnd = { kind: "bound" };

export interface PeeksSettings {
  readonly libc: Libc;
  readonly runtimeLook: RuntimePidfdLook;
  readonly reporter: Reporter;
}

export class ZombiePeeks {
  readonly #settings: PeeksSettings;
  #lastEmptyPeekAt = -Infinity;
  /** The zombie that blocked the last run, or 0. */
  #blockedBy = 0;
  #lastBlockedScanAt = -Infinity;

  constructor(settings: PeeksSettings) {
    this.#settings = settings;
  }

  /**
   * Peeks and reaps until none is left, a zombie stays, or the bound; for a
   * SIGCHLD (`forSignal`), within MERGED_SIGNALS_CHECK_MS of the last empty
   * peek, after one reap. With `markProves` a zombie the runtime holds no
   * pidfd on is reaped by its PID (src/adopted.ts), else `judgeAndReap`
   * decides and returns how many it reaped.
   */
  run(by: SourceName, forSignal: boolean, markProves: boolean, judgeAndReap: (pid: number, by: SourceName) => number): PeeksEnd {
    const { libc, runtimeLook, reporter } = this.#settings;
    const now = performance.now();
    const untilNoneLeft = !forSignal || now - this.#lastEmptyPeekAt >= MERGED_SIGNALS_CHECK_MS;
    for (let reaps = 0; reaps < PEEKS_PER_RUN; reaps++) {
      const pid = peekWaitableChild(libc);
      if (pid === 0) {
        this.#lastEmptyPeekAt = performance.now();
        this.#blockedBy = 0;
        return NONE_LEFT;
      }
      const reap = markProves ? reapPeekedUnlessHeld(libc, runtimeLook, pid, reporter.wantsComm) : undefined;
      if (reap === "held") return this.#blocked(pid);
      if (reap) reporter.reaped(pid, reap, by, "adopted", undefined, now, now);
      else if (judgeAndReap(pid, by) === 0) return this.#blocked(pid);
      if (!untilNoneLeft) return OWED;
    }
    return BOUND;
  }

  /** A scan looked at every child: a zombie that blocks the next run is new again. */
  scanned(): void {
    this.#blockedBy = 0;
  }

  #blocked(pid: number): PeeksEnd {
    const again = pid === this.#blockedBy;
    this.#blockedBy = pid;
    if (!again) return BLOCKED;
    const now = performance.now();
    const scanAt = this.#lastBlockedScanAt + BLOCKED_SCAN_INTERVAL_MS;
    if (now < scanAt) return { kind: "scan", at: scanAt };
    this.#lastBlockedScanAt = now;
    return SCAN;
  }
}
