/**
 * Which zombies the runtime holds a pidfd on: by pidfs inode (Linux 6.9+) and
 * by fdinfo as on older kernels, on real Bun.spawn children and on a zombie
 * nobody holds. Both ways must give the same answers.
 */
import { describe, expect, test } from "bun:test";
import { loadLibc, P_PID, WEXITED } from "../src/libc.ts";
import { readStat } from "../src/procfs.ts";
import { isChildWaitable } from "../src/reap.ts";
import { PidfdIndex, probeRuntimePidfds, runtimeHoldsPidfd } from "../src/runtime-pidfds.ts";
import { makeOrphans, waitUntil, zombieChildren } from "./helpers/processes.ts";

const libc = loadLibc();
const onPidfs = new PidfdIndex(libc).lookup === "pidfs";
const pidfsNote = onPidfs ? "" : ` (skipped: pidfds are not on pidfs on Linux ${require("node:os").release()}, needs 6.9+)`;

function spawnSleepers(count: number) {
  return Array.from({ length: count }, () => Bun.spawn(["sleep", "30"], { stdio: ["ignore", "ignore", "ignore"] }));
}

describe("libc fstat and fstatfs on pidfds", () => {
  test.skipIf(!onPidfs)(`pidfds of one process share an inode, another process has its own${pidfsNote}`, () => {
    const [self1, self2] = [libc.pidfdOpen(process.pid), libc.pidfdOpen(process.pid)];
    const [child] = spawnSleepers(1);
    const other = libc.pidfdOpen(child!.pid);
    try {
      const [a, b, c] = [self1, self2, other].map((fd) => libc.fileIdentity(fd));
      expect(a).toEqual(b!);
      expect(c!.dev).toBe(a!.dev);
      expect(c!.ino).not.toBe(a!.ino);
      expect(libc.filesystemType(self1)).toBe(0x50494446); // PIDFS_MAGIC
    } finally {
      for (const fd of [self1, self2, other]) libc.close(fd);
      child!.kill();
    }
  });
  test("poll: a pidfd turns readable when its process exits; a pipe when it holds data; a closed fd never", async () => {
    const { closeSync, openSync, rmSync, writeSync } = await import("node:fs");
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
      expect(await waitUntil(() => readable().includes(pidfd), 2000)).toBe(true);
      expect(readable()).toEqual(expect.arrayContaining([pidfd, fifo]));
      expect(readable()).not.toContain(closed);
    } finally {
      libc.close(pidfd);
      closeSync(fifo);
      rmSync(fifoPath);
    }
  });
  test("fstat of a closed fd is EBADF", () => {
    const fd = libc.pidfdOpen(process.pid);
    libc.close(fd);
    expect(() => libc.fileIdentity(fd)).toThrow(expect.objectContaining({ code: "EBADF" }));
  });
});

describe.each([["pidfs"], ["fdinfo"]] as const)("PidfdIndex, %s lookup", (lookup) => {
  const skip = lookup === "pidfs" && !onPidfs;
  const note = lookup === "pidfs" ? pidfsNote : "";
  test.skipIf(skip)(`holds the unreaped Bun.spawn children, not after Bun reaped them${note}`, async () => {
    const index = new PidfdIndex(libc, lookup);
    expect(index.lookup).toBe(lookup);
    const children = spawnSleepers(40);
    const pids = children.map((child) => child.pid);
    expect([...(await index.heldAmong(pids))].sort()).toEqual([...pids].sort());
    const [reaped, ...alive] = children;
    reaped!.kill();
    await reaped!.exited;
    expect([...(await index.heldAmong(pids))].sort()).toEqual(alive.map((child) => child.pid).sort());
    for (const child of alive) child.kill();
    await Promise.all(alive.map((child) => child.exited));
    expect(await index.heldAmong(pids)).toEqual(new Set());
  });
  test.skipIf(skip)(`a Bun.spawn child that exited is held until Bun reaps it, also among "waitable zombies"${note}`, async () => {
    const index = new PidfdIndex(libc, lookup);
    const child = Bun.spawn(["sh", "-c", "exit 7"]);
    const deadline = performance.now() + 2000;
    while (readStat(child.pid)?.state !== "Z" && performance.now() < deadline); // Bun cannot reap while the loop is blocked
    expect(isChildWaitable(libc, child.pid)).toBe(true);
    const [amongZombies, amongAll] = [index.heldAmong([child.pid], "waitable zombies"), index.heldAmong([child.pid])];
    expect(await amongZombies).toEqual(new Set([child.pid]));
    expect(await amongAll).toEqual(new Set([child.pid]));
    expect(await child.exited).toBe(7);
  });
  test.skipIf(skip)(`an adopted orphan's zombie is held by nobody${note}`, async () => {
    const index = new PidfdIndex(libc, lookup);
    libc.setChildSubreaper(true);
    const [sleeper] = spawnSleepers(1);
    await makeOrphans(1, 3, 0);
    expect(await waitUntil(async () => (await zombieChildren()).length === 1, 2000)).toBe(true);
    const [orphan] = await zombieChildren();
    expect(await index.heldAmong([orphan!, sleeper!.pid])).toEqual(new Set([sleeper!.pid]));
    expect(await index.heldAmong([orphan!], "waitable zombies")).toEqual(new Set());
    libc.waitid(P_PID, orphan!, WEXITED);
    sleeper!.kill();
    await sleeper!.exited;
  });
});

const prlimitMissing = Bun.which("prlimit") ? "" : " (skipped: prlimit, from util-linux, is not installed)";
test.skipIf(prlimitMissing !== "")(`with RLIMIT_NOFILE below the fd table's size (poll says EINVAL) the runtime's zombie is still found${prlimitMissing}`, () => {
  const run = Bun.spawnSync(["prlimit", "--nofile=100:100", process.execPath, `${import.meta.dir}/fixtures/held-zombie-probe.ts`]);
  expect(run.stderr.toString()).toBe("");
  const report = JSON.parse(run.stdout.toString());
  expect(report.fdTableSize).toBeGreaterThan(100);
  expect(report).toMatchObject({ held: [report.pid], exitCode: 7 });
});

test("the probe sees the runtime's mark and says which lookup it uses", async () => {
  const probe = await probeRuntimePidfds(libc);
  expect(probe).toEqual({
    holds: true,
    lookup: onPidfs ? "pidfs" : "fdinfo",
    reason: "the runtime holds a pidfd on each child until it reaps it",
  });
  const [child] = spawnSleepers(1);
  expect(await runtimeHoldsPidfd(libc, [child!.pid])).toEqual(new Set([child!.pid]));
  child!.kill();
  await child!.exited;
  expect(await runtimeHoldsPidfd(libc, [child!.pid])).toEqual(new Set());
});
