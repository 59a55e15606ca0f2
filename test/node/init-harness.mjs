/**
 * Drives `node dist/cli/main.js run` (the package's bin) on the
 * signal-recorder fixture, as test/cli/init-harness.ts does for Bun: real
 * processes, optionally as PID 1 of a new PID namespace. `end()` kills
 * whatever is left, whatever the test's outcome.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { constants } from "node:os";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { PID1_PREFIX, scaled, within } from "./helpers.mjs";

export const CLI_MAIN = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));
export const RECORDER = fileURLToPath(new URL("../fixtures/signal-recorder.sh", import.meta.url));

/** Polls `condition` every 10 ms for at most `budgetMs` (scaled); never forks. */
export async function waitUntil(condition, budgetMs) {
  const deadline = performance.now() + scaled(budgetMs);
  while (performance.now() < deadline) {
    if (condition()) return true;
    await sleep(10);
  }
  return condition();
}

export function firstChildOf(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
    return text ? Number(text.split(" ")[0]) : undefined;
  } catch {
    return undefined;
  }
}

export function isLive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

export class NodeInit {
  lines = [];
  stderr = "";
  exitStatus = undefined;
  initPid = 0;

  /** `prefix` goes before node (unshare, a wrapper); `nodeArgs` between node and the CLI. */
  constructor({ flags = [], command, pid1 = false, prefix = [], nodeArgs = [], env = {} }) {
    const argv = [...(pid1 ? PID1_PREFIX : []), ...prefix, process.execPath, ...nodeArgs, CLI_MAIN, "run", ...flags, "--", ...command];
    this.process = spawn(argv[0], argv.slice(1), { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...env } });
    this.exited = new Promise((resolve) => this.process.once("exit", (code, signal) => resolve((this.exitStatus = code ?? 128 + constants.signals[signal]))));
    let partial = "";
    this.process.stdout.on("data", (chunk) => {
      const complete = (partial + chunk).split("\n");
      partial = complete.pop();
      this.lines.push(...complete);
    });
    this.process.stderr.on("data", (chunk) => (this.stderr += chunk));
    this.pid1 = pid1;
  }

  /** Waits for the recorder's ready line; learns the init's PID (unshare's child as PID 1). */
  async ready() {
    if (!(await waitUntil(() => this.lines.some((line) => line.startsWith("ready ")), 20_000))) throw new Error(`no ready line; stderr: ${this.stderr}`);
    const [, pid, pgid] = this.lines.find((line) => line.startsWith("ready ")).split(" ").map(Number);
    this.initPid = this.pid1 ? firstChildOf(this.process.pid) : this.process.pid;
    if (!this.initPid) throw new Error("cannot find the init's PID under unshare");
    this.recorder = { pid, pgid };
    return this.recorder;
  }

  count(line) {
    return this.lines.filter((seen) => seen === line).length;
  }

  waitForLine(line, budgetMs = 5_000) {
    return waitUntil(() => this.lines.includes(line), budgetMs);
  }

  /** Resolves to the init's exit status; rejects when it has not exited within `budgetMs` (scaled). */
  exitedWithin(budgetMs = 20_000) {
    return within(this.exited, budgetMs, "the init's exit");
  }

  /** Tells the recorder to exit with `code`; resolves to the init's exit status (bounded, as exitedWithin). */
  finish(code) {
    this.process.stdin.write(`exit ${code}\n`);
    return this.exitedWithin();
  }

  /** Kills what is left: the namespace (its PID 1) or the init and the recorder's group. */
  end() {
    if (this.exitStatus !== undefined) return;
    const kill = (target) => {
      try {
        process.kill(target, "SIGKILL");
      } catch {
        // already gone
      }
    };
    if (this.initPid) kill(this.initPid);
    if (this.recorder && !this.pid1) kill(-this.recorder.pgid);
    kill(this.process.pid);
  }
}
