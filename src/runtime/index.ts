/**
 * The one runtime seam: picks the libc binding for the runtime this process
 * runs on (bun:ffi on Bun, koffi on Node.js) once, at import, so neither is
 * loaded where it does not belong (Node has no bun:ffi; a Bun user installs
 * no koffi), and gives Node's children the mark Bun's already carry.
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { hasErrnoCode, messageOf } from "../errno.ts";
import { findLoadedLibc, type Libc } from "../libc.ts";
import { holdPidfdOnEachChild, wrappedChildren } from "./child-pidfds.ts";

/**
 * The wrapper's children without a pidfd, and the children that were there
 * when it went on (and so carry no mark whoever forked them): on Bun, which
 * marks every child from its start and gets no wrapper, there are none.
 */
export {
  childrenBeforeWrapper as childrenBeforeMarking,
  childrenWithoutPidfd,
  forgetChildrenBeforeWrapperExcept as forgetChildrenBeforeMarkingExcept,
  isChildFromBeforeWrapper as isChildFromBeforeMarking,
} from "./child-pidfds.ts";

export type RuntimeName = "bun" | "node";
export const runtimeName: RuntimeName = process.versions.bun ? "bun" : "node";

const binding = runtimeName === "bun" ? await import("./bun.ts") : await import("./node.ts");
/** A Node single executable application (node:sea exists from Node 20.12): its binary always runs the app. */
const nodeSingleExecutable = runtimeName === "node" && (await import("node:sea").then((sea) => sea.isSea(), () => false));

let loaded: Libc | undefined;

/** Opens libc once; throws when the platform or the runtime's FFI cannot serve. */
export function loadLibc(): Libc {
  if (process.platform !== "linux") throw new Error(`platform ${process.platform} is not Linux`);
  loaded ??= binding.bindLibc(findLoadedLibc());
  return loaded;
}

/**
 * The runtime's live children where this process lists them (Node: the
 * wrapper that marks them does), or undefined where only the runtime's
 * pidfds tell (Bun).
 */
export function listedRuntimeChildren(): ReadonlyMap<number, unknown> | undefined {
  return runtimeName === "bun" ? undefined : wrappedChildren();
}

/**
 * Makes this process hold a pidfd on each child the runtime spawns, until the
 * runtime has reaped it (the mark src/runtime-pidfds.ts reads). Bun does it
 * itself; on Node, child_process is wrapped, and the children already there
 * are listed (childrenBeforeMarking) before this resolves. Resolves to the undo.
 */
export async function markRuntimeChildren(libc: Libc): Promise<() => void> {
  return runtimeName === "bun" ? () => {} : holdPidfdOnEachChild(libc);
}

/**
 * Why no SIGCHLD listener may be added in this process, or undefined. Where
 * pidfd_open fails (ENOSYS before Linux 5.3; EPERM under a seccomp profile
 * that does not know it, as Docker's default before 20.10), Bun watches its
 * children from a thread woken by a SIGCHLD handler of its own, and a
 * listener replaces that handler (oven-sh/bun#42933): added after Bun's
 * first spawn, every child's exit goes unseen (`exited` never settles); added
 * before, the listener never fires. Node's libuv shares SIGCHLD among all
 * its watchers.
 */
export function whySigchldIsNotOurs(libc: Libc): string | undefined {
  if (runtimeName !== "bun") return undefined;
  try {
    libc.close(libc.pidfdOpen(libc.getpid()));
    return undefined;
  } catch (error) {
    if (!hasErrnoCode(error, "ENOSYS", "EPERM")) return undefined;
    return `${messageOf(error)}: Bun then watches its children from a thread that a SIGCHLD listener would stop (oven-sh/bun#42933)`;
  }
}

/**
 * Spawns this runtime's own binary with `args`, for a probe: always present,
 * where PATH may be empty and slim images have no shell. In an executable
 * made with `bun build --compile` that binary is the app: BUN_BE_BUN=1 makes
 * it plain Bun. A Node single executable application has no such switch, so
 * none is spawned there (it would start the daemon again): this throws.
 */
export function spawnRuntimeBinary(args: readonly string[], options: SpawnOptions): ChildProcess {
  if (nodeSingleExecutable) throw new Error("a Node single executable application cannot run its binary as plain Node");
  return spawn(process.execPath, args, { ...options, env: { ...process.env, BUN_BE_BUN: "1" } });
}

export type RuntimeBinaryRun = { readonly kind: "exited"; readonly pid: number } | { readonly kind: "timed-out" } | { readonly kind: "failed"; readonly message: string };

/** Runs this runtime's binary with `args` until it exits; SIGKILLed after `timeoutMs`. */
export function runRuntimeBinary(args: readonly string[], timeoutMs: number): Promise<RuntimeBinaryRun> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawnRuntimeBinary(args, { stdio: "ignore" });
    } catch (error) {
      return resolve({ kind: "failed", message: messageOf(error) });
    }
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve({ kind: "timed-out" });
    }, timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      resolve({ kind: "failed", message: error.message });
    });
    child.once("exit", () => {
      clearTimeout(timer);
      resolve({ kind: "exited", pid: child.pid ?? 0 });
    });
  });
}
