/**
 * `orphan-reaper run -- cmd args...`: a tini-like init in Bun. Runs the
 * command as its child with the reaper active (as a child subreaper when not
 * PID 1), forwards signals to it (or to its process group with --group),
 * and exits with its exit code (128 + signal number when a signal killed it).
 * When the child is gone, the descendants it left to us get SIGTERM, then
 * SIGKILL after the grace period. The runtime reaps its own child; the
 * library reaps the orphans; nothing here waits on a PID itself.
 */
import { constants } from "node:os";
import pino, { type Logger } from "pino";
import { startOrphanReaper, type OrphanReaper } from "../index.ts";
import { listOwnChildren, readStat } from "../procfs.ts";

export interface RunOptions {
  readonly command: readonly string[];
  /** Signal the child's process group (the child starts its own session), like tini -g. */
  readonly group: boolean;
  /** How long descendants left behind get between SIGTERM and SIGKILL. */
  readonly graceMs: number;
  readonly verbose: boolean;
}

export const FORWARDED_SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH"] as const;
type ForwardedSignal = (typeof FORWARDED_SIGNALS)[number];

/** The shell's convention, which tini and docker follow too. */
const EXIT_COMMAND_NOT_FOUND = 127;
const EXIT_CANNOT_RUN = 126;
/** How long SIGKILLed descendants get to be reaped before we exit anyway. */
const AFTER_KILL_WAIT_MS = 1_000;
const POLL_MS = 20;

export function exitCodeOf(exitCode: number | null, signalCode: NodeJS.Signals | number | null): number {
  if (exitCode !== null) return exitCode;
  const signal = typeof signalCode === "number" ? signalCode : signalCode ? constants.signals[signalCode] : 0;
  return 128 + signal;
}

function stderrLogger(verbose: boolean): Logger {
  // Synchronous: the last lines must be out before process.exit.
  return pino({ level: verbose ? "info" : "warn" }, pino.destination({ fd: 2, sync: true }));
}

/** Sends `signal` to each live child of ours. Check and kill run in one synchronous step: no reap can come between. */
function signalOwnLiveChildren(children: readonly number[], signal: NodeJS.Signals): number {
  let signalled = 0;
  for (const pid of children) {
    const stat = readStat(pid);
    if (!stat || stat.ppid !== process.pid || stat.state === "Z") continue;
    try {
      process.kill(pid, signal);
      signalled += 1;
    } catch {
      // ESRCH: it died between the stat and the kill; the reaper takes it
    }
  }
  return signalled;
}

async function waitForNoChildren(deadline: number): Promise<number[]> {
  for (;;) {
    const children = await listOwnChildren(process.pid);
    if (children.length === 0 || performance.now() >= deadline) return children;
    await Bun.sleep(POLL_MS);
  }
}

/** SIGTERM to the descendants the child left us, SIGKILL to those still there after the grace period. */
async function endDescendants(graceMs: number, logger: Logger): Promise<void> {
  const left = await listOwnChildren(process.pid);
  if (signalOwnLiveChildren(left, "SIGTERM") > 0) {
    logger.info({ pids: left }, "sent SIGTERM to the descendants the child left behind");
  }
  const stubborn = await waitForNoChildren(performance.now() + graceMs);
  if (stubborn.length === 0) return;
  logger.warn({ pids: stubborn, graceMs }, "descendants still running after the grace period: sending SIGKILL");
  signalOwnLiveChildren(stubborn, "SIGKILL");
  const unreaped = await waitForNoChildren(performance.now() + AFTER_KILL_WAIT_MS);
  if (unreaped.length > 0) {
    logger.warn({ pids: unreaped }, "descendants not reaped before exit; whoever adopts them next must reap them");
  }
}

function spawnChild(options: RunOptions, logger: Logger): ReturnType<typeof Bun.spawn> | number {
  try {
    return Bun.spawn([...options.command], { stdio: ["inherit", "inherit", "inherit"], detached: options.group });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    logger.error({ err, command: options.command }, `cannot run ${options.command[0]}: ${code ?? String(err)}`);
    return code === "ENOENT" ? EXIT_COMMAND_NOT_FOUND : EXIT_CANNOT_RUN;
  }
}

/** Forwards each signal to `target` until the returned function is called. */
function forwardSignals(target: (signal: ForwardedSignal) => void): () => void {
  const handlers = FORWARDED_SIGNALS.map((signal) => {
    const handler = () => target(signal);
    process.on(signal, handler);
    return () => process.off(signal, handler);
  });
  return () => handlers.forEach((remove) => remove());
}

function signalChild(child: ReturnType<typeof Bun.spawn>, group: boolean, signal: ForwardedSignal): void {
  try {
    if (group) process.kill(-child.pid, signal);
    else child.kill(signal);
  } catch {
    // ESRCH: the child (or its whole group) is already gone
  }
}

/** Runs the command; resolves to the exit code this process should exit with. */
export async function runCommand(options: RunOptions): Promise<number> {
  const baseLogger = stderrLogger(options.verbose);
  const logger = baseLogger.child({ component: "orphan-reaper run" });
  const reaper: OrphanReaper = await startOrphanReaper({ logger: baseLogger, reapLogLevel: options.verbose ? "info" : "debug" });
  if (reaper.source === "off") logger.warn({ reason: reaper.stats().notChosen.off }, "running the command without a reaper");
  const child = spawnChild(options, logger);
  if (typeof child === "number") {
    await reaper.stop();
    return child;
  }
  let stopForwarding = forwardSignals((signal) => signalChild(child, options.group, signal));
  await child.exited;
  const code = exitCodeOf(child.exitCode, child.signalCode);
  logger.info({ pid: child.pid, exitCode: child.exitCode, signal: child.signalCode, code }, "child exited");
  stopForwarding();
  // From now on a signal is passed on to what the child left behind.
  stopForwarding = forwardSignals(
    (signal) => void listOwnChildren(process.pid).then((children) => signalOwnLiveChildren(children, signal)),
  );
  await endDescendants(options.graceMs, logger);
  stopForwarding();
  await reaper.stop();
  return code;
}
