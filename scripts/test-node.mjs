#!/usr/bin/env node
/**
 * The Node.js half of `npm test`: builds dist/ (what a Node user imports),
 * then runs test/node/*.node.mjs (or the files named as arguments) one at a
 * time (each starts daemons and storms of orphans; the machine is shared)
 * with the Bun half's runner, scripts/test-each-file.ts: each file runs as
 * `node --test` (this node) under scripts/run-test-file.ts, a child subreaper
 * that gives it a process group of its own and a per-file timeout scaled by
 * ORPHAN_REAPER_TEST_SCALE, kills the group and every process left when the
 * file ends, and fails the file if there were any. The runner and the guard
 * run under Bun (a devDependency: node_modules/.bin/bun); the tests, under
 * this Node. The files are not named *.test.* so that `bun test` does not
 * pick them up.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const RUNNER = join(root, "scripts/test-each-file.ts");
const LOCAL_BUN = join(root, "node_modules/.bin/bun");
const bun = existsSync(LOCAL_BUN) ? LOCAL_BUN : "bun";

function run(command, args, env = process.env) {
  const result = spawnSync(command, args, { cwd: root, stdio: "inherit", env });
  if (result.error) console.error(`cannot run ${command}: ${result.error.message}${command === bun ? " (bun, a devDependency, runs the per-file guard: npm install)" : ""}`);
  return result.status ?? 1;
}

const built = run(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"]);
if (built !== 0) process.exit(built);
const named = process.argv.slice(2);
const files = named.length > 0 ? named : readdirSync(join(root, "test/node")).filter((name) => name.endsWith(".node.mjs")).sort().map((name) => join("test/node", name));
// The tests run fixtures under Bun too (test/fixtures/without-pidfd.ts): the same bun.
process.exit(run(bun, [RUNNER, ...files], { ...process.env, ORPHAN_REAPER_TEST_NODE: process.execPath, ORPHAN_REAPER_TEST_BUN: bun }));
