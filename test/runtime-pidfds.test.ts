/**
 * Which zombies the runtime holds a pidfd on, on real Bun.spawn children, a
 * real adopted orphan, and the poll(2) that narrows the look for waitable
 * zombies to the fds that are readable.
 */
import { expect, test } from "bun:test";
import { closeSync, openSync, rmSync, writeSync } from "node:fs";
import { P_PID, WEXITED } from "../src/libc.ts";
import { loadLibc } from "../src/runtime/index.ts";
import { listOwnFds, readStat } from "../src/procfs.ts";
import { isChildWaitable } from "../src/zombie.ts";
import { probeRuntimePidfds, runtimeHoldsPidfd, RuntimePidfdLook } from "../src/runtime-pidfds.ts";
import { unshareUnavailable } from "./helpers/cli.ts";
import { countingLibc, fdCallsOf } from "./helpers/counting-libc.ts";
import { makeOrphans } from "./helpers/orphans.ts";
import { zombieChildren } from "./helpers/processes.ts";
import { scaled, waitUntil } from "./helpers/time.ts";

const libc = loadLibc();

function spawnSleepers(count: number) {
  return Array.from({ length: count }, () => Bun.spawn(["sleep", "30"], { stdio: ["ignore", "ignore", "ignore"] }));
}

test("poll: a pidfd turns readable when its process exits; a fifo when it holds data; a closed fd never", async () => {
  const [child] = spawnSleepers(1);
  const pidfd = libc.pidfdOpen(child!.pid);
  const fifoPath = `/tmp/orphan-reaper-poll-${process.pid}`;
  expect(Bun.spawnSync(["mkfifo", fifoPath]).exitCode).toBe(0);
  const fifo = openSync(fifoPath, "r+");
  // Closed last: an fd opened after it would take its number.
  const closed = libc.pidfdOpen(process.pid);
  libc.close(closed);
  // Both ways of asking: the fds named, and the whole table up to the highest.
  const readable = () => {
    const named = libc.readableAmong([pidfd, closed, fifo]);
    expect(libc.readableBelow(Math.max(pidfd, closed, fifo) + 1).filter((fd) => [pidfd, closed, fifo].includes(fd))).toEqual([...named].sort((a, b) => a - b));
    return named;
  };
  try {
    for (const fd of [pidfd, closed, fifo]) expect(readable()).not.toContain(fd);
    child!.kill();
    writeSync(fifo, "x");
    expect(await waitUntil(() => readable().includes(pidfd), scaled(5_000))).toBe(true);
    expect(readable()).toEqual(expect.arrayContaining([pidfd, fifo]));
    expect(readable()).not.toContain(closed);
  } finally {
    libc.close(pidfd);
    closeSync(fifo);
    rmSync(fifoPath);
  }
});

test("the unreaped Bun.spawn children are held, and not once Bun has reaped them", async () => {
  const children = spawnSleepers(40);
  const pids = children.map((child) => child.pid);
  expect(await runtimeHoldsPidfd(pids)).toEqual(new Set(pids));
  const [reaped, ...alive] = children;
  reaped!.kill();
  await reaped!.exited;
  expect(await runtimeHoldsPidfd(pids)).toEqual(new Set(alive.map((child) => child.pid)));
  for (const child of alive) child.kill();
  await Promise.all(alive.map((child) => child.exited));
  expect(await runtimeHoldsPidfd(pids)).toEqual(new Set());
});

test('a Bun.spawn child that exited is held until Bun reaps it, also among "waitable zombies"', async () => {
  const child = Bun.spawn(["sh", "-c", "exit 7"]);
  const deadline = performance.now() + 2000;
  while (readStat(child.pid)?.state !== "Z" && performance.now() < deadline); // Bun cannot reap while the loop is blocked
  expect(isChildWaitable(libc, child.pid)).toBe(true);
  const amongZombies = new RuntimePidfdLook(libc).heldAmong([child.pid]);
  const amongAll = runtimeHoldsPidfd([child.pid]);
  expect(amongZombies).toEqual(new Set([child.pid]));
  expect(await amongAll).toEqual(new Set([child.pid]));
  expect(await child.exited).toBe(7);
});

test("a look made before a spawn does not hide the new child: after a new PID the look polls again", async () => {
  const look = new RuntimePidfdLook(libc);
  try {
    // The first look polls the fd table (no pidfd is on a zombie here).
    expect(look.heldAmong([process.pid])).toEqual(new Set());
    const child = Bun.spawn(["sh", "-c", "exit 5"]);
    const deadline = performance.now() + scaled(2000);
    while (readStat(child.pid)?.state !== "Z" && performance.now() < deadline); // Bun cannot reap while the loop is blocked
    expect(look.heldAmong([child.pid])).toEqual(new Set([child.pid]));
    expect(await child.exited).toBe(5);
  } finally {
    look.close();
  }
});

