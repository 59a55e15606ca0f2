/**
 * /proc parsing: fixtures are lines captured from this kernel
 * (test/fixtures/proc-stat.json), plus reads of live processes.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { loadLibc } from "../src/runtime/index.ts";
import {
  LastPidCounter,
  listOwnChildren,
  parseChildren,
  parseNsPids,
  parsePidfdInfo,
  parseStat,
  readOwnNsPids,
  readStat,
} from "../src/procfs.ts";
import fixtures from "./fixtures/proc-stat.json";
import { spawnLiveChild } from "./helpers/processes.ts";
import { scaled, waitUntil } from "./helpers/time.ts";

describe("parseStat on captured lines", () => {
  test("a comm holding ') Z 1 (', a newline and spaces parses from the last ')'", () => {
    expect(parseStat(fixtures.hostile)).toEqual({
      pid: 5469, comm: "a) Z 1 (\nb c", state: "S", ppid: 5468, startTime: 332751,
    });
  });
  test("a zombie", () => {
    expect(parseStat(fixtures.zombie)).toEqual({ pid: 5473, comm: "sh", state: "Z", ppid: 5470, startTime: 332751 });
  });
  test("a running process", () => {
    expect(parseStat(fixtures.running)?.state).toBe("S");
  });
  test("broken lines give undefined, never a throw", () => {
    for (const broken of ["", "123", "123 (sh", "x (sh) S 1", "5473 (sh) Z", fixtures.zombie.slice(0, 60)]) {
      expect(parseStat(broken)).toBeUndefined();
    }
  });
});

test("parseChildren, parseNsPids and parsePidfdInfo", () => {
  expect(parseChildren("12 34 56 ")).toEqual([12, 34, 56]);
  expect(parseChildren("")).toEqual([]);
  expect(parseNsPids(fixtures.status)).toEqual([5477]);
  expect(parseNsPids(fixtures.nestedStatus)).toEqual([6001, 1]);
  expect(parsePidfdInfo(fixtures.pidfdFdinfo.text)).toBe(fixtures.pidfdFdinfo.pid);
  expect(parsePidfdInfo("pos:\t0\nflags:\t02\n")).toBeUndefined();
});

describe("live /proc", () => {
  test("reads a live process whose comm is hostile", async () => {
    // `read` is a builtin: the shell keeps its comm and leaves no child behind when killed.
    const shell = Bun.spawn(["sh", "-c", `printf ') Z 1 (\\nx y' > /proc/$$/comm; read line`], { stdin: "pipe" });
    try {
      expect(await waitUntil(() => readStat(shell.pid)?.comm === ") Z 1 (\nx y", 10_000)).toBe(true);
      expect(readStat(shell.pid)).toMatchObject({ pid: shell.pid, ppid: process.pid });
    } finally {
      shell.kill();
      await shell.exited;
    }
  }, scaled(20_000));
  test("lists our own children", async () => {
    const child = spawnLiveChild();
    expect(await listOwnChildren(process.pid)).toContain(child.pid);
    child.kill();
    await child.exited;
    expect(await listOwnChildren(process.pid)).not.toContain(child.pid);
  }, scaled(20_000));
  test("ns_last_pid read through pread gives the file's number, and moves with a spawn", async () => {
    const counter = LastPidCounter.open(loadLibc());
    if (!counter) throw new Error("/proc/sys/kernel/ns_last_pid cannot be read here");
    try {
      // Other processes may fork between two reads: one of a few tries sees the file unchanged around it.
      const fromFile = () => Number(readFileSync("/proc/sys/kernel/ns_last_pid", "utf8").trim());
      const agrees = () => {
        const first = counter.read();
        return first === fromFile() && counter.read() === first;
      };
      expect(Array.from({ length: 20 }, agrees).some(Boolean)).toBe(true);
      const before = counter.read();
      await Bun.spawn(["true"]).exited;
      expect(counter.read()).not.toBe(before);
    } finally {
      counter.close();
    }
  });
  test("our own NSpid ends with our PID", () => {
    expect(readOwnNsPids().at(-1)).toBe(process.pid);
  });
});
