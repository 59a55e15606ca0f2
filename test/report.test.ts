/**
 * The reporter asks pino nothing per reap: whether the reap line is written
 * follows the logger's level through pino's level-change event, so a level
 * raised or lowered while the reaper runs takes effect at the next reap.
 */
import { expect, test } from "bun:test";
import pino from "pino";
import { Reporter } from "../src/report.ts";

const EXITED = { exitCode: 0, signal: null, coreDumped: false };

test("the reap line follows the logger's level as it changes; the record is kept either way", () => {
  const lines: { msg: string; orphan?: { pid: number } }[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) }).child({ component: "orphan-reaper" });
  const recorded: number[] = [];
  const reporter = new Reporter({ logger, reapLogLevel: "debug", record: (_source, lifetimeMs) => void recorded.push(lifetimeMs) });
  const reapedLines = () => lines.filter((line) => line.msg === "reaped orphan").map((line) => line.orphan?.pid);
  try {
    reporter.reaped(101, "", EXITED, "sigchld", "adopted", undefined, performance.now());
    expect(reporter.wantsComm).toBe(false);
    logger.level = "debug";
    expect(reporter.wantsComm).toBe(true);
    reporter.reaped(102, "sh", EXITED, "sigchld", "adopted", undefined, performance.now());
    logger.level = "info";
    reporter.reaped(103, "", EXITED, "sigchld", "adopted", undefined, performance.now());
    expect(reapedLines()).toEqual([102]);
    expect(recorded).toHaveLength(3);
  } finally {
    reporter.close();
  }
});

test("onReap gets every record, with the lifetime from the exit time when known; a throwing onReap does not stop the count", () => {
  const seen: { pid: number; lifetimeMs?: number; seenForMs: number }[] = [];
  let recorded = 0;
  const reporter = new Reporter({
    logger: pino({ level: "silent" }),
    reapLogLevel: "info",
    onReap: (reaped) => {
      seen.push(reaped);
      if (reaped.pid === 202) throw new Error("listener bug");
    },
    record: () => void (recorded += 1),
  });
  try {
    const now = performance.now();
    reporter.reaped(201, "sh", EXITED, "netlink", "adopted", now - 5, now - 2);
    reporter.reaped(202, "sh", EXITED, "sigchld", "adopted", undefined, now - 3);
    expect(recorded).toBe(2);
    expect(seen.map((reaped) => reaped.pid)).toEqual([201, 202]);
    expect(seen[0]!.lifetimeMs).toBeGreaterThanOrEqual(5);
    expect(seen[1]!.lifetimeMs).toBeUndefined();
    expect(seen[1]!.seenForMs).toBeGreaterThanOrEqual(3);
  } finally {
    reporter.close();
  }
});
