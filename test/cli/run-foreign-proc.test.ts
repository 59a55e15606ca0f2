/**
 * `run` as PID 1 of a new PID namespace whose /proc is still the host's
 * (`unshare -p -f` without --mount-proc): /proc/1 is the host's init there,
 * so nothing may be listed or signalled through /proc. The command still
 * runs, and run exits with its code.
 */
import { expect, test } from "bun:test";
import { isLive, spawnLiveChild } from "../helpers/processes.ts";
import { scaled } from "../helpers/time.ts";
import { logLines, runCli, unshareUnavailable } from "../helpers/cli.ts";

/** --kill-child: when unshare dies (a timeout kills it), so do PID 1 and its namespace. */
const FOREIGN_PROC_FLAGS = ["-p", "-f", "--kill-child"];
const skip = unshareUnavailable(FOREIGN_PROC_FLAGS);
if (skip) console.log(`skipping the foreign /proc test: ${skip}`);

test.skipIf(skip !== undefined)("with the host's /proc, run says once that descendants get no signal, sends none, and exits with the child's code", async () => {
  const canary = spawnLiveChild(); // a process of the host's: it must outlive run
  try {
    const { exitCode, stderr } = await runCli(["run", "-v", "--grace-ms", "300", "--", "sh", "-c", "exit 4"], ["unshare", ...FOREIGN_PROC_FLAGS]);
    expect(exitCode).toBe(4);
    const lines = logLines(stderr);
    const skipped = lines.filter((line) => line.msg === "the descendants the child leaves will get no signal: /proc cannot tell which they are");
    expect(skipped).toEqual([expect.objectContaining({ level: 40, reason: expect.stringContaining("another PID namespace's") })]);
    expect(lines.filter((line) => /SIGTERM|SIGKILL/.test(String(line.msg)))).toEqual([]);
    expect(isLive(canary.pid)).toBe(true);
  } finally {
    canary.kill("SIGKILL");
  }
}, scaled(30_000));
