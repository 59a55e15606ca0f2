#!/usr/bin/env node
/**
 * The Node.js half of `npm test`: builds dist/ (what a Node user imports),
 * then runs test/node/*.node.mjs with Node's own test runner, one file at a
 * time (each starts daemons and storms of orphans; the machine is shared).
 * The files are not named *.test.* so that `bun test` does not pick them up.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const run = (command, args) => spawnSync(command, args, { cwd: root, stdio: "inherit" }).status ?? 1;

const built = run(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"]);
if (built !== 0) process.exit(built);
const files = readdirSync(join(root, "test/node")).filter((name) => name.endsWith(".node.mjs")).sort().map((name) => join("test/node", name));
process.exit(run(process.execPath, ["--test", "--test-concurrency=1", "--test-reporter=spec", ...files]));
