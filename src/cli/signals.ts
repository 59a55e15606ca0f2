/**
 * Which signals `orphan-reaper run` forwards, and the relay that forwards
 * them: those process.on delivers, and those caught by the native handler
 * (native-signals.ts) that no listener can catch or that must stay the
 * runtime's or the kernel's when no other process sent them. The relay
 * listens from the moment it is made; what arrives before the command runs
 * is held, in order, and delivered once it runs: a signal that comes once it
 * is caught neither kills the init nor is lost.
 */
import { readFileSync } from "node:fs";
import { constants } from "node:os";
import { messageOf } from "../errno.ts";
import type { Libc } from "../libc.ts";
import { catchNatively, type NativeSignals } from "./native-signals.ts";

const SIGNAL_NUMBERS: Readonly<Record<string, number>> = constants.signals;
/** The classic signals; above them come glibc's or musl's own, then the real-time ones. */
const LAST_CLASSIC_SIGNAL = 31;

/**
 * Set to SIG_IGN and never forwarded, with the reason. Caught, SIGTTOU makes
 * a write of ours to a terminal we are in the background of (stty tostop)
 * restart after the handler and draw it again, forever (100% CPU); SIGTTIN
 * does that to a read.
 */
const IGNORED: Readonly<Record<string, string>> = {
  SIGTTIN: "ignored, as tini does: caught, a read of ours from the terminal in the background would retry forever",
  SIGTTOU: "ignored, as tini does: caught, a write of ours to the terminal in the background (tostop) would retry forever",
  SIGPIPE: "ignored: the kernel sends it for a log line of ours written to a pipe nobody reads; not the child's",
};

/** Never forwarded, with the reason. */
const NOT_FORWARDED: Readonly<Record<string, string>> = {
  SIGKILL: "cannot be caught",
  SIGSTOP: "cannot be caught",
  SIGCHLD: "the init's own: a child of ours changed state",
  ...IGNORED,
};

/**
 * A listener on a fault signal makes a real fault in the init a hang (the
 * handler returns to the faulting instruction: measured in Bun), and the
 * runtime's crash handler must still see it: the native handler sits in
 * front and forwards only what another process sent.
 */
const FAULT_SIGNALS = ["SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL"];

/**
 * Measured with Bun 1.4.5: process.on accepts these names, but no listener
 * ever runs. SIGPWR carries JavaScriptCore's thread suspend/resume handler:
 * the native handler sits in front of it. SIGSTKFLT has none: it is caught
 * natively (native-signals.ts), like the real-time ones.
 */
const NOT_DELIVERED_BY_BUN = ["SIGPWR", "SIGSTKFLT"];
const RUNTIME_OWN_IN_BUN = ["SIGPWR"];

