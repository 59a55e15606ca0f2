/**
 * O(1) per exit on the netlink path: an exit the proc connector names is
 * reaped by its PID. Every libc call the core makes is counted: no
 * waitid(P_ALL) peek per exit (only the once-a-second check for zombies
 * reparented to us after their exit event), and never a runtime-pidfd look
 * (a poll over the fd table) for a zombie the kernel's events prove adopted.
 */
import { afterAll, expect, test } from "bun:test";
import pino from "pino";
import { Core } from "../../src/core.ts";
import { P_ALL, type Libc } from "../../src/libc.ts";
import { loadLibc } from "../../src/runtime/index.ts";
import { probeNetlinkSource } from "../../src/sources/netlink.ts";
import { startSigchldSource } from "../../src/sources/sigchld.ts";
import type { ReapedProcess } from "../../src/types.ts";
import { waitUntil, zombieChildren } from "../helpers/processes.ts";
import { DEFAULT_SETTINGS } from "./harness.ts";

const ORPHANS = 100;
const cleanups: (() => void)[] = [];
afterAll(() => cleanups.forEach((cleanup) => cleanup()));

/** The real libc, with each call counted by name (waitid by id type). */
function countingLibc(libc: Libc): { libc: Libc; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const count = (name: string) => calls.set(name, (calls.get(name) ?? 0) + 1);
  const counted = new Proxy(libc, {
    get(target, name: string) {
      const value = Reflect.get(target, name) as unknown;
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        count(name === "waitid" && args[0] === P_ALL ? "waitid(P_ALL)" : name);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { libc: counted, calls };
}

test(`${ORPHANS} adopted exits: each reaped by its PID, no P_ALL peek per exit, no runtime-pidfd look`, async () => {
  const real = loadLibc();
  real.setChildSubreaper(true);
  const { libc, calls } = countingLibc(real);
  const logger = pino({ level: "silent" });
  const reaped: ReapedProcess[] = [];
  const core = new Core({ libc, logger, graceMs: 2000, alwaysGrace: false, reapLogLevel: "debug", runtimeMarksChildrenWithPidfd: true, onReap: (p) => reaped.push(p) });
  const probe = await probeNetlinkSource(libc, logger, DEFAULT_SETTINGS);
  if (!probe.ok) throw new Error(`netlink probe failed: ${probe.reason}`);
  core.useExactSource(probe.source);
  const sigchld = startSigchldSource(core);
  cleanups.push(() => (sigchld.stop(), probe.source.stop(), core.stop()));
  calls.clear();

  const startedAt = performance.now();
  // Each orphan's parent (the inner subshell's) exits at once: it is ours before it exits, 10 ms apart.
  const maker = Bun.spawn(["sh", "-c", `i=0; while [ $i -lt ${ORPHANS} ]; do ( (sleep 1.$((i + 10)); exit 4) & ); i=$((i+1)); done`]);
  expect(await maker.exited).toBe(0);
  expect(await waitUntil(() => reaped.length === ORPHANS, 60_000)).toBe(true);
  const seconds = (performance.now() - startedAt) / 1000;

  expect(reaped.every((p) => p.source === "netlink" && p.provenance === "adopted" && p.exitCode === 4)).toBe(true);
  expect(await zombieChildren()).toEqual([]);
  expect(calls.get("pidfdOpen")).toBeGreaterThanOrEqual(ORPHANS);
  // At most the once-a-second check for reparented zombies, plus SIGCHLDs no exit explained (the maker's own children).
  expect(calls.get("waitid(P_ALL)") ?? 0).toBeLessThanOrEqual(Math.ceil(seconds) + 3);
  expect(calls.get("readableFdsBelow") ?? 0).toBe(0);
}, 90_000);
