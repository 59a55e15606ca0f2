/**
 * In an executable made with `bun build --compile`, process.execPath is the
 * app: a probe that spawned it to run Bun would start the daemon again (and
 * that copy its own probes). The probes must run plain Bun (BUN_BE_BUN=1).
 */
import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { killTree } from "./helpers/processes.ts";
import { scaled } from "./helpers/time.ts";

test("a daemon compiled with bun build --compile starts once: its probes run plain Bun, not the app", async () => {
  const dir = mkdtempSync(join(tmpdir(), "orphan-reaper-compiled-"));
  try {
    const executable = join(dir, "daemon");
    const build = Bun.spawnSync([process.execPath, "build", "--compile", join(import.meta.dir, "fixtures/compiled-daemon.ts"), "--outfile", executable], { stderr: "pipe" });
    expect(build.stderr.toString()).not.toContain("error");
    expect(build.exitCode).toBe(0);
    const starts = join(dir, "starts");
    const daemon = Bun.spawn([executable], { stdout: "pipe", stderr: "inherit", env: { ...process.env, ORPHAN_REAPER_STARTS: starts } });
    try {
      const printed = JSON.parse(await new Response(daemon.stdout).text());
      expect(await daemon.exited).toBe(0);
      expect(["netlink", "sigchld"]).toContain(printed.source);
      expect(readFileSync(starts, "utf8").trim().split("\n")).toEqual([String(daemon.pid)]);
    } finally {
      killTree(daemon);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, scaled(60_000));
