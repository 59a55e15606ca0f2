/**
 * Helpers for the Node.js tests: run a fixture as its own process (with a
 * prefix such as unshare), bounded, and parse the one JSON line it prints.
 * Waits scale with ORPHAN_REAPER_TEST_SCALE (a multiplier, default 1): the
 * tests and the fixtures under test/node/fixtures take `scaled` from here;
 * daemon.mjs, which is also copied into a consumer project, gets its waits
 * from the test that runs it.
 */
import { spawnSync } from "node:child_process";
import { NETLINK_PROBE_MAX_MS } from "../../dist/options.js";
import { scaled } from "../helpers/scale.mjs";

export { scaled };

/**
 * netlinkProbeTimeoutMs for the reapers the tests start: the default (100 ms)
 * is a start-up budget for production, which a busy test machine misses, and
 * a missed probe turns a netlink test into a skip. Scaled, within the
 * option's limit.
 */
export const NETLINK_PROBE_TIMEOUT_MS = Math.min(scaled(5_000), NETLINK_PROBE_MAX_MS);

/**
 * PID 1 of a new PID namespace. --kill-child: when unshare dies (a timeout
 * SIGKILLs it), the kernel kills its child, PID 1, and the namespace with it;
 * without it the daemon lives on as PID 1 of a namespace nobody watches.
 */
export const PID1_PREFIX = ["unshare", "-p", "-f", "--kill-child", "--mount-proc"];

/**
 * spawnSync in a session (and process group) of its own, SIGKILLed after
 * `timeout` (scaled by the caller): the timeout kills only the process it
 * started, so whatever is left in its group (its children, their orphans)
 * is killed once the run is over, whatever its outcome.
 */
export function spawnSyncInGroup(command, args, options) {
  const run = spawnSync(command, args, { killSignal: "SIGKILL", ...options, detached: true });
  if (run.pid) {
    try {
      process.kill(-run.pid, "SIGKILL");
    } catch {
      // ESRCH: nothing of it is left
    }
  }
  return run;
}

/**
 * Runs `node fixture args` (after `prefix`) with spawnSyncInGroup, killed
 * after `timeoutMs`; returns its last stdout line as JSON. A fixture that
 * printed its line and then killed itself (a stuck Worker cannot be ended
 * otherwise) still counts.
 */
export function runNodeFixture(fixture, args, { prefix = [], env = {}, cwd, timeoutMs = scaled(120_000) } = {}) {
  const argv = [...prefix, process.execPath, fixture, ...args];
  const run = spawnSyncInGroup(argv[0], argv.slice(1), {
    cwd,
    env: { ...process.env, ORPHAN_REAPER_LOG_LEVEL: "warn", ...env },
    encoding: "utf8",
    timeout: timeoutMs,
  });
  const lastLine = (run.stdout ?? "").trim().split("\n").at(-1);
  const finished = run.status === 0 || (run.signal === "SIGKILL" && lastLine?.startsWith("{"));
  if (!finished || !lastLine) throw new Error(`${argv.join(" ")} failed (status ${run.status}, signal ${run.signal}${run.error ? `, ${run.error.message}` : ""}): ${run.stderr}`);
  return JSON.parse(lastLine);
}

/** Why PID1_PREFIX cannot run here (no unshare, no privilege, no --kill-child), or undefined when it can. */
export function unshareMissing() {
  const probe = spawnSync(PID1_PREFIX[0], [...PID1_PREFIX.slice(1), "true"], { encoding: "utf8", timeout: scaled(30_000), killSignal: "SIGKILL" });
  if (probe.error) return `unshare (util-linux) cannot run: ${probe.error.message}`;
  if (probe.status !== 0) return `${PID1_PREFIX.join(" ")} failed here: ${probe.stderr.trim()}`;
  return undefined;
}

/**
 * `promise`, or a rejection naming `what` after `budgetMs` (scaled): a test
 * that awaits an exit that never comes fails with the reason and runs its
 * finally, instead of hanging until its timeout (which skips the finally).
 */
export function within(promise, budgetMs, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${scaled(budgetMs)} ms`)), scaled(budgetMs));
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
