/**
 * Helpers for the Node.js tests: run a fixture as its own process (with a
 * prefix such as unshare), bounded, and parse the one JSON line it prints.
 * Waits scale with ORPHAN_REAPER_TEST_SCALE (a multiplier, default 1).
 */
import { spawnSync } from "node:child_process";

export const SCALE = Number(process.env.ORPHAN_REAPER_TEST_SCALE ?? 1) || 1;
export const scaled = (ms) => Math.round(ms * SCALE);

/**
 * Runs `node fixture args` (after `prefix`), killed after `timeoutMs`; returns
 * its last stdout line as JSON. A fixture that printed its line and then
 * killed itself (a stuck Worker cannot be ended otherwise) still counts.
 */
export function runNodeFixture(fixture, args, { prefix = [], env = {}, cwd, timeoutMs = scaled(120_000) } = {}) {
  const argv = [...prefix, process.execPath, fixture, ...args];
  const run = spawnSync(argv[0], argv.slice(1), {
    cwd,
    env: { ...process.env, ORPHAN_REAPER_LOG_LEVEL: "warn", ...env },
    encoding: "utf8",
    timeout: timeoutMs,
    killSignal: "SIGKILL",
  });
  const lastLine = run.stdout.trim().split("\n").at(-1);
  const finished = run.status === 0 || (run.signal === "SIGKILL" && lastLine?.startsWith("{"));
  if (!finished || !lastLine) throw new Error(`${argv.join(" ")} failed (status ${run.status}, signal ${run.signal}): ${run.stderr}`);
  return JSON.parse(lastLine);
}

/** Why `unshare -p -f --mount-proc` cannot run here, or undefined when it can. */
export function unshareMissing() {
  const probe = spawnSync("unshare", ["-p", "-f", "--mount-proc", "true"], { encoding: "utf8" });
  if (probe.error) return `unshare (util-linux) cannot run: ${probe.error.message}`;
  if (probe.status !== 0) return `unshare -p -f --mount-proc failed here: ${probe.stderr.trim()}`;
  return undefined;
}
