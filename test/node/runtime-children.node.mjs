/**
 * Node's own children and the reaper: if anything else reaps a child_process
 * child, Node never fires its 'exit' (no crash, a silent hang: Bun's ECHILD
 * in another form). The reaper must never be that anything: with the pidfd
 * mark on each child, it takes the orphans and leaves every runtime zombie.
 */
import assert from "node:assert/strict";
import { ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { test } from "node:test";
import { ErrnoError } from "../../dist/errno.js";
import { holdPidfdOnEachChild } from "../../dist/runtime/child-pidfds.js";
import { loadLibc } from "../../dist/runtime/index.js";
import { runtimeHoldsPidfd } from "../../dist/runtime-pidfds.js";
import { runNodeFixture, scaled, within } from "./helpers.mjs";

const FIXTURE = new URL("./fixtures/runtime-zombies.mjs", import.meta.url).pathname;
const RUNTIME_CHILDREN = 50;
const ORPHANS = 20;

test("a child_process child reaped behind libuv's back never fires 'exit'", { timeout: scaled(120_000) }, () => {
  const result = runNodeFixture(FIXTURE, ["steal"]);
  assert.equal(result.takenStatus, 7, "libc's waitid took the child's exit status");
  assert.equal(result.laterExitCode, 0, "a later child's 'exit' fired: libuv has looked at its children since");
  assert.equal(result.victimExitFired, false);
  assert.equal(result.victimExitCode, null);
});

test("with the reaper running, spawn, exec, execFile and fork children carry a pidfd until Node has reaped them", { timeout: scaled(120_000) }, () => {
  const result = runNodeFixture(FIXTURE, ["marks"]);
  assert.deepEqual(result.whileRunning, { spawn: true, exec: true, execFile: true, fork: true });
  assert.deepEqual(result.afterExit, { spawn: false, exec: false, execFile: false, fork: false });
});

for (const source of ["sigchld", "netlink"]) {
  test(`with the reaper running (${source}), 50 runtime zombies keep their exit codes while 20 orphans are reaped`, { timeout: scaled(120_000) }, (t) => {
    const result = runNodeFixture(FIXTURE, ["reaper", source]);
    if (result.source !== source) return void t.skip(`the reaper chose ${result.source}: ${source} cannot serve here`);
    assert.equal(result.wrapped, true, "startOrphanReaper wrapped child_process on Node");
    assert.equal(result.allZombies, true, "all were zombies at once before the loop turned");
    assert.deepEqual(result.runtimePidfds, { holds: true, reason: "the runtime holds a pidfd on each child until it reaps it" });
    assert.deepEqual(result.codes, Array(RUNTIME_CHILDREN).fill(7));
    assert.equal(result.makerExitCode, 0);
    assert.equal(result.reaped, ORPHANS);
  });
}

test("a child whose pidfd cannot be opened (EMFILE here) still counts as the runtime's until 'exit'", { timeout: scaled(60_000) }, async () => {
  const libc = loadLibc();
  const EMFILE = 24;
  const outOfFds = { ...libc, pidfdOpen: () => { throw new ErrnoError("pidfd_open", EMFILE); } };
  const spawnWaiting = () => spawn("sh", ["-c", "read _"], { stdio: ["pipe", "ignore", "ignore"] });
  const before = spawnWaiting();
  let child;
  const remove = await holdPidfdOnEachChild(outOfFds);
  try {
    child = spawnWaiting();
    assert.deepEqual(await runtimeHoldsPidfd([child.pid, before.pid]), new Set([child.pid]), "the child spawned before the wrapper is unmarked");
    const exited = once(child, "exit");
    child.stdin.end();
    await within(exited, 20_000, "the child's 'exit'");
    assert.deepEqual(await runtimeHoldsPidfd([child.pid]), new Set());
  } finally {
    remove();
    // Whatever failed above, both are gone when the test ends.
    await Promise.all([before, child].filter(Boolean).map(endChild));
  }
});

test("a pidfd whose close fails (EINTR here: closed all the same) throws nothing into Node's 'exit', and every 'exit' listener runs", { timeout: scaled(60_000) }, async () => {
  const libc = loadLibc();
  const EINTR = 4;
  const interrupted = { ...libc, close: (fd) => { libc.close(fd); throw new ErrnoError("close", EINTR); } };
  const uncaught = [];
  const onUncaught = (error) => uncaught.push(error);
  process.prependListener("uncaughtException", onUncaught);
  const remove = await holdPidfdOnEachChild(interrupted);
  try {
    const child = spawn("sh", ["-c", "read _; exit 4"], { stdio: ["pipe", "ignore", "ignore"] });
    const exit = once(child, "exit").then(([code]) => code);
    child.stdin.end();
    assert.equal(await Promise.race([exit, new Promise((resolve) => setTimeout(() => resolve("no exit"), scaled(10_000)).unref())]), 4);
    assert.deepEqual(uncaught, []);
  } finally {
    remove();
    process.off("uncaughtException", onUncaught);
  }
});

test("the wrapper comes off only while it is on top: a wrapper put over it stays, and ours under it still marks each child", { timeout: scaled(60_000) }, async () => {
  const original = ChildProcess.prototype.spawn;
  const remove = await holdPidfdOnEachChild(loadLibc());
  const ours = ChildProcess.prototype.spawn;
  const theirs = function (options) {
    return ours.call(this, options);
  };
  ChildProcess.prototype.spawn = theirs;
  try {
    remove();
    assert.equal(ChildProcess.prototype.spawn, theirs, "the wrapper put over ours is still there");
    const child = spawn("sh", ["-c", "read _; exit 4"], { stdio: ["pipe", "ignore", "ignore"] });
    const exit = once(child, "exit");
    assert.deepEqual(await runtimeHoldsPidfd([child.pid]), new Set([child.pid]), "and ours still marks each child");
    child.stdin.end();
    assert.deepEqual(await exit, [4, null]);
  } finally {
    ChildProcess.prototype.spawn = original;
  }
});

/** SIGKILLs a child_process child that has not fired 'exit' yet and waits (bounded) until it has. */
async function endChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGKILL");
  await within(exited, 20_000, `the 'exit' of ${child.pid}`);
}

// On sigchld, where nothing but the mark tells the runtime's zombies from orphans.
test("control: without the mark, the reaper takes runtime zombies, and each one it takes never fires 'exit'", { timeout: scaled(120_000) }, (t) => {
  const result = runNodeFixture(FIXTURE, ["reaper-unmarked", "sigchld"]);
  const hung = [...result.codes, result.makerExitCode].filter((code) => code === "no exit").length;
  t.diagnostic(`unmarked: the reaper took ${result.reaped - ORPHANS} runtime children; ${hung} never fired 'exit'`);
  assert.equal(result.allZombies, true);
  assert.ok(hung > 0, "the control shows the harm: some runtime child never fired 'exit'");
  assert.equal(result.reaped - ORPHANS, hung);
  assert.ok(result.codes.every((code) => code === 7 || code === "no exit"), "a child whose 'exit' fired kept its code");
});
