import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync, spawn as nodeSpawn } from "node:child_process";
import { probeNetlinkSource } from "../../src/sources/netlink.ts";
import type { EventSource } from "../../src/sources/source.ts";
import { makeOrphans, spawnOrphans } from "../helpers/orphans.ts";
import { spawnLiveChild } from "../helpers/processes.ts";
import { scaled } from "../helpers/time.ts";
import { netlinkSocketFds, PROBE_TIMEOUT_MS, recordingCore, startRecordingSource, until, type RecordingCore, PROBE_HOOK_TIMEOUT_MS } from "./harness.ts";

let core: RecordingCore;
let source: EventSource;

beforeAll(async () => void ({ core, source } = await startRecordingSource()), PROBE_HOOK_TIMEOUT_MS);
afterAll(() => source?.stop());

/** Waits until the source has passed on an adopted orphan's exit: every event before it was read too. */
async function eventsRead(): Promise<void> {
  const [sentinel] = await makeOrphans(1);
  expect(await until(() => core.notices.some((n) => n.pid === sentinel), 10_000)).toBe(true);
}

describe("netlink source on the real kernel", () => {
  test("the probe succeeds here and names the source", () => {
    expect(source.name).toBe("netlink");
  });

  test("a double-forked orphan is noted as adopted with its wait status and its exit time", async () => {
    const [pid] = await makeOrphans(1, 7);
    expect(await until(() => core.reaped.has(pid!), 10_000)).toBe(true);
    const notice = core.notices.find((n) => n.pid === pid);
    expect(notice).toMatchObject({ pid, adopted: true, waitStatus: 7 << 8 });
    expect(core.reaped.get(pid!)).toMatchObject({ pid, status: 7 });
    expect(source.forkedBySelf?.(pid!)).toBe(false);
    expect(notice!.noticedAt - notice!.exitedAt).toBeGreaterThanOrEqual(0);
  }, scaled(20_000));

  test("a SIGKILLed orphan reports the signal in its wait status", async () => {
    const { pids: [pid] } = await spawnOrphans(1, { hold: true });
    process.kill(pid!, "SIGKILL");
    expect(await until(() => core.reaped.has(pid!), 10_000)).toBe(true);
    expect(core.notices.find((n) => n.pid === pid)?.waitStatus).toBe(9);
  }, scaled(20_000));

  test("Bun.spawn and child_process children are not adopted and keep their exit codes", async () => {
    const bunChild = Bun.spawn(["sh", "-c", "exit 5"]);
    expect(await bunChild.exited).toBe(5);
    const nodeChild = nodeSpawn("sh", ["-c", "exit 6"]);
    const nodeCode = await new Promise((resolve) => nodeChild.on("exit", resolve));
    expect(nodeCode).toBe(6);
    let syncCode = 0;
    try {
      execFileSync("sh", ["-c", "exit 4"]);
    } catch (error) {
      syncCode = (error as { status: number }).status;
    }
    expect(syncCode).toBe(4);
    await eventsRead();
    for (const pid of [bunChild.pid, nodeChild.pid!]) {
      expect(core.notices.some((n) => n.pid === pid)).toBe(false);
      expect(source.forkedBySelf?.(pid)).toBe(true);
    }
  }, scaled(20_000));

  test("a child's exit asks for a scan: its zombie children are reparented to us without an event naming us", async () => {
    const before = core.scans.length;
    const child = Bun.spawn(["true"]);
    await child.exited;
    const asked = () => core.scans.slice(before).some((scan) => scan.reason === "child exited; its orphans are ours now");
    expect(await until(asked, 10_000)).toBe(true);
  }, scaled(20_000));

  test("children that existed before the subscription are of unknown origin", async () => {
    const early = spawnLiveChild();
    const probe = await probeNetlinkSource(recordingCore(), { selfTestTimeoutMs: PROBE_TIMEOUT_MS });
    if (!probe.ok) throw new Error(probe.reason);
    expect(probe.source.forkedBySelf?.(early.pid)).toBeUndefined();
    const late = spawnLiveChild();
    expect(await until(() => probe.source.forkedBySelf?.(late.pid) === true, 10_000)).toBe(true);
    early.kill();
    late.kill();
    await Promise.all([early.exited, late.exited]);
    await probe.source.stop();
  }, scaled(20_000));

  test("stop() closes the socket and Bun's duplicate of it, and may be called twice", async () => {
    const before = netlinkSocketFds();
    const probe = await probeNetlinkSource(recordingCore(), { selfTestTimeoutMs: PROBE_TIMEOUT_MS });
    if (!probe.ok) throw new Error(probe.reason);
    const opened = new Set([...netlinkSocketFds().values()].filter((inode) => ![...before.values()].includes(inode)));
    expect(opened.size).toBe(1);
    await probe.source.stop();
    await probe.source.stop();
    const left = [...netlinkSocketFds().values()].filter((inode) => opened.has(inode));
    expect(left).toEqual([]);
  });
});
