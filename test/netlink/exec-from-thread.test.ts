/**
 * A runtime child whose exec comes from a thread other than the leader (Go's
 * syscall.Exec, Python's os.execv in a thread): the kernel's de_thread()
 * ends the old leader first, an EXIT event with pid == tgid while the process
 * runs on, and its real end is a second EXIT for the same PID with no FORK
 * between. That second EXIT was taken for an adopted orphan's and reaped on
 * the spot: Bun died of ECHILD. Whether both EXITs are read in one drain or
 * the first long before the second, the child stays the runtime's.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startOrphanReaper, type OrphanReaper, type ReapedProcess } from "../../src/index.ts";
import { readStat } from "../../src/procfs.ts";
import { loadLibc } from "../../src/runtime/index.ts";
import { capturingLogger } from "../helpers/logs.ts";
import { Gate } from "../helpers/orphans.ts";
import { isZombie } from "../helpers/processes.ts";
import { blockEventLoopUntil, scaled, waitUntil } from "../helpers/time.ts";
import { PROBE_HOOK_TIMEOUT_MS, PROBE_TIMEOUT_MS } from "./harness.ts";

const EXEC_FROM_THREAD = `${import.meta.dir}/../fixtures/exec-from-thread.ts`;
const ROUNDS = 3;

let reaper: OrphanReaper;
const reaped: ReapedProcess[] = [];
beforeAll(async () => {
  loadLibc().setChildSubreaper(true);
  reaper = await startOrphanReaper({
    source: "netlink", netlinkProbeTimeoutMs: PROBE_TIMEOUT_MS, sweepIntervalMs: 3_600_000,
    logger: capturingLogger("warn").logger, onReap: (p) => reaped.push(p),
  });
}, PROBE_HOOK_TIMEOUT_MS);
afterAll(() => reaper.stop());

/** A Bun.spawn child that execs `sh -c "read _; exit 7"` from a Worker thread, held at `read` until the gate opens. */
function spawnExecFromThread(gate: Gate) {
  return Bun.spawn([process.execPath, EXEC_FROM_THREAD, "sh", "-c", "read _; exit 7"], { stdin: gate.readEnd });
}

test("both EXITs in one drain: the child keeps its exit code, nothing is reaped", async () => {
  expect(reaper.source).toBe("netlink");
  for (let round = 0; round < ROUNDS; round++) {
    const gate = new Gate();
    const child = spawnExecFromThread(gate);
    gate.close();
    gate.open();
    // Bun cannot reap while the loop is blocked: both EXITs are queued before the reaper reads either.
    expect(blockEventLoopUntil(() => isZombie(child.pid), 20_000)).toBe(true);
    expect(await child.exited).toBe(7);
    expect(reaped.filter((p) => p.pid === child.pid)).toEqual([]);
  }
}, scaled(60_000));

test("the leader's EXIT read while the process runs on, its end read later: the child keeps its exit code", async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const gate = new Gate();
    const child = spawnExecFromThread(gate);
    gate.close();
    // The exec has happened (the leader's EXIT is queued) once the process is sh.
    expect(await waitUntil(() => readStat(child.pid)?.comm === "sh", 20_000)).toBe(true);
    // Another child's SIGCHLD makes the reaper read the proc connector meanwhile.
    expect(await Bun.spawn(["true"]).exited).toBe(0);
    gate.open();
    expect(blockEventLoopUntil(() => isZombie(child.pid), 20_000)).toBe(true);
    expect(await child.exited).toBe(7);
    expect(reaped.filter((p) => p.pid === child.pid)).toEqual([]);
  }
}, scaled(60_000));