function runHeldAfterLearning(prefix: readonly string[] = []) {
  const run = Bun.spawnSync([...prefix, process.execPath, `${import.meta.dir}/fixtures/held-after-learning.ts`], { stderr: "pipe" });
  expect(run.stderr.toString()).toBe("");
  return JSON.parse(run.stdout.toString());
}

test("looks with no new PID learn what each pidfd names: they poll nothing and ask no fd about a PID none names, and still hold the runtime's zombie", () => {
  const report = runHeldAfterLearning();
  // A fork anywhere in the namespace between two looks makes the next one poll again: most looks of a tight run do not.
  expect(report.looksWithNoCall).toBeGreaterThan(0);
  expect(report).toMatchObject({ held: true, signal: "SIGKILL" });
});

test("where PIDs move between looks, learning what each pidfd names waits a millisecond per fd it read: not at every second look", async () => {
  const sleepers = spawnSleepers(300); // more fds than a look lists: it polls the whole table
  const counting = countingLibc(libc);
  const look = new RuntimePidfdLook(counting.libc);
  try {
    const fds = listOwnFds().length;
    const started = performance.now();
    let learnings = 0;
    for (let cycle = 0; cycle < 20; cycle++) {
      expect(Bun.spawnSync(["true"]).exitCode).toBe(0); // a new PID, as a container making processes gives
      look.holds(process.pid); // polls: a pidfd may be new
      look.holds(process.pid); // no new PID since: learns, where learning is due
      const before = fdCallsOf(counting.calls);
      look.holds(process.pid); // answered from what was learned, if it was: no call
      if (fdCallsOf(counting.calls) === before) learnings++;
    }
    expect(learnings).toBeGreaterThan(0);
    // Each learning read at least `fds` fds, so the next waited at least `fds` ms.
    expect(learnings).toBeLessThanOrEqual(1 + Math.floor((performance.now() - started) / fds));
  } finally {
    look.close();
    for (const sleeper of sleepers) sleeper.kill();
    await Promise.all(sleepers.map((sleeper) => sleeper.exited));
  }
});

const outerProcUnavailable = unshareUnavailable(["-p", "-f"]);
test.skipIf(outerProcUnavailable !== undefined)(
  `as PID 1 of a namespace that sees the outer /proc, the look never trusts fdinfo's PIDs and still holds the runtime's zombie${outerProcUnavailable ? ` (skipped: ${outerProcUnavailable})` : ""}`,
  () => {
    const report = runHeldAfterLearning(["unshare", "-p", "-f"]);
    expect(report).toMatchObject({ looksWithNoCall: 0, held: true, signal: "SIGKILL" });
  },
);

test("an adopted orphan's zombie is held by nobody", async () => {
  libc.setChildSubreaper(true);
  const [sleeper] = spawnSleepers(1);
  await makeOrphans(1, 3);
  expect(await waitUntil(async () => (await zombieChildren()).length === 1, scaled(5_000))).toBe(true);
  const [orphan] = await zombieChildren();
  expect(await runtimeHoldsPidfd([orphan!, sleeper!.pid])).toEqual(new Set([sleeper!.pid]));
  expect(new RuntimePidfdLook(libc).heldAmong([orphan!])).toEqual(new Set());
  libc.waitid(P_PID, orphan!, WEXITED);
  sleeper!.kill();
  await sleeper!.exited;
});

const prlimitMissing = Bun.which("prlimit") ? "" : " (skipped: prlimit, from util-linux, is not installed)";
test.skipIf(prlimitMissing !== "")(`with RLIMIT_NOFILE below the fd table's size the runtime's zombie is still found${prlimitMissing}`, () => {
  const run = Bun.spawnSync(["prlimit", "--nofile=400:400", process.execPath, `${import.meta.dir}/fixtures/held-zombie-probe.ts`]);
  expect(run.stderr.toString()).toBe("");
  const report = JSON.parse(run.stdout.toString());
  expect(report.fdTableSize).toBeGreaterThan(400);
  expect(report).toMatchObject({ held: [report.pid], exitCode: 7 });
});

test("the probe sees the runtime's mark", async () => {
  expect(await probeRuntimePidfds()).toEqual({
    holds: true,
    reason: "the runtime holds a pidfd on each child until it reaps it",
  });
});
