/**
 * Real orphans for tests, made without polling or fixed sleeps. Shells fork
 * subshells in the background and exit; each subshell first blocks reading a
 * FIFO whose only writer is this test process (the gate). The gate opens
 * (EOF) when this process closes its end, which `spawnOrphans` does only after
 * every forking shell has been reaped: so each orphan runs its body only once
 * its parent is gone and it has been reparented to us (PID 1 or a subreaper).
 * If this process dies, the kernel closes its end and the orphans run their
 * (short) body and end: nothing waits forever.
 */
import { closeSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { killIfAlive } from "../../scripts/descendants.ts";

export interface Orphans {
  /** The orphans' PIDs, in the order they were forked. */
  readonly pids: readonly number[];
  /** Opens the gate: every orphan runs its body. Idempotent. */
  release(): void;
  /** For finally blocks: SIGKILLs whichever still runs. */
  kill(): void;
}

export interface OrphanOptions {
  /** Shell code each orphan runs once released; keep it short-lived. Default `exit 0`. */
  readonly body?: string;
  /** Keep the gate closed until `release()` (default: open it once the parents are gone). */
  readonly hold?: boolean;
  /** An fd of ours (e.g. another Gate's `readEnd`) that `body` gets as its stdin; default /dev/null. */
  readonly stdin?: number;
}

const ORPHANS_PER_SHELL = 50;
let gates = 0;

/**
 * A FIFO with no name left: this process holds the only writer, children get
 * `readEnd` (e.g. as stdin) and block reading it until `open()` closes the
 * writer or this process dies: then they read EOF.
 */
export class Gate {
  /** Give it to children; `close()` closes our copy once they have it. */
  readonly readEnd: number;
  #writeEnd: number | undefined;

  constructor() {
    const fifo = join(tmpdir(), `orphan-reaper-gate-${process.pid}-${gates++}`);
    const made = spawnSync("mkfifo", ["-m", "600", fifo], { encoding: "utf8" });
    if (made.status !== 0) throw new Error(`mkfifo ${fifo} failed: ${made.error ?? made.stderr}`);
    try {
      // O_RDWR never blocks on a FIFO; then O_RDONLY does not either. Both are close-on-exec.
      this.#writeEnd = openSync(fifo, "r+");
      this.readEnd = openSync(fifo, "r");
    } finally {
      rmSync(fifo, { force: true });
    }
  }

  /** Lets every reader through (EOF). Idempotent. */
  open(): void {
    if (this.#writeEnd !== undefined) closeSync(this.#writeEnd);
    this.#writeEnd = undefined;
  }

  /** Closes our copy of the read end (children keep theirs). */
  close(): void {
    closeSync(this.readEnd);
  }
}

/** `count` orphans of this process, gated as the module comment says. */
export async function spawnOrphans(count: number, { body = "exit 0", hold = false, stdin }: OrphanOptions = {}): Promise<Orphans> {
  const gate = new Gate();
  const release = () => gate.open();
  try {
    const batches: Promise<number[]>[] = [];
    for (let made = 0; made < count; made += ORPHANS_PER_SHELL) {
      batches.push(forkOrphans(Math.min(ORPHANS_PER_SHELL, count - made), gate.readEnd, body, stdin));
    }
    const pids = (await Promise.all(batches)).flat();
    if (!hold) release();
    return { pids, release, kill: () => killEach(pids) };
  } catch (error) {
    release();
    throw error;
  } finally {
    gate.close();
  }
}

function killEach(pids: readonly number[]): void {
  for (const pid of pids) killIfAlive(pid);
}

/** `count` orphans that exit with `exitCode` as soon as their parents are gone; their PIDs. */
export async function makeOrphans(count: number, exitCode = 0): Promise<readonly number[]> {
  return (await spawnOrphans(count, { body: `exit ${exitCode}` })).pids;
}

/** One shell forks `count` gated subshells, prints their PIDs and exits; resolves once it is reaped. */
function forkOrphans(count: number, gate: number, body: string, stdin: number | undefined): Promise<number[]> {
  // Background jobs get /dev/null as stdin, so the gate (our stdin) is read through fd 3, `stdin` through fd 4.
  const bodyStdin = stdin === undefined ? "" : " 0<&4 4<&-";
  const orphan = `(read _ <&3; exec 3<&-${bodyStdin}; ${body}) >/dev/null &`;
  const script = `exec 3<&0 0</dev/null; i=0; while [ $i -lt ${count} ]; do ${orphan} echo $!; i=$((i+1)); done`;
  const shell = spawn("sh", ["-c", script], { stdio: [gate, "pipe", "inherit", "ignore", stdin ?? "ignore"] });
  let stdout = "";
  shell.stdout!.setEncoding("utf8").on("data", (chunk: string) => void (stdout += chunk));
  return new Promise((resolve, reject) => {
    shell.on("error", reject);
    shell.on("close", (code, signal) => {
      const pids = stdout.split("\n").filter(Boolean).map(Number);
      if (code === 0 && pids.length === count) resolve(pids);
      else reject(new Error(`orphan shell ended with ${signal ?? code} after forking ${pids.length} of ${count}`));
    });
  });
}
