/**
 * What a sweep costs among many live children: with no zombie, one waitid
 * peek (the kernel walks the list once), not a waitid per child; with one, a
 * look at every child, and the zombie is reaped. Every libc call the core
 * makes is counted; the children are real (Bun.spawn) and the zombie a real
 * orphan.
 */
import { afterAll, expect, test } from "bun:test";
import pino from "pino";
import { Core } from "../src/core.ts";
import { loadLibc } from "../src/runtime/index.ts";
import type { ReapedProcess } from "../src/types.ts";
import { countingLibc } from "./helpers/counting-libc.ts";
import { makeOrphans } from "./helpers/orphans.ts";
import { isZombie, spawnLiveChild, waitUntil, zombieChildren } from "./helpers/processes.ts";
import { scaled } from "./helpers/time.ts";

const LIVE_CHILDREN = 40;
const cleanups: (() => Promise<unknown> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

test(`a sweep among ${LIVE_CHILDREN} live children: one peek when none is a zombie, a look at each when one is`, async () => {
  const real = loadLibc();
  real.setChildSubreaper(true);
  const { libc, calls } = countingLibc(real);
  const reaped: ReapedProcess[] = [];
  const core = new Core({
    libc, logger: pino({ level: "silent" }), graceMs: 0, alwaysGrace: false, reapLogLevel: "debug",
    runtimeMarksChildrenWithPidfd: true, onReap: (process) => reaped.push(process),
  });
  cleanups.push(() => core.stop());
  const children = Array.from({ length: LIVE_CHILDREN }, () => spawnLiveChild());
  cleanups.push(() => Promise.all(children.map((child) => (child.kill("SIGKILL"), child.exited))));

  calls.clear();
  core.sweep();
  // The peek is the scan's last call when it finds nothing.
  expect(await waitUntil(() => (calls.get("waitid(P_ALL)") ?? 0) > 0, 10_000)).toBe(true);
  expect(calls.get("waitid(P_ALL)")).toBe(1);
  expect(calls.get("waitid(P_PID)") ?? 0).toBe(0);
  expect(calls.get("pidfdOpen") ?? 0).toBe(0);

  // No SIGCHLD source: the orphan stays a zombie until the sweep.
  const [orphan] = await makeOrphans(1, 3);
  expect(await waitUntil(() => isZombie(orphan!), 10_000)).toBe(true);
  calls.clear();
  core.sweep();
  expect(await waitUntil(() => reaped.length === 1, 10_000)).toBe(true);
  expect(reaped[0]).toMatchObject({ pid: orphan, source: "sweep", exitCode: 3 });
  expect(calls.get("waitid(P_PID)") ?? 0).toBeGreaterThanOrEqual(LIVE_CHILDREN + 1);
  expect(await zombieChildren()).toEqual([]);
}, scaled(60_000));
