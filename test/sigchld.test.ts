/**
 * The SIGCHLD source: merged signals must leave no zombie (the sweep is set
 * far away so it cannot help), and the process's other SIGCHLD listeners and
 * the runtime's own child handling keep working.
 */
import { afterEach, beforeAll, expect, test } from "bun:test";
import { loadLibc } from "../src/runtime/index.ts";
import { startOrphanReaper, type OrphanReaper } from "../src/index.ts";
import { capturingLogger } from "./helpers/logs.ts";
import { makeOrphans, makeOrphansRunning, waitUntil, zombieChildren } from "./helpers/processes.ts";

let reaper: OrphanReaper | undefined;
beforeAll(() => loadLibc().setChildSubreaper(true));
afterEach(async () => {
  await reaper?.stop();
  reaper = undefined;
});

const farSweep = { sweepIntervalMs: 3_600_000 };

test("hundreds of orphans exiting at once (merged signals) leave no zombie", async () => {
  reaper = await startOrphanReaper({ source: "sigchld", ...farSweep, logger: capturingLogger("warn").logger });
  const release = `/tmp/orphan-reaper-release-${process.pid}`;
  try {
    // 500 orphans wait on one file (10 s at most, should this test die), then all exit within milliseconds.
    await makeOrphansRunning(500, `n=0; while [ ! -e ${release} ] && [ $n -lt 500 ]; do sleep 0.02; n=$((n+1)); done; exit 4`);
    await Bun.write(release, "go");
    expect(await waitUntil(() => reaper!.stats().reaped === 500, 10_000)).toBe(true);
    expect(await zombieChildren()).toEqual([]);
    expect(reaper.stats().reapedBySource).toMatchObject({ sigchld: 500, sweep: 0 });
  } finally {
    await Bun.write(release, "go");
    await Bun.file(release).delete();
  }
}, 30_000);

test("another SIGCHLD listener in the same process still fires, and Bun.spawn still works", async () => {
  let otherListenerCalls = 0;
  const otherListener = () => void (otherListenerCalls += 1);
  process.on("SIGCHLD", otherListener);
  try {
    reaper = await startOrphanReaper({ source: "sigchld", ...farSweep, logger: capturingLogger("warn").logger });
    const before = otherListenerCalls;
    await makeOrphans(5, 0, 0.05);
    expect(await waitUntil(() => reaper!.stats().reaped === 5, 3000)).toBe(true);
    expect(otherListenerCalls).toBeGreaterThan(before);
    expect(await Bun.spawn(["sh", "-c", "exit 9"]).exited).toBe(9);
  } finally {
    process.off("SIGCHLD", otherListener);
  }
});

// SYS_exit (not exit_group) ends only the calling thread; 60 on x86_64.
const threadExitUnavailable =
  process.arch !== "x64" ? `SYS_exit number not known for ${process.arch}` : Bun.which("python3") ? undefined : "python3 is not installed";
if (threadExitUnavailable) console.warn(`skipping the zombie-leader test: ${threadExitUnavailable}`);

test.skipIf(!!threadExitUnavailable)("a leader that exited while its threads live is reaped only once the last thread is gone", async () => {
  reaper = await startOrphanReaper({ source: "sigchld", sweepIntervalMs: 100, logger: capturingLogger("warn").logger });
  const python = "import ctypes, threading, time; threading.Thread(target=lambda: time.sleep(0.6)).start(); ctypes.CDLL(None).syscall(60, 0)";
  await makeOrphansRunning(1, `exec python3 -c '${python}'`);
  const leaderIsZombie = async () => (await zombieChildren()).length === 1;
  expect(await waitUntil(leaderIsZombie, 2000)).toBe(true);
  await Bun.sleep(200); // several sweeps while the thread still runs
  expect(reaper.stats().reaped).toBe(0);
  expect(await waitUntil(() => reaper!.stats().reaped === 1, 3000)).toBe(true);
  expect(await zombieChildren()).toEqual([]);
});
