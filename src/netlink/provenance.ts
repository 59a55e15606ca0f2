/**
 * Who forked each child of ours, learned from proc events: exact for
 * children forked while subscribed, unknown for those that existed before
 * (or were forked while events were lost to an overrun). Pure bookkeeping.
 *
 * Only an EXIT proves that we did not fork a child: its FORK event, had we
 * made it, would have come first on the same socket. A PID never seen may
 * still have its FORK event queued, unread: it stays unknown, never "not ours".
 * An exited entry is kept until its PID is reused: the zombie of a child we
 * forked stays the runtime's to reap. A second EXIT for the same PID with no
 * FORK between is another process reparented to us, or the same process
 * again: when a thread other than the leader execs, the kernel's de_thread()
 * ends the leader first (an EXIT with pid == tgid) and the exec'ing thread
 * takes the PID over.
 */

export type ChildOrigin = "self" | "unknown" | "adopted";
/** What an EXIT event said: whose child ended, or that it did not end ("lives-on": its leader thread's EXIT). */
export type ExitOrigin = ChildOrigin | "lives-on";

export class ChildProvenance {
  /** Children not yet seen exiting (and zombies listed again after lost events); bounded by the kernel's PID space. */
  readonly #alive = new Map<number, "self" | "unknown">();
  /** Children seen exiting, oldest exit first, at most `maxExited`. */
  readonly #exited = new Map<number, ChildOrigin>();
  readonly #maxExited: number;

  constructor(maxExited: number) {
    this.#maxExited = maxExited;
  }

  /** A FORK event: we created `pid` ourselves. */
  recordFork(pid: number): void {
    this.#exited.delete(pid);
    this.#alive.set(pid, "self");
  }

  /**
   * A child found in /proc whose fork we may not have seen. It may hold the
   * PID of a child seen exiting before: nothing proves it is that one (its
   * FORK may have been lost), so an exit that said "not ours" is forgotten.
   * One that said "ours" stands: a zombie of ours stays the runtime's, and a
   * reused PID taken for ours only waits out the grace rule.
   */
  recordUnknown(pid: number): void {
    if (this.#alive.has(pid) || this.#exited.get(pid) === "self") return;
    this.#exited.delete(pid);
    this.#alive.set(pid, "unknown");
  }

  /**
   * An EXIT event of a child of ours: whose child it was. `livesOn` is asked
   * of a child not seen exiting before: true when the process runs on (the
   * EXIT was its leader thread's), and it stays alive here, so that its own
   * end is still known ours however many exits come in between.
   */
  recordExit(pid: number, livesOn: (pid: number) => boolean): ExitOrigin {
    const alive = this.#alive.get(pid);
    if (alive !== undefined && livesOn(pid)) return "lives-on";
    // Seen exiting before as ours or unknown: a reparented process, or ours again (de_thread).
    const exited = this.#exited.get(pid);
    const origin = alive ?? (exited === undefined || exited === "adopted" ? "adopted" : "unknown");
    this.#alive.delete(pid);
    this.#exited.delete(pid);
    this.#exited.set(pid, origin);
    if (this.#exited.size > this.#maxExited) {
      // Exits that long ago were reaped long since.
      const oldest = this.#exited.keys().next().value;
      if (oldest !== undefined) this.#exited.delete(oldest);
    }
    return origin;
  }

  /** True: we forked it; false: we surely did not; undefined: unknown. */
  forkedBySelf(pid: number): boolean | undefined {
    const origin = this.#alive.get(pid) ?? this.#exited.get(pid);
    if (origin === "self") return true;
    if (origin === "adopted") return false;
    return undefined;
  }
}
