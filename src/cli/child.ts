/**
 * Starts `run`'s command through the trampoline (trampoline.ts) and tells
 * when it runs: the trampoline's fd 3 is close-on-exec, so the init reads
 * end-of-file there once execvp has replaced it, or the errno code when the
 * command could not be run.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { constants } from "node:os";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { hasErrnoCode } from "../errno.ts";
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

export interface StartedCommand {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Undefined once the command runs; the errno code when it could not be run. */
  readonly execError: string | undefined;
  readonly exited: Promise<ChildExit>;
}

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
function pidfdOn(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    return loadLibc().pidfdOpen(pid);
  } catch (error) {
    if (hasErrnoCode(error, "ENOSYS", "EPERM")) return undefined;
    throw error;
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

/** Spawns the trampoline on `command`; resolves once the command runs or cannot. */
export async function startCommand(command: readonly string[]): Promise<StartedCommand> {
  const child = spawn(process.execPath, [...process.execArgv, TRAMPOLINE, String(command.length), ...command], {
    stdio: ["inherit", "inherit", "inherit", "pipe"],
    env: initialEnvironment(),
  });
  const pidfd = pidfdOn(child.pid);
  const exited = new Promise<ChildExit>((resolve) => child.once("exit", (exitCode, signal) => resolve(exitOf(pidfd, exitCode, signal))));
  const status = child.stdio[EXEC_STATUS_FD]!;
  let text = "";
  status.on("data", (chunk) => (text += String(chunk)));
  await new Promise<void>((resolve, reject) => {
    status.once("close", () => resolve());
    child.once("error", reject); // the runtime itself could not be spawned
  });
  return { child, pid: child.pid!, execError: text || undefined, exited };
}
