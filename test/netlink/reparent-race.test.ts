/**
 * What the proc connector cannot see: a process whose parent is alive but is
 * not us exits (its EXIT event names that parent and is filtered out); when
 * that parent later exits, the kernel reparents the zombie to us, the
 * subreaper, and sends SIGCHLD, but no proc event names us for it. The
 * netlink source's SIGCHLD that no exit event explains leads to a peek, and
 * the peek reaps it.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import pino from "pino";
import { startOrphanReaper } from "../../src/index.ts";
import type { ReapedProcess } from "../../src/types.ts";
import { until } from "./harness.ts";

test("a zombie reparented to us through a grandchild's exit is reaped beside netlink, from SIGCHLD", async () => {
  const reaped: ReapedProcess[] = [];
  const reaper = await startOrphanReaper({ source: "netlink", logger: pino({ level: "silent" }), sweepIntervalMs: 600_000, onReap: (orphan) => void reaped.push(orphan) });
  expect(reaper.source).toBe("netlink");
  // D (our child) stays alive; W (D's child) execs into sleep and never
  // waits; G (W's child) exits first and stays W's zombie until W exits.
  // D execs into the long sleep at the end, so killing D leaves nothing behind.
  const daemon = Bun.spawn(["sh", "-c", "sh -c 'sleep 0.1 >/dev/null & echo $!; exec sleep 0.4'; exec sleep 30"], { stdout: "pipe" });
  try {
    const reader = daemon.stdout.getReader();
    const grandchild = Number(new TextDecoder().decode((await reader.read()).value).trim());
    expect(readParent(grandchild)).not.toBe(process.pid);
    expect(await until(() => reaped.some((orphan) => orphan.pid === grandchild), 20_000)).toBe(true);
    expect(reaped.find((orphan) => orphan.pid === grandchild)).toMatchObject({ exitCode: 0, source: "netlink" });
    expect(reaper.stats().reapedBySource.sweep).toBe(0);
  } finally {
    daemon.kill();
    await daemon.exited;
    await reaper.stop();
  }
}, 30_000);

function readParent(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}
