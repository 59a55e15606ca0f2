import { expect, test } from "bun:test";
import { listOwnChildren, readStats } from "../../src/procfs.ts";
import { waitUntil } from "../helpers/processes.ts";
import { logLines, runCli, spawnCli } from "../helpers/cli.ts";

/** Reads a child's stdout until `marker` shows up; returns what was read. */
async function readUntil(stream: ReadableStream<Uint8Array>, marker: string): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    text += decoder.decode(chunk);
    if (text.includes(marker)) return text;
  }
  throw new Error(`stream ended before ${JSON.stringify(marker)}; got ${JSON.stringify(text)}`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("run exits with the child's exit code", async () => {
  expect((await runCli(["run", "--", "sh", "-c", "exit 7"])).exitCode).toBe(7);
});

test("run exits with 128 + the signal number when a signal killed the child", async () => {
  expect((await runCli(["run", "--", "sh", "-c", "kill -KILL $$"])).exitCode).toBe(128 + 9);
});

test("run exits 127 when the command does not exist, and 1 on a usage error (as tini)", async () => {
  expect((await runCli(["run", "--", "no-such-command-here"])).exitCode).toBe(127);
  expect((await runCli(["run", "--no-such-option", "sh"])).exitCode).toBe(1);
});

for (const flags of [[], ["--group"]]) {
  test(`a SIGTERM sent to run reaches the child ${flags.join(" ") || "(no --group)"}`, async () => {
    const script = 'trap "exit 42" TERM; echo ready; while :; do sleep 0.05; done';
    const run = spawnCli(["run", ...flags, "--", "sh", "-c", script]);
    await readUntil(run.stdout, "ready");
    run.kill("SIGTERM");
    expect(await run.exited).toBe(42);
  });
}

test("run reaps the orphans its child leaves behind; no zombie remains", async () => {
  // Each ( ... & ) subshell exits at once, so its sleep is reparented to run.
  const script = "(sleep 0.1 &); (sleep 0.1 &); (sh -c 'exit 5' &); sleep 0.4; echo orphans-gone; sleep 0.3";
  const run = spawnCli(["run", "--verbose", "--", "sh", "-c", script]);
  await readUntil(run.stdout, "orphans-gone");
  const children = await readStats(await listOwnChildren(run.pid));
  expect(children.filter((child) => child.state === "Z")).toEqual([]);
  expect(children).toHaveLength(1); // only the sh that run started
  expect(await run.exited).toBe(0);
  const reaped = logLines(await new Response(run.stderr).text()).filter((line) => line.msg === "reaped orphan");
  expect(reaped).toHaveLength(3);
  for (const line of reaped) expect(line.orphan).toMatchObject({ provenance: "adopted", comm: expect.any(String) });
});

test("descendants left behind get SIGTERM, and SIGKILL after the grace period", async () => {
  const script = "sleep 30 & echo $!; (trap '' TERM; exec sleep 30) & echo $!";
  const started = performance.now();
  const { exitCode, stdout, stderr } = await runCli(["run", "--grace-ms", "300", "--", "sh", "-c", script]);
  expect(exitCode).toBe(0);
  expect(performance.now() - started).toBeLessThan(3_000);
  const pids = stdout.trim().split("\n").map(Number);
  expect(pids).toHaveLength(2);
  expect(await waitUntil(() => pids.every((pid) => !isRunning(pid)), 1_000)).toBe(true);
  expect(stderr).toContain("sending SIGKILL");
});