export interface SignalPlan {
  /** Forwarded to the child (or its group): names process.on delivers in this runtime. */
  readonly forwarded: readonly NodeJS.Signals[];
  /** Signal numbers no process.on can listen to here (real-time ones; SIGSTKFLT in Bun): caught natively, else ignored. */
  readonly caughtNatively: readonly number[];
  /** Caught natively in front of the runtime's handler or the default action (fault signals; SIGPWR in Bun): only what another process sent is forwarded. */
  readonly caughtInFront: readonly number[];
  /** Why each signal name left out of all three is. */
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

/** The signals process.on delivers here, and forwards: needs no libc, so it can be the first thing `run` does. */
export function forwardedSignals(runtimeIsBun = process.versions.bun !== undefined): NodeJS.Signals[] {
  const skipped = [...Object.keys(NOT_FORWARDED), ...FAULT_SIGNALS, ...(runtimeIsBun ? NOT_DELIVERED_BY_BUN : [])];
  return classicSignalNames().filter((name) => !skipped.includes(name)) as NodeJS.Signals[];
}

/** Which signals are forwarded here and how (runtime and libc decide), and why the rest are not. */
export function planSignals(libc: Libc, runtimeIsBun = process.versions.bun !== undefined): SignalPlan {
  const inFront = [...FAULT_SIGNALS, ...(runtimeIsBun ? RUNTIME_OWN_IN_BUN : [])].filter((name) => name in SIGNAL_NUMBERS);
  const cannotListen = runtimeIsBun ? NOT_DELIVERED_BY_BUN.filter((name) => !inFront.includes(name) && name in SIGNAL_NUMBERS) : [];
  const { min, max } = libc.realtimeSignalRange();
  const caughtNatively = [...cannotListen.map((name) => SIGNAL_NUMBERS[name]!), ...range(min, max)];
  const caughtInFront = inFront.map((name) => SIGNAL_NUMBERS[name]!);
  return { forwarded: forwardedSignals(runtimeIsBun), caughtNatively, caughtInFront, notForwarded: NOT_FORWARDED };
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

export interface HeldSignals {
  readonly relay: SignalRelay;
  readonly plan: SignalPlan;
  /** Why `plan.caughtNatively` could not be caught (they are ignored then, so none kills the init; `plan.caughtInFront` keep their disposition, not forwarded). */
  readonly notCaughtNatively?: string;
}

/** Both runtimes ignore these themselves at start: whether our parent did cannot be told. */
const IGNORED_BY_RUNTIMES = new Set([SIGNAL_NUMBERS.SIGPIPE, SIGNAL_NUMBERS.SIGXFSZ]);

/**
 * The signals this process was started with ignored (nohup, `trap ''`),
 * from SigIgn in /proc/self/status: the command keeps them ignored, as exec
 * does under tini. Read before any listener changes them. Bun keeps what it
 * inherits; Node sets every action back to the default at start, so there
 * only the runtimes' own are found, and left out.
 */
export function signalsIgnoredAtStart(): number[] {
  const mask = BigInt(`0x${/^SigIgn:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? "0"}`);
  const ignored: number[] = [];
  // Bit N - 1 is signal N.
  for (let signal = 1, rest = mask; rest !== 0n; signal++, rest >>= 1n) {
    if (rest & 1n && !IGNORED_BY_RUNTIMES.has(signal)) ignored.push(signal);
  }
  return ignored;
}

/**
 * The first thing `run` does, before anything else loads (the libc seam
 * included): note what was ignored at start, then listen to every
 * forwarded signal; they are held until the command runs.
 */
export function listenToSignals(): SignalRelay {
  const ignoredAtStart = signalsIgnoredAtStart();
  return new SignalRelay(forwardedSignals(), ignoredAtStart);
}

/**
 * Once libc is loaded: ignore SIGTTIN, SIGTTOU, SIGPIPE; catch natively the
 * signals no listener can catch here, and where that fails or no SIGCHLD
 * listener may be added (`sigchldNotOurs`, src/runtime/index.ts), ignore them. A signal that carries a handler
 * of the runtime's is never taken from it: the handler sits in front of it
 * (plan.caughtInFront), or the signal is left alone.
 */
export function holdSignals(libc: Libc, relay: SignalRelay, sigchldNotOurs?: string): HeldSignals {
  for (const name of Object.keys(IGNORED)) libc.setSignalDisposition(SIGNAL_NUMBERS[name]!, "ignore");
  const plan = planSignals(libc);
  const free = plan.caughtNatively.filter((signal) => libc.signalDisposition(signal) !== "handler");
  // The records of natively caught signals wake the relay with SIGCHLD.
  const notCaught = sigchldNotOurs ? `no SIGCHLD listener may wake their relay: ${sigchldNotOurs}` : catchInto(relay, libc, free, plan);
  if (notCaught === undefined) return { relay, plan };
  ignoreUnforwardable(libc, free);
  return { relay, plan, notCaughtNatively: notCaught };
}

/** Catches `free` (and plan.caughtInFront) natively for `relay`; undefined, or why it could not. */
function catchInto(relay: SignalRelay, libc: Libc, free: readonly number[], plan: SignalPlan): string | undefined {
  try {
    relay.addNative(catchNatively(libc, free, plan.caughtInFront));
    return undefined;
  } catch (err) {
    return messageOf(err);
  }
}

/** A signal number: those caught natively have no name in Node's table. */
export type SignalTarget = (signal: number) => void;

/**
 * Listens to every forwarded signal, and to SIGCHLD for the records of the
 * natively caught ones; holds them all until a target is set.
 */
export class SignalRelay {
  private held: number[] = [];
  private target: SignalTarget | undefined;

  /** Signals ignored when this process started: the command keeps them ignored. */
  readonly ignoredAtStart: readonly number[];

  constructor(signals: readonly NodeJS.Signals[], ignoredAtStart: readonly number[] = []) {
    this.ignoredAtStart = ignoredAtStart;
    for (const signal of signals) process.on(signal, () => this.receive(SIGNAL_NUMBERS[signal]!));
  }

  /** Relays the natively caught signals too: their records are drained on each SIGCHLD. */
  addNative(native: NativeSignals): void {
    const drain = () => native.drain().forEach((signal) => this.receive(signal));
    process.on("SIGCHLD", drain);
    drain(); // a record written before the listener was in place woke nobody
  }

  /** From now on signals go to `target`; those held so far go first, in the order they came. */
  deliverTo(target: SignalTarget): void {
    this.target = target;
    const held = this.held;
    this.held = [];
    for (const signal of held) target(signal);
  }

  /** Signals held and not delivered (the command never ran). */
  get heldSignals(): readonly number[] {
    return this.held;
  }

  /**
   * From now on signals are dropped. The listeners stay until the init
   * exits: one removed puts the default action back, and a SIGINT in the
   * moments before the exit would kill the init and lose the child's code.
   */
  stop(): void {
    this.target = () => {};
  }

  private receive(signal: number): void {
    if (this.target) this.target(signal);
    else this.held.push(signal);
  }
}
