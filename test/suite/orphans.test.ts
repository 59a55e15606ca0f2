/**
 * The orphan helper keeps its promises: each orphan starts its work only once
 * it has been reparented to us, held orphans wait for release(), and held
 * orphans end by themselves when the process holding their gate dies.
 */
import { beforeAll, expect, test } from "bun:test";
import { P_PID, WEXITED } from "../../src/libc.ts";
import { loadLibc } from "../../src/runtime/index.ts";
import { spawnOrphans } from "../helpers/orphans.ts";
import { isZombie, parentOf } from "../helpers/processes.ts";
import { parseTestScale, scaled, sleep, waitUntil } from "../helpers/time.ts";

const libc = loadLibc();
beforeAll(() => libc.setChildSubreaper(true));

/** Reaps adopted zombies (Bun does not track them) and returns their exit codes. */
function reapAll(pids: readonly number[]): number[] {
  return pids.map((pid) => libc.waitid(P_PID, pid, WEXITED).status);
}

test("each orphan's body runs only once its parent is gone and it is ours", async () => {
  // The body exits 0 when its parent, read from its own stat with builtins, is this process.
  const body = `read -r stat < /proc/self/stat; set -- $stat; [ "$4" = "${process.pid}" ]`;
  const { pids } = await spawnOrphans(120, { body });
  expect(await waitUntil(() => pids.every(isZombie), 20_000)).toBe(true);
  expect(reapAll(pids)).toEqual(pids.map(() => 0));
}, scaled(40_000));

test("held orphans wait, alive and ours, until release()", async () => {
  const { pids, release } = await spawnOrphans(30, { hold: true, body: "exit 4" });
  try {
    await sleep(200); // a window in which nothing may happen
    expect(pids.every((pid) => parentOf(pid) === process.pid && !isZombie(pid))).toBe(true);
  } finally {
    release();
  }
  expect(await waitUntil(() => pids.every(isZombie), 20_000)).toBe(true);
  expect(reapAll(pids)).toEqual(pids.map(() => 4));
}, scaled(40_000));

test("held orphans end by themselves when the process that holds their gate is SIGKILLed", async () => {
  const holder = Bun.spawn([process.execPath, `${import.meta.dir}/../fixtures/suite/hold-orphans.ts`, "20"], { stdout: "pipe" });
  try {
    const reader = holder.stdout.getReader();
    const pids: number[] = JSON.parse(new TextDecoder().decode((await reader.read()).value));
    reader.releaseLock();
    expect(pids).toHaveLength(20);
    // The holder is no subreaper: they were reparented to us, and wait on its gate.
    expect(pids.every((pid) => !isZombie(pid) && parentOf(pid) === process.pid)).toBe(true);
    holder.kill("SIGKILL");
    await holder.exited;
    expect(await waitUntil(() => pids.every(isZombie), 20_000)).toBe(true);
    expect(reapAll(pids)).toEqual(pids.map(() => 6));
  } finally {
    holder.kill("SIGKILL");
    await holder.exited;
  }
}, scaled(40_000));

test("ORPHAN_REAPER_TEST_SCALE is a positive multiplier, 1 when unset", () => {
  expect(parseTestScale(undefined)).toBe(1);
  expect(parseTestScale("")).toBe(1);
  expect(parseTestScale("2.5")).toBe(2.5);
  for (const bad of ["0", "-1", "abc", "Infinity"]) expect(() => parseTestScale(bad)).toThrow(/ORPHAN_REAPER_TEST_SCALE/);
});
