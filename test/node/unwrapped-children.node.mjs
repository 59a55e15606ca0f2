/**
 * Node's children that the spawn wrapper did not put its mark on, which the
 * reaper must never take for orphans (Node would never fire their 'exit'):
 * here, children spawned after another copy of the library took the
 * wrapper off.
 */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runNodeFixture, scaled } from "./helpers.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const FIXTURE = new URL("./fixtures/unwrapped-children.mjs", import.meta.url).pathname;

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
