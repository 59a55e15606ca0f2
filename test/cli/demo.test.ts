import { expect, test } from "bun:test";
import { join } from "node:path";
import { scaled } from "../helpers/time.ts";

const DEMO = join(import.meta.dir, "../../scripts/demo.ts");

test(
  "npm run demo: without a reaper zombies pile up, with sigchld none is left; plain lines when piped",
  async () => {
    const demo = Bun.spawn([process.execPath, DEMO], { stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, exitCode] = await Promise.all([new Response(demo.stdout).text(), new Response(demo.stderr).text(), demo.exited]);
    expect(stderr).toBe("");
    expect(exitCode).toBe(0);
    expect(stdout).not.toContain("\x1b[");
    const row = (label: string) => stdout.split("\n").find((line) => line.startsWith(label) && /\d+\s+\d+\s+\d+/.test(line));
    const [, orphans, reapedWithout, leftWithout] = /^no reaper\s+(\d+)\s+(\d+)\s+(\d+)/.exec(row("no reaper") ?? "") ?? [];
    expect(Number(orphans)).toBeGreaterThan(300);
    expect(Number(reapedWithout)).toBe(0);
    expect(Number(leftWithout)).toBe(Number(orphans));
    expect(row("sigchld")).toMatch(/^sigchld\s+(\d+)\s+\1\s+0\s+[\d.]+ ms/);
    expect(row("sweep only")).toMatch(/^sweep only \(every 1 s here\)\s+(\d+)\s+\1\s+0\s+[\d.]+ ms/);
  },
  scaled(180_000),
);
