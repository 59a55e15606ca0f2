import { expect, test } from "bun:test";
import { listOwnChildren, readStats } from "../../src/procfs.ts";
import { scaled, waitUntil } from "../helpers/time.ts";
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

test("run exits 127 when the command does not exist, and 2 on a usage error", async () => {
  expect((await runCli(["run", "--", "no-such-command-here"])).exitCode).toBe(127);
  expect((await runCli(["run", "sh"])).exitCode).toBe(2);
});

for (const flags of [[], ["--group"]]) {
  test(`a SIGTERM sent to run reaches the child ${flags.join(" ") || "(no --group)"}`, async () => {
    // `wait` returns when a trapped signal arrives (no polling loop); the trap ends the sleep too.
    const script = 'trap "kill $!; exit 42" TERM; sleep 30 & echo ready; wait';
    const run = spawnCli(["run", ...flags, "--", "sh", "-c", script]);
    await readUntil(run.stdout, "ready");
    run.kill("SIGTERM");
    expect(await run.exited).toBe(42);
  }, scaled(20_000));
}

test("run reaps the orphans its child leaves behind; no zombie remains", async () => {
  // Each ( ... & ) subshell has exited when it returns, so its child is run's orphan by "forked".
  const script = "trap 'kill $!; wait; exit 0' TERM; (sleep 0.1 &); (sleep 0.1 &); (sh -c 'exit 5' &); sleep 30 & echo forked; wait";
  const run = spawnCli(["run", "--verbose", "--", "sh", "-c", script]);
  await readUntil(run.stdout, "forked");
  const onlyTheShellLeft = async () => {
    const children = await readStats(await listOwnChildren(run.pid));
    return children.length === 1 && children[0]!.state !== "Z"; // only the sh that run started
  };
  expect(await waitUntil(onlyTheShellLeft, 10_000)).toBe(true);
  const [shell] = await listOwnChildren(run.pid);
  process.kill(shell!, "SIGTERM");
  expect(await run.exited).toBe(0);
  const reaped = logLines(await new Response(run.stderr).text()).filter((line) => line.msg === "reaped orphan");
  expect(reaped).toHaveLength(3);
  for (const line of reaped) expect(line.orphan).toMatchObject({ provenance: "adopted", comm: expect.any(String) });
}, scaled(30_000));

test("descendants left behind get SIGTERM, and SIGKILL after the grace period", async () => {
  // The second sleep is forked after `trap '' TERM`, so it ignores SIGTERM from its first instant.
  const script = "sleep 30 & echo $!; trap '' TERM; sleep 30 & echo $!";
  const { exitCode, stdout, stderr } = await runCli(["run", "--grace-ms", "300", "--", "sh", "-c", script]);
  expect(exitCode).toBe(0);
  const pids = stdout.trim().split("\n").map(Number);
  expect(pids).toHaveLength(2);
  expect(await waitUntil(() => pids.every((pid) => !isRunning(pid)), 10_000)).toBe(true);
  expect(stderr).toContain("sending SIGKILL");
}, scaled(30_000));
