/**
 * Who may be reaped, and when: pure functions, no I/O, unit tested.
 *
 * A zombie child is one of:
 * - `runtime`: the runtime holds a pidfd for it and will reap it itself. Never
 *   reaped: if anything else takes its status, Bun dies of an uncaught ECHILD.
 * - `adopted`: proven not forked by this process (an orphan reparented to it).
 *   Reaped at once.
 * - `unknown`: no proof either way (a child forked outside the runtime, one
 *   that was there before the runtime's children were marked, or no exact
 *   source). Reaped only after it has stayed a zombie for `graceMs` while the
 *   event loop ran on time, so a waiter that owns it gets its turn.
 */

export type Provenance = "runtime" | "adopted" | "unknown";

export interface ProvenanceFacts {
  /** This process holds a pidfd on the zombie (Bun's mark of its own children). */
  readonly runtimeHoldsPidfd: boolean;
  /** From an exact source (the proc connector): did this process fork it? */
  readonly forkedBySelf: boolean | undefined;
  /** The start-up probe showed that the runtime holds a pidfd for every child it spawns. */
  readonly runtimeMarksChildrenWithPidfd: boolean;
  /** It was a child already when marking began (Node: spawned before the wrapper went on): no mark, whoever forked it. */
  readonly predatesMarking: boolean;
  /** The user asked for the grace rule everywhere. */
  readonly alwaysGrace: boolean;
}

/**
 * Whether the runtime-pidfd look can change a zombie's provenance. Not when
 * the proc connector proves it adopted: the runtime holds pidfds only on
 * children it spawned, whose FORK events were read before any judgment.
 */
export function needsRuntimeLook(facts: Omit<ProvenanceFacts, "runtimeHoldsPidfd">): boolean {
  return facts.forkedBySelf !== false || facts.alwaysGrace;
}

export function classifyZombie(facts: ProvenanceFacts): Provenance {
  if (facts.runtimeHoldsPidfd) return "runtime";
  if (facts.alwaysGrace || facts.forkedBySelf === true) return "unknown";
  if (facts.forkedBySelf === false) return "adopted";
  if (facts.runtimeMarksChildrenWithPidfd && !facts.predatesMarking) return "adopted";
  return "unknown";
}

export interface GraceClock {
  /** When this zombie was first seen (ms, performance.now()). */
  readonly firstSeenAt: number;
  /** When the event loop was last seen running late (ms), or -Infinity. */
  readonly loopLateAt: number;
  readonly now: number;
  readonly graceMs: number;
}

export type Verdict =
  | { readonly action: "reap" }
  | { readonly action: "leave" }
  | { readonly action: "wait"; readonly until: number };

/**
 * The grace window starts at the later of first sighting and the last late
 * event loop: while the loop was blocked the runtime could not reap its own
 * children, so it gets a whole window on a running loop first.
 */
export function judgeZombie(provenance: Provenance, clock: GraceClock): Verdict {
  if (provenance === "runtime") return { action: "leave" };
  if (provenance === "adopted") return { action: "reap" };
  const until = Math.max(clock.firstSeenAt, clock.loopLateAt) + clock.graceMs;
  return clock.now >= until ? { action: "reap" } : { action: "wait", until };
}

/** How late a timer may fire before the event loop counts as having been blocked. */
export const LATE_LOOP_THRESHOLD_MS = 100;

export function isLoopLate(scheduledAt: number, firedAt: number): boolean {
  return firedAt - scheduledAt > LATE_LOOP_THRESHOLD_MS;
}
