/**
 * The reap primitive on real processes: a zombie is pinned (pidfd, then a
 * peek through the pidfd) only when it is a waitable zombie child of ours, nothing is left open otherwise, and the reap takes exactly the pinned
 * instance.
 */
import { expect, test } from "bun:test";
import { P_PID, WEXITED, WNOHANG } from "../src/libc.ts";
import { loadLibc } from "../src/runtime/index.ts";
import { readStat } from "../src/procfs.ts";
import { pinZombie, reapZombie, releaseZombies } from "../src/zombie.ts";
import { makeOrphans } from "./helpers/orphans.ts";
import { isZombie, killTree, openFdCount, parentOf, spawnLiveChild } from "./helpers/processes.ts";
import { scaled, waitUntil } from "./helpers/time.ts";

const libc = loadLibc();
libc.setChildSubreaper(true);

async function oneOrphanZombie(exitCode: number): Promise<number> {
  const [pid] = await makeOrphans(1, exitCode);
  expect(await waitUntil(() => isZombie(pid!), 10_000)).toBe(true);
  return pid!;
}

/** For finally blocks: reaps `pid` if it is still a zombie child of ours (a test failed before its reap). */
function reapIfLeft(pid: number): void {
  if (!isZombie(pid) || parentOf(pid) !== process.pid) return;
  try {
    libc.waitid(P_PID, pid, WEXITED | WNOHANG);
  } catch {
    // taken meanwhile
  }
}

test("pins an orphan's zombie and reaps exactly it, with its exit code", async () => {
  const pid = await oneOrphanZombie(3);
  const fdsBefore = openFdCount();
  let zombie = pinZombie(libc, process.pid, pid);
  try {
    expect(zombie).toMatchObject({ pid });
    expect(readStat(pid)).toMatchObject({ pid, state: "Z", ppid: process.pid });
    expect(reapZombie(libc, process.pid, zombie!)).toEqual({ kind: "reaped", exitCode: 3, signal: null, coreDumped: false, comm: undefined });
    releaseZombies(libc, [zombie!]);
    zombie = undefined;
    expect(openFdCount()).toBe(fdsBefore);
    expect(readStat(pid)).toBeUndefined();
  } finally {
    if (zombie) releaseZombies(libc, [zombie]);
    reapIfLeft(pid);
  }
}, scaled(20_000));

test("pins nothing, and leaves no fd open, for a running child, a process not ours, or a PID that is gone", async () => {
  const running = spawnLiveChild();
  try {
    const fdsBefore = openFdCount();
    for (const pid of [running.pid, process.ppid, 1, 0x3fffff]) expect(pinZombie(libc, process.pid, pid)).toBeUndefined();
    expect(openFdCount()).toBe(fdsBefore);
  } finally {
    killTree(running);
    await running.exited;
  }
});

test("a pinned zombie that another waiter takes first is reported gone, not reaped twice", async () => {
  const pid = await oneOrphanZombie(4);
  const zombie = pinZombie(libc, process.pid, pid)!;
  try {
    expect(libc.waitid(P_PID, pid, WEXITED).status).toBe(4); // the other waiter
    expect(reapZombie(libc, process.pid, zombie)).toEqual({ kind: "gone" });
  } finally {
    releaseZombies(libc, [zombie]);
    reapIfLeft(pid);
  }
}, scaled(20_000));
