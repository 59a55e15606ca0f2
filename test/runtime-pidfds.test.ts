/**
 * Which zombies the runtime holds a pidfd on, on real Bun.spawn children, a
 * real adopted orphan, and the poll(2) that narrows the look for waitable
 * zombies to the fds that are readable.
 */
import { expect, test } from "bun:test";
import { closeSync, openSync, rmSync, writeSync } from "node:fs";
import { P_PID, WEXITED } from "../src/libc.ts";
import { loadLibc } from "../src/runtime/index.ts";
import { isChildWaitable } from "../src/zombie.ts";
import { probeRuntimePidfds, runtimeHoldsPidfd } from "../src/runtime-pidfds.ts";
import { makeOrphans } from "./helpers/orphans.ts";
import { isZombie, spawnLiveChild } from "./helpers/processes.ts";
import { blockEventLoopUntil, scaled, waitUntil } from "./helpers/time.ts";

const libc = loadLibc();

function spawnSleepers(count: number) {
  return Array.from({ length: count }, spawnLiveChild);
}

test("poll: a pidfd turns readable when its process exits; a fifo when it holds data; a closed fd never", async () => {
  const [child] = spawnSleepers(1);
  const pidfd = libc.pidfdOpen(child!.pid);
  const closed = libc.pidfdOpen(process.pid);
  libc.close(closed);
  const fifoPath = `/tmp/orphan-reaper-poll-${process.pid}`;
  expect(Bun.spawnSync(["mkfifo", fifoPath]).exitCode).toBe(0);
  const fifo = openSync(fifoPath, "r+");
  const readable = () => libc.readableFdsBelow(Math.max(pidfd, closed, fifo) + 1);
  try {
    for (const fd of [pidfd, closed, fifo]) expect(readable()).not.toContain(fd);
    child!.kill();
    writeSync(fifo, "x");
    expect(await waitUntil(() => readable().includes(pidfd), 10_000)).toBe(true);
    expect(readable()).toEqual(expect.arrayContaining([pidfd, fifo]));
    expect(readable()).not.toContain(closed);
  } finally {
    libc.close(pidfd);
    closeSync(fifo);
    rmSync(fifoPath);
    await child!.exited;
  }
}, scaled(20_000));

test("the unreaped Bun.spawn children are held, and not once Bun has reaped them", async () => {
  const children = spawnSleepers(40);
  const pids = children.map((child) => child.pid);
  expect(await runtimeHoldsPidfd(libc, pids)).toEqual(new Set(pids));
  const [reaped, ...alive] = children;
  reaped!.kill();
  await reaped!.exited;
  expect(await runtimeHoldsPidfd(libc, pids)).toEqual(new Set(alive.map((child) => child.pid)));
  for (const child of alive) child.kill();
  await Promise.all(alive.map((child) => child.exited));
  expect(await runtimeHoldsPidfd(libc, pids)).toEqual(new Set());
}, scaled(20_000));

test('a Bun.spawn child that exited is held until Bun reaps it, also among "waitable zombies"', async () => {
  const child = Bun.spawn(["sh", "-c", "exit 7"]);
  expect(blockEventLoopUntil(() => isZombie(child.pid), 10_000)).toBe(true); // Bun cannot reap while the loop is blocked
  expect(isChildWaitable(libc, child.pid)).toBe(true);
  const amongZombies = runtimeHoldsPidfd(libc, [child.pid], "waitable zombies");
  const amongAll = runtimeHoldsPidfd(libc, [child.pid]);
  expect(await amongZombies).toEqual(new Set([child.pid]));
  expect(await amongAll).toEqual(new Set([child.pid]));
  expect(await child.exited).toBe(7);
}, scaled(20_000));

test("an adopted orphan's zombie is held by nobody", async () => {
  libc.setChildSubreaper(true);
  const [sleeper] = spawnSleepers(1);
  const [orphan] = await makeOrphans(1, 3);
  expect(await waitUntil(() => isZombie(orphan!), 10_000)).toBe(true);
  expect(await runtimeHoldsPidfd(libc, [orphan!, sleeper!.pid])).toEqual(new Set([sleeper!.pid]));
  expect(await runtimeHoldsPidfd(libc, [orphan!], "waitable zombies")).toEqual(new Set());
  libc.waitid(P_PID, orphan!, WEXITED);
  sleeper!.kill();
  await sleeper!.exited;
}, scaled(20_000));

const prlimitMissing = Bun.which("prlimit") ? "" : " (skipped: prlimit, from util-linux, is not installed)";
test.skipIf(prlimitMissing !== "")(`with RLIMIT_NOFILE below the fd table's size (poll says EINVAL) the runtime's zombie is still found${prlimitMissing}`, () => {
  const run = Bun.spawnSync(["prlimit", "--nofile=100:100", process.execPath, `${import.meta.dir}/fixtures/held-zombie-probe.ts`]);
  expect(run.stderr.toString()).toBe("");
  const report = JSON.parse(run.stdout.toString());
  expect(report.fdTableSize).toBeGreaterThan(100);
  expect(report).toMatchObject({ held: [report.pid], exitCode: 7 });
}, scaled(20_000));

test("the probe sees the runtime's mark", async () => {
  expect(await probeRuntimePidfds(libc)).toEqual({
    holds: true,
    reason: "the runtime holds a pidfd on each child until it reaps it",
  });
});
