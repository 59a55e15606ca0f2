/**
 * Which zombies the runtime holds a pidfd on, on real Bun.spawn children, a
 * real adopted orphan, and the poll(2) that narrows the look for waitable
 * zombies to the fds that are readable.
 */
import { expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { closeSync, openSync, rmSync, writeSync } from "node:fs";
import { P_PID, WEXITED } from "../src/libc.ts";
import { loadLibc } from "../src/runtime/index.ts";
import { listOwnFds, readStat } from "../src/procfs.ts";
import { isChildWaitable } from "../src/zombie.ts";
import { probeRuntimePidfds } from "../src/runtime-mark-probe.ts";
import { runtimeHoldsPidfd, RuntimePidfdLook } from "../src/runtime-pidfds.ts";
import { unshareUnavailable } from "./helpers/cli.ts";
import { countingLibc, fdCallsOf } from "./helpers/counting-libc.ts";
import { makeOrphans } from "./helpers/orphans.ts";
import { zombieChildren } from "./helpers/processes.ts";
import { blockEventLoopUntil, scaled, sleep, waitUntil } from "./helpers/time.ts";

const libc = loadLibc();

function spawnSleepers(count: number) {
  return Array.from({ length: count }, () => Bun.spawn(["sleep", "30"], { stdio: ["ignore", "ignore", "ignore"] }));
}

/** For finally blocks: every child killed and reaped by Bun. */
async function killAll(children: readonly Subprocess[]): Promise<void> {
  for (const child of children) child.kill();
  await Promise.all(children.map((child) => child.exited));
}

/** Blocks the loop (so Bun cannot reap) until `pid` is a zombie; fails the test if it never becomes one. */
function blockUntilZombie(pid: number): void {
  expect(blockEventLoopUntil(() => readStat(pid)?.state === "Z", 5_000)).toBe(true);
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
    expect(await waitUntil(() => readable().includes(pidfd), 5_000)).toBe(true);
    expect(readable()).toEqual(expect.arrayContaining([pidfd, fifo]));
    expect(readable()).not.toContain(closed);
  } finally {
    libc.close(pidfd);
    closeSync(fifo);
    rmSync(fifoPath);
    child!.kill();
    await child!.exited;
  }
});

test("the unreaped Bun.spawn children are held, and not once Bun has reaped them", async () => {
  const children = spawnSleepers(40);
  const pids = children.map((child) => child.pid);
  try {
    expect(await runtimeHoldsPidfd(pids)).toEqual(new Set(pids));
    const [reaped, ...alive] = children;
    reaped!.kill();
    await reaped!.exited;
    expect(await runtimeHoldsPidfd(pids)).toEqual(new Set(alive.map((child) => child.pid)));
  } finally {
    await killAll(children);
  }
  expect(await runtimeHoldsPidfd(pids)).toEqual(new Set());
});

test('a Bun.spawn child that exited is held until Bun reaps it, also among "waitable zombies"', async () => {
  const child = Bun.spawn(["sh", "-c", "exit 7"]);
  blockUntilZombie(child.pid);
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
    blockUntilZombie(child.pid);
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
    // Until a few learnings were seen: a fork anywhere on the host during one spoils it, so a count of cycles cannot be fixed.
    const deadline = started + scaled(30_000);
    let learnings = 0;
    let cycles = 0;
    while (learnings < 3 && performance.now() < deadline) {
      cycles++;
      expect(Bun.spawnSync(["true"]).exitCode).toBe(0); // a new PID, as a container making processes gives
      look.holds(process.pid); // polls: a pidfd may be new
      look.holds(process.pid); // no new PID since: learns, where learning is due
      const before = fdCallsOf(counting.calls);
      look.holds(process.pid); // answered from what was learned, if it was: no call
      if (fdCallsOf(counting.calls) === before) learnings++;
      await sleep(10); // a cycle's pace, not a wait for anything
    }
    expect(learnings).toBe(3);
    // Each learning read at least `fds` fds, so the next waited at least `fds` ms: far fewer learnings than cycles.
    expect(learnings).toBeLessThanOrEqual(1 + Math.floor((performance.now() - started) / fds));
    expect(cycles).toBeGreaterThan(learnings);
  } finally {
    look.close();
    await killAll(sleepers);
  }
}, scaled(60_000));

const outerProcUnavailable = unshareUnavailable(["-p", "-f"]);
test.skipIf(outerProcUnavailable !== undefined)(
  `as PID 1 of a namespace that sees the outer /proc, the look never trusts fdinfo's PIDs and still holds the runtime's zombie${outerProcUnavailable ? ` (skipped: ${outerProcUnavailable})` : ""}`,
  () => {
    const report = runHeldAfterLearning(["unshare", "-p", "-f"]);
    expect(report).toMatchObject({ looksWithNoCall: 0, held: true, signal: "SIGKILL" });
  },
);

const ownNamespaceUnavailable = unshareUnavailable(["-p", "-f", "--mount-proc"]);
test.skipIf(ownNamespaceUnavailable !== undefined)(
  `a child that started after the learning is looked for, even where the last PID has come round to its value then${ownNamespaceUnavailable ? ` (skipped: ${ownNamespaceUnavailable})` : ""}`,
  () => {
    const run = Bun.spawnSync(["unshare", "-p", "-f", "--kill-child", "--mount-proc", process.execPath, `${import.meta.dir}/fixtures/held-after-pid-wrap.ts`], { stderr: "pipe" });
    expect(run.stderr.toString()).toBe("");
    const report = JSON.parse(run.stdout.toString());
    expect(report.childPid).toBe(report.learnedAt);
    expect(report).toMatchObject({ held: true, signal: "SIGKILL" });
  },
);

test("an adopted orphan's zombie is held by nobody", async () => {
  libc.setChildSubreaper(true);
  const sleepers = spawnSleepers(1);
  const [orphan] = await makeOrphans(1, 3);
  try {
    expect(await waitUntil(async () => (await zombieChildren()).includes(orphan!), 5_000)).toBe(true);
    expect(await runtimeHoldsPidfd([orphan!, sleepers[0]!.pid])).toEqual(new Set([sleepers[0]!.pid]));
    expect(new RuntimePidfdLook(libc).heldAmong([orphan!])).toEqual(new Set());
  } finally {
    libc.waitid(P_PID, orphan!, WEXITED);
    await killAll(sleepers);
  }
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
  expect(await probeRuntimePidfds(libc)).toEqual({
    holds: true,
    reason: "the runtime holds a pidfd on each child until it reaps it",
  });
});
