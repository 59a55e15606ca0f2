/**
 * Starts `run`'s command through the trampoline (trampoline.ts) and tells
 * when it runs: the trampoline's fd 3 is close-on-exec, so the init reads
 * end-of-file there once execvp has replaced it, or the errno code when the
 * command could not be run.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { constants } from "node:os";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { messageOf } from "../errno.ts";
import { loadLibc } from "../runtime/index.ts";

export const EXEC_STATUS_FD = 3;
// trampoline.ts beside us in src/ (Bun), trampoline.js in dist/ (Node).
const TRAMPOLINE = fileURLToPath(new URL(`./trampoline${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

/** The shell's convention, which tini and docker follow too. */
const EXIT_COMMAND_NOT_FOUND = 127;
const EXIT_CANNOT_RUN = 126;

export function exitCodeForExecError(code: string): number {
  return code === "ENOENT" ? EXIT_COMMAND_NOT_FOUND : EXIT_CANNOT_RUN;
}

export interface ChildExit {
  readonly exitCode: number | null;
  /** The signal's number: a real-time signal has no name. */
  readonly signal: number | null;
}

/** A wait status (<sys/wait.h>): exited when its low 7 bits are 0, else killed by the signal they hold. */
function exitOfWaitStatus(status: number): ChildExit {
  const signal = status & 0x7f;
  return signal === 0 ? { exitCode: (status >> 8) & 0xff, signal: null } : { exitCode: null, signal };
}

/** The command runs as our child, or could not be run: the errno code (the trampoline's, or the spawn's own). */
export type StartedCommand =
  | { readonly execError: undefined; readonly pid: number; readonly exited: Promise<ChildExit> }
  | { readonly execError: string; readonly exited: Promise<unknown> };

/**
 * The environment this process was started with. Bun adds a `.env` file of
 * the working directory to process.env; the command must not get it.
 */
function initialEnvironment(): NodeJS.ProcessEnv {
  const entries = readFileSync("/proc/self/environ", "utf8").split("\0").filter(Boolean);
  return Object.fromEntries(entries.map((entry) => {
    const equals = entry.indexOf("=");
    return [entry.slice(0, equals), entry.slice(equals + 1)];
  }));
}

/**
 * A pidfd on the child, opened in the spawn's synchronous step: the runtime
 * cannot have reaped it yet. child_process reports a signal it has no name
 * for (a real-time one) as exit code 0, on Node and Bun alike; a waitid
 * WNOWAIT peek would race the runtime's own reap, and a reap of ours would
 * kill Bun (ECHILD). The kernel keeps the wait status on a pidfd, whoever
 * reaps (Linux 6.15+). Undefined where there are no pidfds.
 */
function pidfdOn(pid: number): number | undefined {
  try {
    return loadLibc().pidfdOpen(pid);
  } catch {
    // ENOSYS, EPERM (seccomp), EMFILE: child_process's word it is.
    return undefined;
  }
}

/** The child's exit: the kernel's wait status where it keeps one, else what child_process says. */
function exitOf(pidfd: number | undefined, exitCode: number | null, signal: NodeJS.Signals | null): ChildExit {
  if (pidfd !== undefined) {
    const libc = loadLibc();
    const status = libc.pidfdExitStatus(pidfd);
    libc.close(pidfd);
    if (status !== undefined) return exitOfWaitStatus(status);
  }
  return { exitCode, signal: signal === null ? null : constants.signals[signal] };
}

/** Spawns the trampoline on `command`, which keeps `keepIgnored` ignored; resolves once the command runs or cannot. */
export async function startCommand(command: readonly string[], keepIgnored: readonly number[]): Promise<StartedCommand> {
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [...process.execArgv, TRAMPOLINE, keepIgnored.join(",") || "-", String(command.length), ...command], {
      stdio: ["inherit", "inherit", "inherit", "pipe"],
      env: initialEnvironment(),
    });
  } catch (error) {
    return spawnFailed(error); // Bun throws E2BIG at once
  }
  const { pid } = child;
  const status = child.stdio?.[EXEC_STATUS_FD];
  // Node emits the spawn's error (EMFILE, EAGAIN) a tick later; Bun gives no stdio when it failed to set up the child.
  if (pid === undefined || !status) return spawnFailed((await once(child, "error"))[0]);
  const pidfd = pidfdOn(pid);
  const exited = new Promise<ChildExit>((resolve) => child.once("exit", (exitCode, signal) => resolve(exitOf(pidfd, exitCode, signal))));
  let text = "";
  status.on("data", (chunk) => (text += String(chunk)));
  await once(status, "close");
  return text ? { execError: text, exited } : { execError: undefined, pid, exited };
}

/** The runtime itself could not be spawned: as the command's exec failure, with the spawn's errno code. */
function spawnFailed(error: unknown): StartedCommand {
  return { execError: (error as NodeJS.ErrnoException).code ?? messageOf(error), exited: Promise.resolve() };
}
