/**
 * The runtime seam holds: only src/runtime/ loads bun:ffi or koffi, and
 * every runtime dependency in package.json is imported by the sources.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { scaled } from "./helpers.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const sources = readdirSync(join(ROOT, "src"), { recursive: true })
  .filter((file) => file.endsWith(".ts"))
  .map((file) => ({ file: join("src", file), text: readFileSync(join(ROOT, "src", file), "utf8") }));

/** Module specifiers the file imports: `from "x"`, `import("x")`, `require("x")`, `createRequire(...)("x")`. */
function importsOf(text) {
  const pattern = /(?:from\s+|import\(\s*|require\(\s*|createRequire\([^)]*\)\(\s*)["']([^"']+)["']/g;
  return [...text.matchAll(pattern)].map((match) => match[1]);
}

test("only src/runtime/ imports bun:ffi or koffi", { timeout: scaled(30_000) }, () => {
  const offenders = sources
    .filter(({ file }) => !file.startsWith(join("src", "runtime")))
    .flatMap(({ file, text }) => importsOf(text).filter((name) => name === "bun:ffi" || name === "koffi").map((name) => `${file}: ${name}`));
  assert.deepEqual(offenders, []);
  const runtime = sources.filter(({ file }) => file.startsWith(join("src", "runtime")));
  assert.ok(runtime.some(({ text }) => importsOf(text).includes("bun:ffi")), "the Bun binding imports bun:ffi");
  assert.ok(runtime.some(({ text }) => importsOf(text).includes("koffi")), "the Node binding loads koffi");
});

test("every dependency and optional dependency is imported by the sources", { timeout: scaled(30_000) }, () => {
  const manifest = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const imported = new Set(sources.flatMap(({ text }) => importsOf(text)));
  const declared = [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.optionalDependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})];
  assert.deepEqual(declared.filter((name) => !imported.has(name)), [], `imported: ${[...imported].filter((name) => !name.startsWith(".")).join(", ")}`);
});
