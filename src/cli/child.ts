/**
 * Starts `run`'s command through the trampoline (trampoline.ts) and tells
 * when it runs: the trampoline's fd 3 is close-on-exec, so the init reads
 * end-of-file there once execvp has replaced it, or the errno code when the
 * command could not be run.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";

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
  readonly signal: NodeJS.Signals | null;
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

/** Spawns the trampoline on `command`; resolves once the command runs or cannot. */
export async function startCommand(command: readonly string[]): Promise<StartedCommand> {
  const child = spawn(process.execPath, [...process.execArgv, TRAMPOLINE, ...command], {
    stdio: ["inherit", "inherit", "inherit", "pipe"],
    env: initialEnvironment(),
  });
  const exited = new Promise<ChildExit>((resolve) => child.once("exit", (exitCode, signal) => resolve({ exitCode, signal })));
  const status = child.stdio[EXEC_STATUS_FD]!;
  let text = "";
  status.on("data", (chunk) => (text += String(chunk)));
  await new Promise<void>((resolve, reject) => {
    status.once("close", () => resolve());
    child.once("error", reject); // the runtime itself could not be spawned
  });
  return { child, pid: child.pid!, execError: text || undefined, exited };
}
