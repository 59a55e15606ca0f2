/**
 * Probes whether this runtime marks its children: Bun holds a pidfd on every
 * child it spawns until it has reaped it. Where that holds, a zombie child on
 * which we hold no pidfd was not spawned by the runtime, so it is an adopted
 * orphan (or was forked by native code outside the runtime: the README's
 * limits). Where it fails (a runtime that waits from a thread instead), the
 * core falls back to the grace rule.
 */
import { listPidfdTargets } from "./procfs.ts";

export interface RuntimePidfdProbe {
  readonly holds: boolean;
  readonly reason: string;
}

export async function probeRuntimePidfds(): Promise<RuntimePidfdProbe> {
  let child: ReturnType<typeof Bun.spawn>;
  try {
    child = Bun.spawn(["sleep", "30"], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  } catch (err) {
    return { holds: false, reason: `could not spawn a probe child: ${String(err)}` };
  }
  const heldWhileRunning = (await listPidfdTargets()).has(child.pid);
  child.kill("SIGKILL");
  await child.exited;
  const heldAfterReap = (await listPidfdTargets()).has(child.pid);
  if (!heldWhileRunning) return { holds: false, reason: "the runtime holds no pidfd on a child it spawned" };
  if (heldAfterReap) return { holds: false, reason: "the runtime kept a pidfd after reaping its child" };
  return { holds: true, reason: "the runtime holds a pidfd on each child until it reaps it" };
}
