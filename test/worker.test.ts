/**
 * A reaper started inside a Worker could reap nothing: adopted orphans are
 * children of the main thread, and the reaper waits only for its own
 * thread's children (__WNOTHREAD). It is off, at warn, saying so, and it
 * changed nothing in the process.
 */
import { expect, test } from "bun:test";
import { Worker } from "node:worker_threads";
import { loadLibc } from "../src/runtime/index.ts";
import { scaled } from "./helpers/time.ts";

test("started inside a Worker: off at warn with a reason a person can act on, nothing changed", async () => {
  const libc = loadLibc();
  const listenersBefore = process.listenerCount("SIGCHLD");
  const worker = new Worker(new URL("./fixtures/worker-reaper.ts", import.meta.url));
  try {
    const { stats, lines } = await new Promise<{ stats: { source: string; notChosen: { off?: string } }; lines: object[] }>(
      (resolve, reject) => {
        worker.once("message", resolve);
        worker.once("error", reject);
      },
    );
    expect(stats.source).toBe("off");
    expect(stats.notChosen.off).toMatch(/inside a Worker.*start it from the main thread/);
    expect(lines).toEqual([expect.objectContaining({ level: 40, source: "off" })]);
  } finally {
    await worker.terminate();
  }
  expect(libc.isChildSubreaper()).toBe(false);
  expect(process.listenerCount("SIGCHLD")).toBe(listenersBefore);
}, scaled(30_000));
