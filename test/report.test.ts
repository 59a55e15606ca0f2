/**
 * The reporter asks pino nothing per reap unless the level changed: whether
 * the reap line is written follows the logger's level, set on it or on the
 * daemon's logger it is a child of, from the next reap on.
 */
import { expect, test } from "bun:test";
import pino from "pino";
import { Reporter } from "../src/report.ts";

/** A zombie reaped after exit(0), its comm read (or not) as the caller's wantsComm said. */
const exited = (comm: string | undefined) => ({ kind: "reaped" as const, exitCode: 0, signal: null, coreDumped: false, comm });

/** A reap as every caller reports it: the comm read only where wantsComm says someone listens. */
function reportReap(reporter: Reporter, pid: number, source: "netlink" | "sigchld") {
  const now = performance.now();
  reporter.reaped(pid, exited(reporter.wantsComm ? "sh" : undefined), source, "adopted", undefined, now, now);
}

function recordingLogger() {
  const lines: { msg: string; orphan?: { pid: number } }[] = [];
  const parent = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const reapedLines = () => lines.filter((line) => line.msg === "reaped orphan").map((line) => line.orphan?.pid);
  return { parent, logger: parent.child({ component: "orphan-reaper" }), reapedLines };
}

test("the reap line follows the level set on the reaper's logger as it changes; the record is kept either way", () => {
  const { logger, reapedLines } = recordingLogger();
  const recorded: number[] = [];
  const reporter = new Reporter({ logger, reapLogLevel: "debug", lifetimes: { recordLifetime: (_source, lifetimeMs) => void recorded.push(lifetimeMs) } });
  reportReap(reporter, 101, "sigchld");
  expect(reporter.wantsComm).toBe(false);
  logger.level = "debug";
  expect(reporter.wantsComm).toBe(true);
  reportReap(reporter, 102, "sigchld");
  logger.level = "info";
  reportReap(reporter, 103, "sigchld");
  expect(reapedLines()).toEqual([102]);
  expect(recorded).toHaveLength(3);
  expect(reporter.counts()).toEqual({ reaped: 3, reapedBySource: expect.objectContaining({ sigchld: 3, netlink: 0 }) });
});

test("the reap line follows the level set on the daemon's logger, which the reaper's child logger follows", () => {
  const { parent, logger, reapedLines } = recordingLogger();
  const reporter = new Reporter({ logger, reapLogLevel: "debug" });
  reportReap(reporter, 201, "netlink");
  parent.level = "debug";
  reportReap(reporter, 202, "netlink");
  expect(reapedLines()).toEqual([202]);
});

test("onReap gets every record, with the lifetime from the exit time when known; a throwing onReap does not stop the count", () => {
  const seen: { pid: number; lifetimeMs?: number; seenForMs: number }[] = [];
  const reporter = new Reporter({
    logger: pino({ level: "silent" }),
    reapLogLevel: "info",
    onReap: (reaped) => {
      seen.push(reaped);
      if (reaped.pid === 302) throw new Error("listener bug");
    },
  });
  const now = performance.now();
  reporter.reaped(301, exited("sh"), "netlink", "adopted", now - 5, now - 2, now);
  reporter.reaped(302, exited("sh"), "sigchld", "adopted", undefined, now - 3, now);
  expect(reporter.counts().reaped).toBe(2);
  expect(reporter.lastReapAt).toBe(now);
  expect(seen.map((reaped) => reaped.pid)).toEqual([301, 302]);
  expect(seen[0]!.lifetimeMs).toBeGreaterThanOrEqual(5);
  expect(seen[1]!.lifetimeMs).toBeUndefined();
  expect(seen[1]!.seenForMs).toBeGreaterThanOrEqual(3);
});
