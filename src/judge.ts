/**
 * The judge: sorts pinned zombies with the pure policy (src/policy.ts) and
 * returns what to do with each; it reaps nothing itself. It remembers what
 * outlives one look, each by PID and start time: zombies waiting out their
 * grace window (and when each is due), zombies that are the runtime's, and
 * zombies that shouldReap vetoed (asked once per zombie).
 */
import type { RateLimitedLog } from "./log.ts";
import { classifyZombie, judgeZombie, needsRuntimeLook, type Provenance, type ProvenanceFacts } from "./policy.ts";
import type { ProcStat } from "./procfs.ts";
import type { ReapCandidate, ReapProvenance, SourceName } from "./types.ts";
import type { PinnedZombie } from "./zombie.ts";

/** A zombie brought to the judge, with what the core knows of it. */
export interface Candidate {
  readonly zombie: PinnedZombie;
  readonly seenBy: SourceName;
  /** From the exact source: did this process fork it? */
  readonly forkedBySelf: boolean | undefined;
  /** The kernel's exit time, when the source knew it (performance.now() ms). */
  readonly exitedAt?: number;
  /** It was a child already when the runtime's children began to be marked: a missing mark proves nothing. */
  readonly predatesMarking: boolean;
  /** Its /proc stat, read on first use; undefined once the process is gone. */
  readonly stat: () => ProcStat | undefined;
}

export type Decision =
  /** `seenBy`: the source that first saw it, which a later look (its grace over) may not be. */
  | { readonly action: "reap"; readonly candidate: Candidate; readonly provenance: ReapProvenance; readonly firstSeenAt: number; readonly seenBy: SourceName }
  /** Left to the runtime, which holds a pidfd on it. */
  | { readonly action: "runtime"; readonly candidate: Candidate }
  /** Left as it is for now: in its grace window, or known to stay. */
  | { readonly action: "wait"; readonly candidate: Candidate }
  /** shouldReap said no (asked once per zombie). */
  | { readonly action: "veto"; readonly candidate: Candidate };

export interface JudgeSettings {
  readonly graceMs: number;
  readonly alwaysGrace: boolean;
  /** Whether the runtime holds a pidfd for every child it spawns (probed at start). */
  readonly runtimeMarksChildrenWithPidfd: boolean;
  readonly shouldReap?: (candidate: ReapCandidate) => boolean;
}

interface PendingZombie {
  readonly startTime: number;
  readonly firstSeenAt: number;
  readonly seenBy: SourceName;
  /** Earliest time to look again. */
  retryAt: number;
}

/** How soon to look again at a zombie leader whose other threads still run. */
export const THREADS_ALIVE_RETRY_MS = 50;

export class Judge {
  readonly #settings: JudgeSettings;
  readonly #pending = new Map<number, PendingZombie>();
  /** Zombies judged the runtime's, by PID: start time. No pidfd look for them again. */
  readonly #runtime = new Map<number, number>();
  /** Zombies shouldReap vetoed, by PID: start time. Never asked again. */
  readonly #vetoed = new Map<number, number>();
  #loopLateAt = -Infinity;

