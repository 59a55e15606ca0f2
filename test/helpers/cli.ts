/**
 * Drives the real CLI as a subprocess (the same Bun that runs the tests),
 * optionally inside a namespace made with unshare.
 */
import { join } from "node:path";

export const CLI_MAIN = join(import.meta.dir, "../../src/cli/main.ts");

/** Runs a command as PID 1 of a new PID namespace; --kill-child: when unshare dies (a timeout kills it), so do PID 1 and its namespace. */
export const PID1_PREFIX = ["unshare", "-p", "-f", "--mount-proc", "--kill-child"] as const;

export interface CliResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function spawnCli(args: readonly string[], prefix: readonly string[] = []) {
  return Bun.spawn([...prefix, process.execPath, CLI_MAIN, ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
}

export async function runCli(args: readonly string[], prefix: readonly string[] = []): Promise<CliResult> {
  const child = spawnCli(args, prefix);
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { exitCode, stdout, stderr };
}

/** Why `unshare <flags> true` cannot run here (no binary, no privilege), or undefined when it can. */
export function unshareUnavailable(flags: readonly string[]): string | undefined {
  const unshare = Bun.which("unshare");
  if (!unshare) return "unshare is not installed (util-linux)";
  const probe = Bun.spawnSync([unshare, ...flags, "true"], { stderr: "pipe" });
  return probe.exitCode === 0 ? undefined : `unshare ${flags.join(" ")} fails here: ${probe.stderr.toString().trim()}`;
}

/** The pino JSON lines in a stream's text. */
export function logLines(text: string): Record<string, unknown>[] {
  return text.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line));
}
