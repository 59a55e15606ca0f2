/**
 * What the proc connector told the core and it has not acted on yet: exits
 * it proves adopted, to reap in the order read; and exits of children this
 * process forked, which are the runtime's to reap and are looked at only
 * once their grace has passed, in case nobody did.
 */
import type { ExitNotice } from "./types.ts";

export class ExitNotices {
  readonly #graceMs: number;
  #adopted: ExitNotice[] = [];
  /** By PID, in the order read, which is about their exit order: the first is due first. */
  readonly #own = new Map<number, ExitNotice>();

  constructor(graceMs: number) {
    this.#graceMs = graceMs;
  }

  /** Keeps what a drain read; returns how many exits it named. */
  add(adopted: readonly ExitNotice[], own: readonly ExitNotice[]): number {
    this.#adopted.push(...adopted);
    for (const exit of own) this.#own.set(exit.pid, exit);
    return adopted.length + own.length;
  }

  get adoptedCount(): number {
    return this.#adopted.length;
  }

  /** The next `count` adopted exits, oldest first. */
  takeAdopted(count: number): ExitNotice[] {
    return this.#adopted.splice(0, count);
  }

  own(pid: number): ExitNotice | undefined {
    return this.#own.get(pid);
  }

  /** The child was reaped, by us or by its owner. */
  settled(pid: number): void {
    this.#own.delete(pid);
  }

  /** Forgets own exits of PIDs no longer our children: their owner reaped them. */
  forgetExcept(children: ReadonlySet<number>): void {
    for (const pid of this.#own.keys()) if (!children.has(pid)) this.#own.delete(pid);
  }

  /** When the first own exit's grace ends, or Infinity. */
  ownDueAt(): number {
    // Checked first: no iterator when there is none (this is asked on every SIGCHLD).
    if (this.#own.size === 0) return Infinity;
    return this.#own.values().next().value!.exitedAt + this.#graceMs;
  }

  /** Own exits whose grace has passed by `now`, taken out. */
  takeDueOwn(now: number): ExitNotice[] {
    const due: ExitNotice[] = [];
    for (const exit of this.#own.values()) {
      if (exit.exitedAt + this.#graceMs > now) break;
      due.push(exit);
    }
    for (const { pid } of due) this.#own.delete(pid);
    return due;
  }

  clear(): void {
    this.#adopted = [];
    this.#own.clear();
  }
}