  constructor(settings: JudgeSettings) {
    this.#settings = settings;
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  /** The earliest time a pending zombie is due, or undefined. */
  nextDueAt(): number | undefined {
    if (this.#pending.size === 0) return undefined;
    let due: number | undefined;
    for (const entry of this.#pending.values()) due = Math.min(due ?? Infinity, entry.retryAt);
    return due;
  }

  /** Pending zombies whose time has come. */
  duePids(now: number): number[] {
    return [...this.#pending].filter(([, entry]) => entry.retryAt <= now).map(([pid]) => pid);
  }

  /** The grace timer fired this late: the runtime could not reap meanwhile, so grace windows restart. */
  noteLoopLate(at: number): void {
    this.#loopLateAt = at;
  }

  /**
   * Forgets the pending zombies still due after a pass over the due ones:
   * none could be pinned (another reaper took it; or a leader's threads run
   * on, and their end brings a SIGCHLD). Kept, its past due time would fire
   * the timer again at once, over and over, until a scan.
   */
  forgetStillDue(now: number): void {
    for (const [pid, entry] of this.#pending) if (entry.retryAt <= now) this.#pending.delete(pid);
  }

  /** Forgets PIDs that are no longer children of ours: their owner reaped them. */
  forgetExcept(children: ReadonlySet<number>): void {
    for (const memo of [this.#pending, this.#runtime, this.#vetoed]) {
      for (const pid of memo.keys()) if (!children.has(pid)) memo.delete(pid);
    }
  }

  /** A zombie that must stay (the runtime's, vetoed, in its grace window) and so hides others from a waitid peek. */
  isKnownToStay(candidate: Candidate): boolean {
    return this.#remembered(this.#runtime, candidate) || this.#remembered(this.#vetoed, candidate);
  }

  /** A reap found the leader's threads still running: look again soon. */
  retrySoon({ candidate, firstSeenAt, seenBy }: Extract<Decision, { action: "reap" }>, now: number): void {
    const startTime = candidate.stat()?.startTime;
    if (startTime !== undefined) this.#pending.set(candidate.zombie.pid, { startTime, firstSeenAt, seenBy, retryAt: now + THREADS_ALIVE_RETRY_MS });
  }

  /**
   * Decides each candidate. `runtimeHolds` is asked once, for the zombies
   * whose verdict depends on it: only those that would otherwise be reaped.
   */
  decide(candidates: readonly Candidate[], now: number, runtimeHolds: (pids: number[]) => ReadonlySet<number>): Decision[] {
    const fresh = candidates.filter((candidate) => !this.isKnownToStay(candidate));
    const judged = fresh.map((candidate) => {
      const facts = this.#facts(candidate);
      const pending = this.#pendingEntry(candidate);
      const seen = { at: pending?.firstSeenAt ?? now, by: pending?.seenBy ?? candidate.seenBy };
      const wouldReap = this.#verdict(classifyZombie(facts), candidate, seen.at, now).action === "reap";
      return { candidate, facts, seen, wouldReap };
    });
    const toLook = judged.filter(({ facts, wouldReap }) => wouldReap && needsRuntimeLook(facts)).map(({ candidate }) => candidate.zombie.pid);
    const held = toLook.length > 0 ? runtimeHolds(toLook) : new Set<number>();
    const decisions: Decision[] = candidates.filter((candidate) => !fresh.includes(candidate)).map((candidate) => ({ action: "wait", candidate }));
    for (const { candidate, facts, seen } of judged) {
      const provenance = classifyZombie({ ...facts, runtimeHoldsPidfd: held.has(candidate.zombie.pid) });
      decisions.push(this.#decideOne(candidate, provenance, seen, now));
    }
    return decisions;
  }

  #decideOne(candidate: Candidate, provenance: Provenance, seen: { at: number; by: SourceName }, now: number): Decision {
    const { pid } = candidate.zombie;
    const verdict = this.#verdict(provenance, candidate, seen.at, now);
    if (verdict.action === "leave" || provenance === "runtime") {
      this.#remember(this.#runtime, candidate);
      this.#pending.delete(pid);
      return { action: "runtime", candidate };
    }
    if (verdict.action === "wait") {
      const startTime = candidate.stat()?.startTime;
      if (startTime !== undefined) this.#pending.set(pid, { startTime, firstSeenAt: seen.at, seenBy: seen.by, retryAt: verdict.until });
      return { action: "wait", candidate };
    }
    this.#pending.delete(pid);
    if (!this.#mayReap(candidate, provenance)) return { action: "veto", candidate };
    return { action: "reap", candidate, provenance, firstSeenAt: seen.at, seenBy: seen.by };
  }

  #facts(candidate: Candidate): ProvenanceFacts {
    return {
      runtimeHoldsPidfd: false,
      forkedBySelf: candidate.forkedBySelf,
      runtimeMarksChildrenWithPidfd: this.#settings.runtimeMarksChildrenWithPidfd,
      predatesMarking: candidate.predatesMarking,
      alwaysGrace: this.#settings.alwaysGrace,
    };
  }

  /** The grace window runs from the exit when the kernel told it, else from first sight. */
  #verdict(provenance: Provenance, candidate: Candidate, firstSeenAt: number, now: number) {
    const zombieSince = Math.min(firstSeenAt, candidate.exitedAt ?? firstSeenAt);
    return judgeZombie(provenance, { firstSeenAt: zombieSince, loopLateAt: this.#loopLateAt, now, graceMs: this.#settings.graceMs });
  }

  #mayReap(candidate: Candidate, provenance: ReapProvenance): boolean {
    const { shouldReap } = this.#settings;
    if (!shouldReap) return true;
    const comm = candidate.stat()?.comm ?? "";
    if (shouldReap({ pid: candidate.zombie.pid, comm, provenance })) return true;
    this.#remember(this.#vetoed, candidate);
    return false;
  }

  #pendingEntry(candidate: Candidate): PendingZombie | undefined {
    const entry = this.#pending.get(candidate.zombie.pid);
    return entry && entry.startTime === candidate.stat()?.startTime ? entry : undefined;
  }

  #remembered(memo: Map<number, number>, candidate: Candidate): boolean {
    const startTime = memo.get(candidate.zombie.pid);
    return startTime !== undefined && startTime === candidate.stat()?.startTime;
  }

  #remember(memo: Map<number, number>, candidate: Candidate): void {
    const startTime = candidate.stat()?.startTime;
    if (startTime !== undefined) memo.set(candidate.zombie.pid, startTime);
  }
}

/**
 * The user's shouldReap, made safe: a throw vetoes that zombie (remembered,
 * as a false is) and is logged, rate-limited. Left to escape, it would fail
 * every pass that meets the zombie, and no orphan would be reaped again.
 */
export function vetoOnThrow(shouldReap: (candidate: ReapCandidate) => boolean, warnings: RateLimitedLog): (candidate: ReapCandidate) => boolean {
  return (candidate) => {
    try {
      return shouldReap(candidate);
    } catch (err) {
      warnings.log("warn", { err, orphan: { pid: candidate.pid } }, "shouldReap threw; the zombie is left unreaped, as if vetoed");
      return false;
    }
  };
}
