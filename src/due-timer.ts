/**
 * One timer for the earliest due time asked for, and the work owed at it:
 * the core keeps one timer however many zombies wait out their grace. It is
 * unref'd: the reaper must never keep the daemon alive on its own.
 */
export class DueTimer<Work> {
  readonly #onDue: (owed: Work[], due: number) => void;
  readonly #owed = new Set<Work>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #dueAt = Infinity;

  constructor(onDue: (owed: Work[], due: number) => void) {
    this.#onDue = onDue;
  }

  /** Fires at `at` (performance.now() ms) unless it is armed for an earlier time already. */
  arm(at: number): void {
    if (at === Infinity || (this.#timer && at >= this.#dueAt)) return;
    clearTimeout(this.#timer);
    this.#dueAt = at;
    this.#timer = setTimeout(() => this.#fire(at), Math.max(0, at - performance.now()));
    this.#timer.unref();
  }

  /** Whether `work` is owed and not handed over yet. */
  owes(work: Work): boolean {
    return this.#owed.has(work);
  }

  /** `work` is handed over when the timer fires, at `at` at the latest. */
  owe(work: Work, at: number): void {
    this.#owed.add(work);
    this.arm(at);
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #fire(due: number): void {
    this.#timer = undefined;
    this.#dueAt = Infinity;
    const owed = [...this.#owed];
    this.#owed.clear();
    this.#onDue(owed, due);
  }
}

/**
 * Fires `delayMs` after the last `touch()`, unless cancelled: a look owed
 * after a run of events, which the events themselves make when they come
 * often enough. Unref'd, like DueTimer.
 */
export class QuietTimer {
  readonly #delayMs: number;
  readonly #onQuiet: () => void;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(delayMs: number, onQuiet: () => void) {
    this.#delayMs = delayMs;
    this.#onQuiet = onQuiet;
  }

  touch(): void {
    if (this.#timer) return void this.#timer.refresh();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#onQuiet();
    }, this.#delayMs);
    this.#timer.unref();
  }

  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
