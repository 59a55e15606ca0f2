/**
 * Start-up as a transaction: every step that changes the process (the
 * subreaper flag, sockets, listeners, timers, exported metrics) records its
 * undo here as it is made. A failure part-way runs the undos made so far;
 * stop() runs them all. Either way in reverse order, each once, and one undo
 * that throws does not keep the others from running.
 */
import type { Logger } from "pino";

export type Undo = () => void | Promise<void>;

export class UndoStack {
  readonly #undos: { readonly what: string; readonly undo: Undo }[] = [];
  readonly #logger: Logger;
  #running: Promise<void> | undefined;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Records how to undo a step just made; `what` names it in the log if the undo fails. */
  push(what: string, undo: Undo): void {
    this.#undos.push({ what, undo });
  }

  /** Undoes every step, last first. Idempotent: a second call waits for the first. */
  run(): Promise<void> {
    return (this.#running ??= this.#unwind());
  }

  async #unwind(): Promise<void> {
    for (let step = this.#undos.pop(); step; step = this.#undos.pop()) {
      try {
        await step.undo();
      } catch (err) {
        this.#logger.warn({ err, step: step.what }, `orphan reaper could not undo: ${step.what}`);
      }
    }
  }
}
