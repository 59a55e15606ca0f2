import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync, spawn as nodeSpawn } from "node:child_process";
import { probeNetlinkSource } from "../../src/sources/netlink.ts";
import type { EventSource } from "../../src/sources/source.ts";
import { netlinkSocketFds, recordingCore, startRecordingSource, until, type RecordingCore } from "./harness.ts";

let core: RecordingCore;
let source: EventSource;

beforeAll(async () => void ({ core, source } = await startRecordingSource()));
afterAll(() => source?.stop());

/** Starts `sh` that forks a subshell exiting with `code` after `delay` s, and exits at once. */
async function orphanExiting(code: number, delay: number): Promise<number> {
  const parent = Bun.spawn(["sh", "-c", `(sleep ${delay}; exit ${code}) >/dev/null & echo $!`], { stdout: "pipe" });
  const pid = Number((await new Response(parent.stdout).text()).trim());
  await parent.exited;
  return pid;
}

describe("netlink source on the real kernel", () => {
  test("the probe succeeds here and names the source", () => {
    expect(source.name).toBe("netlink");
  });

  test("a double-forked orphan is noted as adopted with its wait status, well under 50 ms", async () => {
    const pid = await orphanExiting(7, 0.05);
    expect(await until(() => core.reaped.has(pid), 2000)).toBe(true);
    const notice = core.notices.find((n) => n.pid === pid);
    expect(notice).toMatchObject({ pid, adopted: true, waitStatus: 7 << 8 });
    expect(core.reaped.get(pid)).toMatchObject({ pid, status: 7 });
    expect(source.forkedBySelf?.(pid)).toBe(false);
    const latencyMs = notice!.noticedAt - notice!.exitedAt;
    expect(latencyMs).toBeGreaterThanOrEqual(0);
    expect(latencyMs).toBeLessThan(50);
  });

  test("a SIGKILLed orphan reports the signal in its wait status", async () => {
    const parent = Bun.spawn(["sh", "-c", "sleep 30 >/dev/null & echo $!"], { stdout: "pipe" });
    const pid = Number((await new Response(parent.stdout).text()).trim());
    await parent.exited;
    process.kill(pid, "SIGKILL");
    expect(await until(() => core.reaped.has(pid), 2000)).toBe(true);
    expect(core.notices.find((n) => n.pid === pid)?.waitStatus).toBe(9);
  });

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
    await Bun.sleep(20); // let the events arrive
    for (const pid of [bunChild.pid, nodeChild.pid!]) {
      expect(core.notices.some((n) => n.pid === pid)).toBe(false);
      expect(source.forkedBySelf?.(pid)).toBe(true);
    }
  });

  test("a child's exit asks for a scan: its zombie children are reparented to us without an event naming us", async () => {
    const before = core.scans.length;
    const child = Bun.spawn(["true"]);
    await child.exited;
    expect(await until(() => core.scans.slice(before).includes("child exited; its orphans are ours now"), 500)).toBe(true);
  });

  test("children that existed before the subscription are of unknown origin", async () => {
    const early = Bun.spawn(["sleep", "5"]);
    const probe = await probeNetlinkSource(recordingCore());
    if (!probe.ok) throw new Error(probe.reason);
    expect(probe.source.forkedBySelf?.(early.pid)).toBeUndefined();
    const late = Bun.spawn(["sleep", "5"]);
    expect(await until(() => probe.source.forkedBySelf?.(late.pid) === true, 500)).toBe(true);
    early.kill();
    late.kill();
    await Promise.all([early.exited, late.exited]);
    await probe.source.stop();
  });

  test("stop() closes the socket and Bun's duplicate of it, and may be called twice", async () => {
    const before = netlinkSocketFds();
    const probe = await probeNetlinkSource(recordingCore());
    if (!probe.ok) throw new Error(probe.reason);
    const opened = new Set([...netlinkSocketFds().values()].filter((inode) => ![...before.values()].includes(inode)));
    expect(opened.size).toBe(1);
    await probe.source.stop();
    await probe.source.stop();
    const left = [...netlinkSocketFds().values()].filter((inode) => opened.has(inode));
    expect(left).toEqual([]);
  });
});
