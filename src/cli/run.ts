/**
 * `orphan-reaper run [options] [--] cmd args...`: an init for images that
 * have Bun or Node and no tini. The command runs as our child, in a process
 * group of its own that becomes the terminal's foreground group when stdin is
 * a terminal (trampoline.ts); the reaper reaps every orphan (we are PID 1 or
 * become a child subreaper); every signal the runtime lets us catch is
 * forwarded to the child (or its group with -g), and those that arrive
 * before the command runs are held until it does; we exit with its exit code
 * (128 + N when signal N killed it). When the child is gone, the descendants
 * it left to us get SIGTERM, then SIGKILL after the grace period. The runtime
 * reaps its own child; the library reaps the orphans; nothing here waits on a
 * PID itself.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { startOrphanReaper } from "../index.ts";
import { listOwnChildren, readStat, whyProcIsNotOurs } from "../procfs.ts";
import { exitCodeForExecError, startCommand, type ChildExit } from "./child.ts";
import { cliLogger, defaultLogFormat } from "./cli-log.ts";
import type { RunOptions } from "./run-args.ts";
import type { HeldSignals } from "./signals.ts";

/** After the grace period: how long descendants get SIGKILL and their zombies get reaped before we exit anyway. */
const AFTER_KILL_WAIT_MS = 1_000;
const POLL_MS = 20;

export function exitCodeOf({ exitCode, signal }: ChildExit): number {
  if (exitCode !== null) return exitCode;
  return 128 + (signal ?? 0);
}

/** Sends `signal` to each live child of ours. Check and kill run in one synchronous step: no reap can come between. */
function signalOwnLiveChildren(children: readonly number[], signal: NodeJS.Signals | number): number {
  let signalled = 0;
  for (const pid of children) {
    const stat = readStat(pid);
    if (!stat || stat.ppid !== process.pid || stat.state === "Z") continue;
    signalled += sendSignal(pid, signal) ? 1 : 0;
  }
  return signalled;
}

/** kill(2); false when the target is gone (ESRCH). */
function sendSignal(target: number, signal: NodeJS.Signals | number): boolean {
  try {
    process.kill(target, signal);
    return true;
  } catch {
    return false;
  }
}

async function waitForNoChildren(deadline: number): Promise<number[]> {
  for (;;) {
    const children = await listOwnChildren(process.pid);
    if (children.length === 0 || performance.now() >= deadline) return children;
    await sleep(POLL_MS);
  }
}

/** Our children that still run: a zombie is the reaper's, and no signal moves it. */
async function liveChildren(): Promise<number[]> {
  return (await listOwnChildren(process.pid)).filter((pid) => readStat(pid)?.state !== "Z");
}

/**
 * SIGTERM to the descendants the child left us, and to those reparented to
 * us while they go (a shell that exits on SIGTERM leaves its own children),
 * each once. After the grace period, SIGKILL to every one still running,
 * again for each reparented to us meanwhile (the children of those just
 * killed), until none runs or AFTER_KILL_WAIT_MS passes. Then, within that
 * time, a wait for the reaper to take their zombies (on the sweep alone,
 * where Bun gets no pidfds, it may not come before we exit).
 */
async function endDescendants(graceMs: number, log: Logger): Promise<void> {
  const graceEnds = performance.now() + graceMs;
  const termed = new Set<number>();
  let live = await liveChildren();
  while (live.length > 0 && performance.now() < graceEnds) {
    const fresh = live.filter((pid) => !termed.has(pid));
    if (signalOwnLiveChildren(fresh, "SIGTERM") > 0) log.info({ pids: fresh }, "sent SIGTERM to the descendants the child left behind");
    for (const pid of fresh) termed.add(pid);
    await sleep(POLL_MS);
    live = await liveChildren();
  }
  const deadline = performance.now() + AFTER_KILL_WAIT_MS;
  if (live.length > 0) log.warn({ pids: live, graceMs }, "descendants still running after the grace period: sending SIGKILL");
  while (live.length > 0 && performance.now() < deadline) {
    signalOwnLiveChildren(live, "SIGKILL");
    await sleep(POLL_MS);
    live = await liveChildren();
  }
  if (live.length > 0) log.warn({ pids: live }, "descendants still running after SIGKILL");
  const unreaped = await waitForNoChildren(deadline);
  if (unreaped.length > 0) {
    log.warn({ pids: unreaped }, "descendants not reaped before exit; whoever adopts them next must reap them");
  }
}

/**
 * Runs the command; resolves to the exit code this process should exit with.
 * The relay has listened since main.ts started (signals.ts holdSignals),
 * which also set the parent-death signal.
 */
export async function runCommand(options: RunOptions, { relay, plan, notCaughtNatively }: HeldSignals): Promise<number> {
  const logger = cliLogger(options.logLevel, options.logFormat ?? defaultLogFormat());
  const log = logger.child({ component: "orphan-reaper run" });
  if (notCaughtNatively === undefined) log.debug(plan, "signals");
  else {
    const message = `real-time signals (and SIGSTKFLT in Bun) are ignored, not forwarded; nor are the fault signals (and SIGPWR in Bun): ${notCaughtNatively}`;
    log.info({ ignored: plan.caughtNatively, notForwarded: plan.caughtInFront }, message);
  }
  const reaper = await startOrphanReaper({ logger });
  if (reaper.source === "off") log.warn({ reason: reaper.stats().notChosen.off }, "running the command without a reaper");
  // Another namespace's /proc lists its processes as our children (unshare -p without --mount-proc: we are PID 1 and its /proc/1 is the host's init).
  const procNotOurs = whyProcIsNotOurs(process.pid);
  if (procNotOurs) log.warn({ reason: procNotOurs }, "the descendants the child leaves will get no signal: /proc cannot tell which they are");

  const [name] = options.command;
  const started = await startCommand(options.command, relay.ignoredAtStart);
  let code: number;
  if (started.execError !== undefined) {
    log.error(`cannot run ${name}: ${started.execError}`);
    await started.exited;
    code = exitCodeForExecError(started.execError);
  } else {
    relay.deliverTo((signal) => sendSignal(options.group ? -started.pid : started.pid, signal));
    const exit = await started.exited;
    code = exitCodeOf(exit);
    log.info({ child: { pid: started.pid, ...exit }, code }, "child exited");
    if (procNotOurs === undefined) {
      // From now on a signal is passed on to what the child left behind.
      relay.deliverTo((signal) => void listOwnChildren(process.pid).then((children) => signalOwnLiveChildren(children, signal)));
      await endDescendants(options.graceMs, log);
    }
  }
  relay.stop();
  await reaper.stop();
  return options.zeroExitCodes.includes(code) ? 0 : code;
}
