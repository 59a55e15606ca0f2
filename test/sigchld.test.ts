/**
 * The SIGCHLD source: merged signals must leave no zombie (the sweep is set
 * far away so it cannot help), and the process's other SIGCHLD listeners and
 * the runtime's own child handling keep working.
 */
import { afterEach, beforeAll, expect, test } from "bun:test";
import { loadLibc } from "../src/runtime/index.ts";
import { startOrphanReaper, type OrphanReaper } from "../src/index.ts";
import { capturingLogger } from "./helpers/logs.ts";
import { Gate, makeOrphans, spawnOrphans } from "./helpers/orphans.ts";
import { isZombie, zombieChildren } from "./helpers/processes.ts";
import { scaled, sleep, waitUntil } from "./helpers/time.ts";

let reaper: OrphanReaper | undefined;
beforeAll(() => loadLibc().setChildSubreaper(true));
afterEach(async () => {
  await reaper?.stop();
  reaper = undefined;
});

const farSweep = { sweepIntervalMs: 3_600_000 };

test("hundreds of orphans exiting at once (merged signals) leave no zombie", async () => {
  reaper = await startOrphanReaper({ source: "sigchld", ...farSweep, logger: capturingLogger("warn").logger });
  // 500 orphans wait on one gate, then all exit within milliseconds.
  const orphans = await spawnOrphans(500, { body: "exit 4", hold: true });
  orphans.release();
  expect(await waitUntil(() => reaper!.stats().reaped === 500, 30_000)).toBe(true);
  expect(await zombieChildren()).toEqual([]);
  expect(reaper.stats().reapedBySource).toMatchObject({ sigchld: 500, sweep: 0 });
}, scaled(60_000));

test("another SIGCHLD listener in the same process still fires, and Bun.spawn still works", async () => {
  let otherListenerCalls = 0;
  const otherListener = () => void (otherListenerCalls += 1);
  process.on("SIGCHLD", otherListener);
  try {
    reaper = await startOrphanReaper({ source: "sigchld", ...farSweep, logger: capturingLogger("warn").logger });
    const before = otherListenerCalls;
    await makeOrphans(5, 0);
    expect(await waitUntil(() => reaper!.stats().reaped === 5, 10_000)).toBe(true);
    expect(otherListenerCalls).toBeGreaterThan(before);
    expect(await Bun.spawn(["sh", "-c", "exit 9"]).exited).toBe(9);
  } finally {
    process.off("SIGCHLD", otherListener);
  }
}, scaled(20_000));

// SYS_exit (not exit_group) ends only the calling thread; 60 on x86_64.
const threadExitUnavailable =
  process.arch !== "x64" ? `SYS_exit number not known for ${process.arch}` : Bun.which("python3") ? undefined : "python3 is not installed";
if (threadExitUnavailable) console.warn(`skipping the zombie-leader test: ${threadExitUnavailable}`);

test.skipIf(!!threadExitUnavailable)("a leader that exited while its threads live is reaped only once the last thread is gone", async () => {
  reaper = await startOrphanReaper({ source: "sigchld", sweepIntervalMs: 100, logger: capturingLogger("warn").logger });
  // The thread lives until its stdin (a gate of ours) reads EOF: we decide when, and our death ends it.
  const threadGate = new Gate();
  const python = "import ctypes, sys, threading; threading.Thread(target=sys.stdin.read).start(); ctypes.CDLL(None).syscall(60, 0)";
  try {
    const { pids: [leader] } = await spawnOrphans(1, { body: `exec python3 -c '${python}'`, stdin: threadGate.readEnd });
    expect(await waitUntil(() => isZombie(leader!), 10_000)).toBe(true);
    await sleep(300); // several 100 ms sweeps while the thread still runs: a quiet window, not a wait for an event
    expect(reaper.stats().reaped).toBe(0);
    expect(isZombie(leader!)).toBe(true);
    threadGate.open();
    expect(await waitUntil(() => reaper!.stats().reaped === 1, 10_000)).toBe(true);
    expect(await zombieChildren()).toEqual([]);
  } finally {
    threadGate.open();
    threadGate.close();
  }
}, scaled(30_000));
