/**
 * Which signals `orphan-reaper run` forwards, and the relay that forwards
 * them. The relay listens from the moment it is made; what arrives before the
 * command runs is held, in order, and delivered once it runs, so there is no
 * start-up window in which a signal kills the init or is lost.
 */
import { constants } from "node:os";
import type { Libc } from "../libc.ts";

const SIGNAL_NUMBERS: Readonly<Record<string, number>> = constants.signals;
/** The classic signals; above them come glibc's or musl's own, then the real-time ones. */
const LAST_CLASSIC_SIGNAL = 31;

/** Never forwarded, with the reason. */
const NOT_FORWARDED: Readonly<Record<string, string>> = {
  SIGKILL: "cannot be caught",
  SIGSTOP: "cannot be caught",
  SIGCHLD: "the init's own: a child of ours changed state",
  // A listener on a fault signal makes a real fault in the init a hang: the
  // handler returns to the faulting instruction (measured in Bun: hung until
  // killed). tini leaves these out of its forwarded set for the same reason.
  SIGSEGV: "a fault signal: a listener would turn a fault of the init into a hang",
  SIGBUS: "a fault signal: a listener would turn a fault of the init into a hang",
  SIGFPE: "a fault signal: a listener would turn a fault of the init into a hang",
  SIGILL: "a fault signal: a listener would turn a fault of the init into a hang",
};

/** Measured with Bun 1.4.5: process.on accepts these names but no listener ever runs. */
const NOT_DELIVERED_BY_BUN: Readonly<Record<string, string>> = {
  SIGPWR: "JavaScriptCore's thread suspend/resume signal in Bun: a listener never runs",
  SIGSTKFLT: "Bun installs no handler for it: a listener never runs and the default action applies",
};

export interface SignalPlan {
  /** Forwarded to the child (or its group): names process.on delivers in this runtime. */
  readonly forwarded: readonly NodeJS.Signals[];
  /** Signal numbers the runtime cannot deliver to JavaScript (real-time ones included): ignored by the init, so none kills it. */
  readonly ignored: readonly number[];
  /** Why each signal name left out of `forwarded` is. */
  readonly notForwarded: Readonly<Record<string, string>>;
}

/** One name per number (SIGIOT and SIGPOLL are aliases of SIGABRT and SIGIO). */
function classicSignalNames(): string[] {
  const byNumber = new Map<number, string>();
  for (const [name, number] of Object.entries(SIGNAL_NUMBERS)) {
    if (number <= LAST_CLASSIC_SIGNAL && !byNumber.has(number)) byNumber.set(number, name);
  }
  return [...byNumber.entries()].sort(([a], [b]) => a - b).map(([, name]) => name);
}

/** The signals forwarded here (runtime and libc decide), and those the init ignores because it cannot forward them. */
export function planSignals(libc: Libc, runtimeIsBun = process.versions.bun !== undefined): SignalPlan {
  const notForwarded: Record<string, string> = { ...NOT_FORWARDED, ...(runtimeIsBun ? NOT_DELIVERED_BY_BUN : {}) };
  const forwarded = classicSignalNames().filter((name) => !(name in notForwarded)) as NodeJS.Signals[];
  const { min, max } = libc.realtimeSignalRange();
  notForwarded[`SIGRTMIN..SIGRTMAX (${min}-${max})`] = "neither Bun's nor Node's process.on can listen to a real-time signal";
  const cannotListen = Object.keys(NOT_DELIVERED_BY_BUN).filter((name) => runtimeIsBun && name in SIGNAL_NUMBERS);
  const ignored = [...cannotListen.map((name) => SIGNAL_NUMBERS[name]!), ...range(min, max)];
  return { forwarded, ignored, notForwarded };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/**
 * Sets SIG_IGN on each of `signals` whose action is still the default, so
 * that none kills the init; a handler the runtime put there is left alone.
 * The trampoline sets the command's dispositions back to the default.
 */
export function ignoreUnforwardable(libc: Libc, signals: readonly number[]): number[] {
  const ignored = signals.filter((signal) => libc.signalDisposition(signal) === "default");
  for (const signal of ignored) libc.setSignalDisposition(signal, "ignore");
  return ignored;
}

/**
 * The first thing `run` does, before the rest of it loads: listen to every
 * forwarded signal (held until the command runs) and ignore the ones no
 * listener can catch here.
 */
export function holdSignals(libc: Libc): { relay: SignalRelay; plan: SignalPlan } {
  const plan = planSignals(libc);
  const relay = new SignalRelay(plan.forwarded);
  ignoreUnforwardable(libc, plan.ignored);
  return { relay, plan };
}

export type SignalTarget = (signal: NodeJS.Signals) => void;

/** Listens to every forwarded signal; holds them until a target is set. */
export class SignalRelay {
  private held: NodeJS.Signals[] = [];
  private target: SignalTarget | undefined;
  private readonly removers: (() => void)[];

  constructor(signals: readonly NodeJS.Signals[]) {
    this.removers = signals.map((signal) => {
      const listener = () => this.receive(signal);
      process.on(signal, listener);
      return () => process.off(signal, listener);
    });
  }

  /** From now on signals go to `target`; those held so far go first, in the order they came. */
  deliverTo(target: SignalTarget): void {
    this.target = target;
    const held = this.held;
    this.held = [];
    for (const signal of held) target(signal);
  }

  /** Signals held and not delivered (the command never ran). */
  get heldSignals(): readonly NodeJS.Signals[] {
    return this.held;
  }

  stop(): void {
    for (const remove of this.removers) remove();
  }

  private receive(signal: NodeJS.Signals): void {
    if (this.target) this.target(signal);
    else this.held.push(signal);
  }
}
