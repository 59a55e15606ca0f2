/**
 * How long after exec `orphan-reaper run` leaves a signal uncaught: starts
 * `run -- sleep 2` N times per runtime, and a bare runtime whose first line
 * listens (the floor), and reads the init's /proc/PID/status
 * in a tight loop (no fork, no tracer) until SigCgt shows SIGHUP (the first
 * relay listener) and SIGRTMIN (the native handler). Prints the times in
 * ms from the spawn's return, min / median / max.
 *   bun scripts/run-startup-window.ts [rounds]   (needs dist/: npm run build)
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadLibc } from "../src/runtime/index.ts";

const root = join(import.meta.dir, "..");
const rounds = Number(process.argv[2] ?? 10);
const SIGHUP = 1;
const SIGRTMIN = loadLibc().realtimeSignalRange().min;

/** A bare runtime whose first line listens to SIGHUP: the floor under `run`. */
const FLOOR = 'process.on("SIGHUP", () => process.exit(0)); setTimeout(() => {}, 2000)';
const ENTRIES: Record<string, { argv: string[]; native: boolean }> = {
  "bun src/cli/main.ts run -- sleep 2": { argv: [process.execPath, join(root, "src/cli/main.ts"), "run", "--", "sleep", "2"], native: true },
  "bun -e (floor)": { argv: [process.execPath, "-e", FLOOR], native: false },
  "node dist/cli/main.js run -- sleep 2 (the bin)": { argv: ["node", join(root, "dist/cli/main.js"), "run", "--", "sleep", "2"], native: true },
  "node -e (floor)": { argv: ["node", "-e", FLOOR], native: false },
};

function caught(pid: number): bigint {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return BigInt(`0x${/^SigCgt:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? "0"}`);
}

const bit = (signal: number) => 1n << BigInt(signal - 1);
const summary = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `${sorted[0]!.toFixed(1)} / ${sorted[sorted.length >> 1]!.toFixed(1)} / ${sorted.at(-1)!.toFixed(1)} ms`;
};

for (const [label, { argv, native }] of Object.entries(ENTRIES)) {
  const hup: number[] = [];
  const rt: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const init = Bun.spawn(argv, { stdout: "ignore", stderr: "inherit" });
    const start = performance.now();
    let hupAt: number | undefined;
    let rtAt: number | undefined;
    while (hupAt === undefined || (native && rtAt === undefined)) {
      const mask = caught(init.pid);
      const now = performance.now() - start;
      if (mask & bit(SIGHUP)) hupAt ??= now;
      if (mask & bit(SIGRTMIN)) rtAt ??= now;
      if (now > 10_000) throw new Error(`${label}: no handlers after 10 s`);
    }
    hup.push(hupAt);
    if (rtAt !== undefined) rt.push(rtAt);
    init.kill("SIGHUP"); // held until the command runs, then forwarded: both end
    await init.exited;
  }
  const rtText = native ? `; SIGRTMIN after ${summary(rt)}` : "";
  console.log(`${label}: SIGHUP caught after ${summary(hup)}${rtText} (${rounds} runs, min / median / max)`);
}
