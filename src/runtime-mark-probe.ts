/**
 * The start-up probe of the runtime's mark (src/runtime-pidfds.ts): spawns a
 * child and checks that the runtime holds a pidfd on it exactly until it has
 * reaped it, and that the kernel can ask a pidfd which child it names.
 */
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { messageOf } from "./errno.ts";
import type { Libc } from "./libc.ts";
import { spawnRuntimeBinary } from "./runtime/index.ts";
import { runtimeHoldsPidfd } from "./runtime-pidfds.ts";
import { isChildWaitable } from "./zombie.ts";

export interface RuntimePidfdProbe {
  readonly holds: boolean;
  readonly reason: string;
}

/** A child that waits for its stdin to close: this runtime's own binary, so PATH does not matter. */
function spawnProbeChild(): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawnRuntimeBinary(["-e", "process.stdin.resume()"], { stdio: ["pipe", "ignore", "ignore"] });
    child.once("spawn", () => resolve(child));
    child.once("error", reject);
  });
}

/**
 * Spawns a child and checks that the runtime holds a pidfd on it exactly
 * until it has reaped it, and that the kernel can wait through a pidfd (the
 * look asks with waitid(P_PIDFD): Linux 5.4, where pidfd_open came in 5.3).
 */
export async function probeRuntimePidfds(libc: Libc): Promise<RuntimePidfdProbe> {
  let child: ChildProcess;
  try {
    child = await spawnProbeChild();
  } catch (err) {
    return { holds: false, reason: `could not spawn a probe child: ${String(err)}` };
  }
  const pid = child.pid!;
  const exited = once(child, "exit");
  let cannotWait: string | undefined;
  let heldWhileRunning: boolean;
  try {
    cannotWait = whyCannotWaitThroughPidfd(libc, pid);
    heldWhileRunning = (await runtimeHoldsPidfd([pid])).has(pid);
  } finally {
    child.kill("SIGKILL");
    await exited;
  }
  const heldAfterReap = (await runtimeHoldsPidfd([pid])).has(pid);
  if (cannotWait) return { holds: false, reason: cannotWait };
  if (!heldWhileRunning) return { holds: false, reason: "the runtime holds no pidfd on a child it spawned" };
  if (heldAfterReap) return { holds: false, reason: "the runtime kept a pidfd after reaping its child" };
  return { holds: true, reason: "the runtime holds a pidfd on each child until it reaps it" };
}

/** Why waitid(P_PIDFD) cannot ask a pidfd on `pid` (a running child of ours), or undefined when it can. */
function whyCannotWaitThroughPidfd(libc: Libc, pid: number): string | undefined {
  let pidfd: number;
  try {
    pidfd = libc.pidfdOpen(pid);
  } catch (error) {
    return `the kernel gives no pidfd (${messageOf(error)})`;
  }
  try {
    isChildWaitable(libc, pid, pidfd);
    return undefined;
  } catch (error) {
    return `the kernel cannot wait through a pidfd (${messageOf(error)}; waitid(P_PIDFD) came in Linux 5.4)`;
  } finally {
    libc.close(pidfd);
  }
}
