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
import { Gate } from "../helpers/orphans.ts";
import { isZombie, killTree, parentOf } from "../helpers/processes.ts";
import { scaled } from "../helpers/time.ts";
import { until } from "./harness.ts";

test("a zombie reparented to us through a grandchild's exit is reaped beside netlink, from SIGCHLD", async () => {
  const reaped: ReapedProcess[] = [];
  const reaper = await startOrphanReaper({ source: "netlink", logger: pino({ level: "silent" }), sweepIntervalMs: 600_000, onReap: (orphan) => void reaped.push(orphan) });
  expect(reaper.source).toBe("netlink");
  // D (our child) stays alive: it waits for W, then blocks reading its stdin
  // (it ends when we do). W (D's child) forks G, prints G's PID and its own,
  // and execs into cat on W's gate (fd 3): a program that never waits, so G
  // stays W's zombie until W exits. G execs into cat on G's gate (fd 4). The
  // order is ours: W has exec'd before G's gate opens, and G is W's zombie
  // before W's gate opens; no sleep decides it.
  const waiterGate = new Gate();
  const grandchildGate = new Gate();
  const waiterScript = "(exec cat <&4 >/dev/null 3<&- 4<&-) & echo $! $$; exec cat <&3 >/dev/null 3<&- 4<&-";
  let daemon: Bun.Subprocess<"pipe", "pipe", "inherit"> | undefined;
  try {
    try {
      daemon = Bun.spawn(["sh", "-c", `sh -c '${waiterScript}'; exec cat >/dev/null 3<&- 4<&-`], {
        stdio: ["pipe", "pipe", "inherit", waiterGate.readEnd, grandchildGate.readEnd],
      });
    } finally {
      waiterGate.close();
      grandchildGate.close();
    }
    const [grandchild, waiter] = await firstLine(daemon.stdout);
    expect(parentOf(waiter)).toBe(daemon.pid);
    expect(await until(() => readComm(waiter) === "cat", 10_000)).toBe(true);
    grandchildGate.open();
    expect(await until(() => isZombie(grandchild), 10_000)).toBe(true);
    // G is W's zombie: its exit event named W, not us.
    expect(parentOf(grandchild)).toBe(waiter);
    expect(reaped).toEqual([]);
    waiterGate.open();
    expect(await until(() => reaped.some((orphan) => orphan.pid === grandchild), 20_000)).toBe(true);
    expect(reaped.find((orphan) => orphan.pid === grandchild)).toMatchObject({ exitCode: 0, source: "netlink" });
    expect(reaper.stats().reapedBySource.sweep).toBe(0);
  } finally {
    grandchildGate.open();
    waiterGate.open();
    if (daemon) {
      killTree(daemon);
      await daemon.exited;
    }
    await reaper.stop();
  }
}, scaled(30_000));

/** The two PIDs W prints on its first line. */
async function firstLine(stdout: ReadableStream<Uint8Array>): Promise<[number, number]> {
  const reader = stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`W printed ${JSON.stringify(text)} and closed its output`);
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    reader.releaseLock();
  }
  const [grandchild, waiter] = text.split("\n")[0]!.trim().split(" ").map(Number);
  return [grandchild!, waiter!];
}

function readComm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return undefined;
  }
}
