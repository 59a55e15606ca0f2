/**
 * What the netlink source cannot see, measured so the core knows to listen
 * for SIGCHLD too: a process whose parent is alive but is not us exits (its
 * EXIT event names that parent and is filtered out); when that parent later
 * exits, the kernel reparents the zombie to us, the subreaper, and sends us
 * SIGCHLD, but no proc event names us for it.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import type { EventSource } from "../../src/sources/source.ts";
import { isZombie, startRecordingSource, until, type RecordingCore } from "./harness.ts";

let core: RecordingCore;
let source: EventSource;

beforeAll(async () => void ({ core, source } = await startRecordingSource()));
afterAll(() => source?.stop());

test("a zombie reparented to us through a grandchild's exit gets SIGCHLD, no netlink notice", async () => {
  let sigchlds = 0;
  const onSigchld = () => void (sigchlds += 1);
  process.on("SIGCHLD", onSigchld);
  // D (our child) stays alive; W (D's child) execs into sleep and never
  // waits; G (W's child) exits first and stays W's zombie until W exits.
  const daemon = Bun.spawn(
    ["sh", "-c", "sh -c 'sleep 0.1 >/dev/null & echo $!; exec sleep 0.4'; sleep 30"],
    { stdout: "pipe" },
  );
  const reader = daemon.stdout.getReader();
  const grandchild = Number(new TextDecoder().decode((await reader.read()).value).trim());
  const scansBefore = core.scans.length;
  const ours = () => readParent(grandchild) === process.pid && isZombie(grandchild);
  expect(await until(ours, 3000)).toBe(true);
  await Bun.sleep(20);
  expect(sigchlds).toBeGreaterThan(0);
  expect(core.notices.some((n) => n.pid === grandchild)).toBe(false);
  expect(core.scans.length).toBe(scansBefore); // nothing from netlink at all
  // The scan the core makes on SIGCHLD is what reaps it.
  core.reapable.add(grandchild);
  core.requestScan("sigchld");
  expect(core.reaped.get(grandchild)).toMatchObject({ pid: grandchild, status: 0 });
  process.off("SIGCHLD", onSigchld);
  daemon.kill();
  await daemon.exited;
});

function readParent(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.split(") ")[1]?.split(" ")[1]);
}
