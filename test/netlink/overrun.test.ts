import { afterAll, beforeAll, expect, test } from "bun:test";
import type { EventSource } from "../../src/sources/source.ts";
import { netlinkSocketFds, startRecordingSource, until, type RecordingCore } from "./harness.ts";

const ORPHANS = 2000;
let core: RecordingCore;
let source: EventSource;

  // The smallest queue the kernel grants (it rounds up to its minimum).
beforeAll(async () => void ({ core, source } = await startRecordingSource({ receiveBufferBytes: 1 })));
afterAll(() => source?.stop());

function blockEventLoop(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

test(`ENOBUFS while ${ORPHANS} orphans exit: counted, logged once, scanned, and listening goes on`, async () => {
  const socketFdsBefore = netlinkSocketFds().size;
  // sh forks the sleeps and exits: they are our orphans, alive, for ~2 s.
  const parent = Bun.spawn(["sh", "-c", `for i in $(seq ${ORPHANS}); do sleep 2 & echo $!; done`], { stdout: "pipe" });
  const orphans = (await new Response(parent.stdout).text()).trim().split("\n").map(Number);
  await parent.exited;
  for (const pid of orphans) core.reapable.add(pid);
  expect(orphans).toHaveLength(ORPHANS);

  // They all exit while the loop cannot read: the receive queue overflows.
  blockEventLoop(3000);
  expect(await until(() => core.counts.overruns > 0, 2000)).toBe(true);
  expect(core.scans).toContain("overrun");
  // Events that fit were noted, the scan took the rest: nothing is left.
  expect(await until(() => orphans.every((pid) => core.reaped.has(pid)), 15_000)).toBe(true);
  // Once per burst, not once per overrun (a loaded machine can split one burst in two).
  const warnings = core.logs.filter((line) => line.level === 40);
  const quietRepeats = core.logs.filter((line) => line.level === 20 && String(line.msg).includes("ENOBUFS"));
  expect(warnings.length).toBeGreaterThanOrEqual(1);
  expect(warnings.length + quietRepeats.length).toBe(core.counts.overruns);
  if (core.counts.overruns > 2) expect(warnings.length).toBeLessThan(core.counts.overruns);
  expect(warnings[0]?.msg).toContain("ENOBUFS");
  expect(warnings[0]?.receiveBufferBytes).toBeGreaterThan(0);
  expect(core.notices.filter((n) => orphans.includes(n.pid)).length).toBeLessThan(ORPHANS);

  // Still listening on a fresh stream, with no fd left behind by the old one.
  const late = Bun.spawn(["sh", "-c", "(sleep 0.05; exit 3) >/dev/null & echo $!"], { stdout: "pipe" });
  const latePid = Number((await new Response(late.stdout).text()).trim());
  expect(await until(() => core.reaped.has(latePid), 2000)).toBe(true);
  expect(core.notices.find((n) => n.pid === latePid)).toMatchObject({ adopted: true, waitStatus: 3 << 8 });
  expect(netlinkSocketFds().size).toBe(socketFdsBefore);
}, 30_000);
