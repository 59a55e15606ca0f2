/**
 * Node's children that the spawn wrapper did not put its mark on, which the
 * reaper must never take for orphans (Node would never fire their 'exit'):
 * spawned before the reaper started, between a stop() and a restart, or
 * after another copy of the library took the wrapper off. The children there
 * when the wrapper goes on get the grace rule, so an orphan already a zombie
 * at start is still reaped, after the grace window.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { childrenBeforeWrapper, holdPidfdOnEachChild, isChildFromBeforeWrapper } from "../../dist/runtime/child-pidfds.js";
import { loadLibc } from "../../dist/runtime/index.js";
import { PID1_PREFIX, runNodeFixture, scaled, unshareMissing } from "./helpers.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const FIXTURE = new URL("./fixtures/unwrapped-children.mjs", import.meta.url).pathname;
/** The fixture's graceMs. */
const GRACE_MS = 300;

for (const source of ["sigchld", "netlink"]) {
  for (const mode of ["before", "restart"]) {
    const when = mode === "before" ? "before startOrphanReaper" : "between a stop() and a restart";
    test(`${source}: a child spawned ${when} fires 'exit' with its code; the reaper takes nothing`, { timeout: scaled(60_000) }, (t) => {
      const result = runNodeFixture(FIXTURE, [mode, source]);
      if (result.source !== source) return void t.skip(`the reaper chose ${result.source}: ${source} cannot serve here`);
      assert.equal(result.wasZombie, true, "the child was a zombie with the sweep due before the loop turned");
      assert.equal(result.code, 5);
      assert.equal(result.reaped, 0);
      if (mode === "before") assert.deepEqual([result.listedAtStart, result.listedAfterExit], [true, false], "listed from start until a sweep found it gone");
    });
  }

  test(`${source}: an orphan already a zombie at start is reaped after the grace window, as of unknown provenance`, { timeout: scaled(60_000) }, (t) => {
    const result = runNodeFixture(FIXTURE, ["zombie-orphan", source]);
    if (result.source !== source) return void t.skip(`the reaper chose ${result.source}: ${source} cannot serve here`);
    assert.ok(result.orphan > 0, "an orphan was a zombie before the reaper started");
    assert.deepEqual(result.reaps.map(({ pid, provenance }) => ({ pid, provenance })), [{ pid: result.orphan, provenance: "unknown" }]);
    assert.ok(result.reaps[0].afterMs >= GRACE_MS, `reaped ${result.reaps[0].afterMs} ms after start, not within the grace window`);
  });
}

test("a child spawned from one 'exit' on the PID of a child whose 'exit' is still to come keeps its mark", { timeout: scaled(60_000) }, (t) => {
  const missing = unshareMissing();
  if (missing) return void t.skip(missing);
  const result = runNodeFixture(FIXTURE, ["pid-reuse", "sigchld"], { prefix: PID1_PREFIX });
  assert.equal(result.source, "sigchld");
  assert.deepEqual([result.bothZombies, result.samePid, result.wasZombie], [true, true, true], "both exited before libuv looked; the new child took the PID; it was a zombie with the sweep due");
  assert.equal(result.code, 7);
  assert.equal(result.reaped, 0);
});

test("two copies of the library: with the first copy's reaper stopped, the second's leaves Node's new child alone", { timeout: scaled(60_000) }, () => {
  // A second copy of dist/ beside the same node_modules (pino, koffi): another module instance of every file.
  const copy = mkdtempSync(join(tmpdir(), "orphan-reaper-copy-"));
  try {
    cpSync(join(ROOT, "dist"), join(copy, "dist"), { recursive: true });
    symlinkSync(join(ROOT, "node_modules"), join(copy, "node_modules"));
    writeFileSync(join(copy, "package.json"), JSON.stringify({ type: "module" }));
    const result = runNodeFixture(FIXTURE, ["two-copies", "sigchld", copy]);
    assert.equal(result.source, "sigchld");
    assert.equal(result.wasZombie, true, "the child was a zombie with the sweep due before the loop turned");
    assert.equal(result.code, 6);
    assert.equal(result.reaped, 0);
    assert.equal(result.spawnRestored, true, "the last reaper of either copy put Node's own spawn back");
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});

test("the children there when the wrapper goes on are listed by start time, and dropped once their PID names another process", { timeout: scaled(60_000) }, async () => {
  const waiting = () => spawn("sh", ["-c", "read _; exit 4"], { stdio: ["pipe", "ignore", "ignore"] });
  const before = waiting();
  const remove = await holdPidfdOnEachChild(loadLibc());
  const after = waiting();
  try {
    const startTime = childrenBeforeWrapper().get(before.pid);
    assert.ok(startTime !== undefined, "the child spawned before the wrapper is listed");
    assert.equal(childrenBeforeWrapper().has(after.pid), false, "the wrapper's own child is not");
    assert.equal(isChildFromBeforeWrapper(before.pid, startTime), true);
    assert.equal(isChildFromBeforeWrapper(before.pid, startTime + 1), false, "another start time: the PID changed hands");
    assert.equal(childrenBeforeWrapper().has(before.pid), false, "and it is dropped");
  } finally {
    remove();
    for (const child of [before, after]) {
      const exit = once(child, "exit");
      child.stdin.end();
      assert.deepEqual(await exit, [4, null]);
    }
  }
});
