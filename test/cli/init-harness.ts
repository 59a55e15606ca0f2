/**
 * Drives an init (ours or tini, dumb-init, catatonit) on the signal-recorder
 * fixture: real processes, optionally as PID 1 of a new PID namespace. Every
 * process it starts is killed by `end()`, whatever the test's outcome.
 */
import { join } from "node:path";
import { readStat, readTaskChildren } from "../../src/procfs.ts";
import { waitUntil } from "../helpers/processes.ts";
import { CLI_MAIN, PID1_PREFIX } from "../helpers/cli.ts";

export const RECORDER = join(import.meta.dir, "../fixtures/signal-recorder.sh");
export { PID1_PREFIX };

/** The suite's one time scale (test/helpers/time.ts), for these tests' timeouts; waitUntil scales by itself. */
export { TEST_SCALE as SCALE } from "../helpers/time.ts";

/** Our init: `orphan-reaper run <flags> --` as argv. */
export function ourInit(flags: readonly string[] = []): string[] {
  return [process.execPath, CLI_MAIN, "run", ...flags, "--"];
}

export interface Ready {
  readonly pid: number;
  readonly pgid: number;
  readonly tpgid: number;
}

export class InitUnderTest {
  readonly lines: string[] = [];
  readonly process: ReturnType<typeof Bun.spawn<"pipe", "pipe", "pipe">>;
  /** The init's PID as this test sees it (the child of unshare when it is PID 1 of a namespace). */
  initPid = 0;
  /** The init's exit status once it has exited (128 + N when signal N killed it). */
  exitStatus: number | undefined;
  private stderrText: Promise<string>;

  constructor(argv: readonly string[], pid1: boolean, env: Record<string, string> = {}) {
    const prefix = pid1 ? PID1_PREFIX : [];
    this.process = Bun.spawn([...prefix, ...argv], {
      stdin: "pipe", stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env },
    });
    this.stderrText = new Response(this.process.stderr).text();
    void this.process.exited.then((status) => (this.exitStatus = status));
    void this.readLines();
  }

  private async readLines(): Promise<void> {
    const decoder = new TextDecoder();
    let partial = "";
    for await (const chunk of this.process.stdout) {
      partial += decoder.decode(chunk);
      const complete = partial.split("\n");
      partial = complete.pop()!;
      this.lines.push(...complete);
    }
  }

  /** Waits for the recorder's ready line; learns the init's own PID. */
  async ready(pid1: boolean): Promise<Ready> {
    const found = await waitUntil(() => this.lines.some((line) => line.startsWith("ready ")), 10_000);
    if (!found) throw new Error(`no ready line; stderr: ${await this.stderr()}`);
    const [, pid, pgid, tpgid] = this.lines.find((line) => line.startsWith("ready "))!.split(" ").map(Number);
    this.initPid = pid1 ? (readTaskChildren(this.process.pid)?.[0] ?? 0) : this.process.pid;
    if (!this.initPid) throw new Error("cannot find the init's PID under unshare");
    return { pid: pid!, pgid: pgid!, tpgid: tpgid! };
  }

  count(line: string): number {
    return this.lines.filter((seen) => seen === line).length;
  }

  waitForLine(line: string): Promise<boolean> {
    return waitUntil(() => this.lines.includes(line), 5_000);
  }

  initAlive(): boolean {
    const stat = readStat(this.initPid);
    return stat !== undefined && stat.state !== "Z";
  }

  /** Tells the recorder to exit with `code`; resolves to the init's exit code. */
  async finish(code: number): Promise<number> {
    this.process.stdin.write(`exit ${code}\n`);
    await this.process.stdin.flush();
    return this.process.exited;
  }

  stderr(): Promise<string> {
    return this.stderrText;
  }

  /** Kills what is left: the namespace (its PID 1) or the init and the recorder's group. */
  end(recorder?: Ready): void {
    if (this.exitStatus !== undefined) return;
    const kill = (target: number) => {
      try {
        process.kill(target, "SIGKILL");
      } catch {
        // already gone
      }
    };
    if (this.initPid) kill(this.initPid);
    if (recorder && recorder.pid !== 1 && this.process.pid === this.initPid) kill(-recorder.pgid);
    kill(this.process.pid);
  }
}
