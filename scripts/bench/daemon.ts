/**
 * The reaper under test: a daemon that starts orphan-reaper, optionally holds
 * N long-lived children of its own, measures its own event-loop delay, and
 * runs the workload as its child. Writes one JSON line to $BENCH_DAEMON_OUT.
 * usage: bun scripts/bench/daemon.ts --source S [--live-children N] [--loop-delay] -- cmd...
 * --loop-delay turns the 1 ms probe on (it costs 1000 wakeups/s: off for CPU and idle rows).
 */
import { appendFileSync } from "node:fs";
import { parseArgs } from "node:util";
import pino from "pino";
import { startOrphanReaper, type SourceName } from "../../src/index.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    source: { type: "string", default: "auto" },
    "live-children": { type: "string", default: "0" },
    "loop-delay": { type: "boolean", default: false },
  },
});
const reaper = await startOrphanReaper({ source: values.source as SourceName | "auto", logger: pino({ level: "warn" }) });
const liveChildren = Array.from({ length: Number(values["live-children"]) }, () =>
  Bun.spawn(["sleep", "600"], { stdio: ["ignore", "ignore", "ignore"] }),
);

// Event-loop delay: how late a 1 ms interval fires.
const delays: number[] = [];
let expected = performance.now() + 1;
const ticker = values["loop-delay"]
  ? setInterval(() => {
      const now = performance.now();
      delays.push(Math.max(0, now - expected));
      expected = now + 1;
    }, 1)
  : undefined;

const workload = Bun.spawn(positionals, { stdio: ["ignore", "inherit", "inherit"] });
await workload.exited;
clearInterval(ticker);
for (const child of liveChildren) child.kill("SIGKILL");
await Promise.all(liveChildren.map((child) => child.exited));
delays.sort((a, b) => a - b);
const result = {
  source: reaper.source,
  reaped: reaper.stats().reaped,
  loop_delay_p99_ms: delays[Math.floor(delays.length * 0.99)] ?? 0,
  loop_delay_max_ms: delays.at(-1) ?? 0,
};
await reaper.stop();
if (process.env.BENCH_DAEMON_OUT) appendFileSync(process.env.BENCH_DAEMON_OUT, `${JSON.stringify(result)}\n`);
