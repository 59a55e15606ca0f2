/**
 * A plain Node.js daemon (test/node/fixtures/daemon.mjs, importing dist/)
 * reaps real orphans while every child_process API keeps its exit codes: as
 * a child subreaper on the host, as PID 1 of a new PID namespace with
 * sigchld, and off with a reason where it cannot serve.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { NETLINK_PROBE_TIMEOUT_MS, PID1_PREFIX, runNodeFixture, scaled, unshareMissing } from "./helpers.mjs";

const DAEMON = new URL("./fixtures/daemon.mjs", import.meta.url).pathname;
const ORPHANS = 200;
const runDaemon = ({ options, ...config }, prefix) =>
  runNodeFixture(DAEMON, [JSON.stringify({ timeoutMs: scaled(30_000), settleMs: scaled(200), ...config, options: { netlinkProbeTimeoutMs: NETLINK_PROBE_TIMEOUT_MS, ...options } })], { prefix });

function assertServed(result, orphans) {
  assert.deepEqual(result.wrongExitCodes, []);
  assert.ok(result.exitCodesChecked >= 7, `every API checked (${result.exitCodesChecked} exit codes)`);
  assert.equal(result.reaped, orphans);
  assert.equal(result.zombiesLeft, 0);
}

test("as a child subreaper: every orphan reaped, every child_process exit code kept", { timeout: scaled(180_000) }, () => {
  const result = runDaemon({ orphans: ORPHANS, rounds: 3 });
  assert.equal(result.role, "subreaper");
  assert.ok(["netlink", "sigchld"].includes(result.source), `an event-driven source, got ${result.source}`);
  assertServed(result, ORPHANS);
});

const pid1Missing = unshareMissing();
test("as PID 1 of a new PID namespace with sigchld: every orphan reaped, every exit code kept", { skip: pid1Missing, timeout: scaled(180_000) }, () => {
  const result = runDaemon({ orphans: ORPHANS, rounds: 3, options: { source: "sigchld" } }, PID1_PREFIX);
  assert.equal(result.pid, 1);
  assert.equal(result.role, "pid1");
  assert.equal(result.source, "sigchld");
  assertServed(result, ORPHANS);
});

test("as PID 1 with auto: the proc connector is refused by namespace, sigchld is chosen", { skip: pid1Missing, timeout: scaled(180_000) }, () => {
  const result = runDaemon({ orphans: 50, rounds: 1 }, PID1_PREFIX);
  assert.equal(result.source, "sigchld");
  assert.match(result.notChosen.netlink, /not in the initial pid namespace/);
  assertServed(result, 50);
});

test("with the netlink source on the host", { timeout: scaled(180_000) }, (t) => {
  const result = runDaemon({ orphans: ORPHANS, rounds: 2, options: { source: "netlink" } });
  if (result.source !== "netlink") {
    // Printed, never passed: this host (or this build) cannot serve the proc connector.
    t.skip(`netlink not available here: ${result.notChosen.netlink}`);
    return;
  }
  assertServed(result, ORPHANS);
});

// waitid with __WNOTHREAD leaves a Worker's children to it.
test("children of a Worker keep their exit codes", { timeout: scaled(180_000) }, () => {
  const result = runDaemon({ orphans: 50, rounds: 2, worker: true, timeoutMs: scaled(10_000) });
  assertServed(result, 50);
  assert.ok(result.exitCodesChecked > 14, "the Worker's results came back too");
});

test("neither PID 1 nor a subreaper, and subreaper: false: off, with the reason, and every exit code kept", { timeout: scaled(120_000) }, () => {
  const result = runDaemon({ orphans: 0, rounds: 1, options: { subreaper: false } });
  assert.equal(result.source, "off");
  assert.match(result.notChosen.off, /neither PID 1 nor a child subreaper/);
  assertServed(result, 0);
});
