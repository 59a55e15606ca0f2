/**
 * What the netlink source cannot see, measured so the core knows to listen
 * for SIGCHLD too: a process whose parent is alive but is not us exits (its
 * EXIT event names that parent and is filtered out); when that parent later
 * exits, the kernel reparents the zombie to us, the subreaper, and sends us
 * SIGCHLD, but no proc event names us for it.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import type { EventSource } from "../../src/sources/source.ts";
import { Gate } from "../helpers/orphans.ts";
import { readStat } from "../../src/procfs.ts";
import { parentOf } from "../helpers/processes.ts";
import { scaled } from "../helpers/time.ts";
import { isZombie, startRecordingSource, until, type RecordingCore, PROBE_HOOK_TIMEOUT_MS } from "./harness.ts";

let core: RecordingCore;
let source: EventSource;

beforeAll(async () => void ({ core, source } = await startRecordingSource()), PROBE_HOOK_TIMEOUT_MS);
afterAll(() => source?.stop());

const CHILD_EXITED = "child exited; its orphans are ours now";

test("a zombie reparented to us through a grandchild's exit gets SIGCHLD, no netlink notice", async () => {
  let sigchlds = 0;
  const onSigchld = () => void (sigchlds += 1);
  process.on("SIGCHLD", onSigchld);
  // D (our child) stays alive reading its stdin; W (D's child) forks G, then
  // execs into cat, which never waits, reading fd 3 (a gate of ours). G exits
  // when we open its gate (fd 4), once W is cat, and stays W's zombie until
  // we open W's gate and W exits.
  const [wGate, gGate] = [new Gate(), new Gate()];
  const daemon = spawn("sh", ["-c", "sh -c '(read _ <&4; exit 0) & echo $!; exec cat <&3 >/dev/null 4<&-'; exec cat >/dev/null"], {
    stdio: ["pipe", "pipe", "inherit", wGate.readEnd, gGate.readEnd],
  });
  wGate.close();
  gGate.close();
  try {
    const grandchild = await new Promise<number>((resolve) => daemon.stdout!.once("data", (line) => resolve(Number(String(line).trim()))));
    const wParent = () => parentOf(grandchild);
    expect(await until(() => readStat(wParent() ?? 0)?.comm === "cat" && wParent() !== process.pid, 10_000)).toBe(true);
    gGate.open();
    expect(await until(() => isZombie(grandchild), 10_000)).toBe(true);
    expect(wParent()).not.toBe(process.pid);
    const scansBefore = core.scans.length;
    wGate.open();
    expect(await until(() => wParent() === process.pid && isZombie(grandchild), 10_000)).toBe(true);
    expect(await until(() => sigchlds > 0, 10_000)).toBe(true);
    // Events arrive in order: once our own child's exit asked for a scan, any event about G was read.
    const marker = Bun.spawn(["true"]);
    await marker.exited;
    expect(await until(() => core.scans.slice(scansBefore).some((scan) => scan.reason === CHILD_EXITED), 10_000)).toBe(true);
    expect(core.notices.some((n) => n.pid === grandchild)).toBe(false);
    expect(core.scans.slice(scansBefore).filter((scan) => scan.reason !== CHILD_EXITED)).toEqual([]); // nothing else from netlink
    // The scan the core makes on SIGCHLD is what reaps it.
    core.reapable.add(grandchild);
    core.requestScan("sigchld");
    expect(core.reaped.get(grandchild)).toMatchObject({ pid: grandchild, status: 0 });
  } finally {
    process.off("SIGCHLD", onSigchld);
    wGate.open();
    gGate.open();
    daemon.kill();
    await new Promise((resolve) => daemon.once("close", resolve));
  }
}, scaled(30_000));
