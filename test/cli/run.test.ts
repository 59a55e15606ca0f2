import { expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listOwnChildren, readStat, readStats } from "../../src/procfs.ts";
import { killTree } from "../helpers/processes.ts";
import { scaled, waitUntil } from "../helpers/time.ts";
import { CLI_MAIN, logLines, runCli, spawnCli } from "../helpers/cli.ts";

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

/** Alive and not a zombie (a zombie waits for whoever adopted it to reap it). */
function isRunning(pid: number): boolean {
  const stat = readStat(pid);
  return stat !== undefined && stat.state !== "Z";
}

test("run exits with the child's exit code", async () => {
  expect((await runCli(["run", "--", "sh", "-c", "exit 7"])).exitCode).toBe(7);
}, scaled(30_000));

test("run exits with 128 + the signal number when a signal killed the child", async () => {
  expect((await runCli(["run", "--", "sh", "-c", "kill -KILL $$"])).exitCode).toBe(128 + 9);
}, scaled(30_000));

test("the command's words reach it as given: after the options' --, a -- is the command's name (127, as tini)", async () => {
  expect(await runCli(["run", "--", "--", "echo", "hi"])).toMatchObject({ exitCode: 127, stdout: "" });
  expect(await runCli(["run", "--", "sh", "-c", 'echo "$@"', "sh", "--", "--bun", "x"])).toMatchObject({ exitCode: 0, stdout: "-- --bun x\n" });
}, scaled(30_000));

test("run exits 127 when the command does not exist, and 1 on a usage error (as tini)", async () => {
  expect((await runCli(["run", "--", "no-such-command-here"])).exitCode).toBe(127);
  expect((await runCli(["run", "--no-such-option", "sh"])).exitCode).toBe(1);
}, scaled(30_000));

for (const flags of [[], ["--group"]]) {
  test(`a SIGTERM sent to run reaches the child ${flags.join(" ") || "(no --group)"}`, async () => {
    // `wait` returns when a trapped signal arrives (no polling loop); the trap ends the sleep too.
    const script = 'trap "kill $!; exit 42" TERM; sleep 30 & echo ready; wait';
    const run = spawnCli(["run", ...flags, "--", "sh", "-c", script]);
    try {
      await readUntil(run.stdout, "ready");
      run.kill("SIGTERM");
      expect(await run.exited).toBe(42);
    } finally {
      killTree(run);
    }
  }, scaled(30_000));
}

test("run reaps the orphans its child leaves behind; no zombie remains", async () => {
  // Each ( ... & ) subshell has exited when it returns, so its child is run's orphan by "forked".
  const script = "trap 'kill $!; wait; exit 0' TERM; (sleep 0.1 &); (sleep 0.1 &); (sh -c 'exit 5' &); sleep 30 & echo forked; wait";
  const run = spawnCli(["run", "--verbose", "--", "sh", "-c", script]);
  const stderr = new Response(run.stderr).text();
  try {
    await readUntil(run.stdout, "forked");
    const onlyTheShellLeft = async () => {
      const children = await readStats(await listOwnChildren(run.pid));
      return children.length === 1 && children[0]!.state !== "Z"; // only the sh that run started
    };
    expect(await waitUntil(onlyTheShellLeft, 10_000)).toBe(true);
    const [shell] = await listOwnChildren(run.pid);
    process.kill(shell!, "SIGTERM");
    expect(await run.exited).toBe(0);
  } finally {
    killTree(run);
  }
  const reaped = logLines(await stderr).filter((line) => line.msg === "reaped orphan");
  expect(reaped).toHaveLength(3);
  for (const line of reaped) expect(line.orphan).toMatchObject({ provenance: "adopted", comm: expect.any(String) });
}, scaled(30_000));

test("descendants left behind get SIGTERM, and SIGKILL after the grace period", async () => {
  // The second sleep is forked after `trap '' TERM`, so it ignores SIGTERM from its first instant.
  const script = "sleep 30 & echo $!; trap '' TERM; sleep 30 & echo $!";
  const { exitCode, stdout, stderr } = await runCli(["run", "--grace-ms", "300", "--", "sh", "-c", script]);
  expect(exitCode).toBe(0);
  expect(logLines(stderr).find((line) => line.msg?.toString().includes("sending SIGKILL"))).toMatchObject({ graceMs: 300 });
  const pids = stdout.trim().split("\n").map(Number);
  expect(pids).toHaveLength(2);
  expect(await waitUntil(() => pids.every((pid) => !isRunning(pid)), 10_000)).toBe(true);
  expect(stderr).toContain("sending SIGKILL");
}, scaled(30_000));

test("--version prints the package's version", async () => {
  const { exitCode, stdout } = await runCli(["--version"]);
  expect(exitCode).toBe(0);
  expect(stdout).toBe(`orphan-reaper ${require("../../package.json").version}\n`);
}, scaled(30_000));

test("a command that cannot run: one plain line (human or JSON), no stack; 127 or 126", async () => {
  const human = await runCli(["run", "--log-format", "human", "no-such-command-here"]);
  expect(human).toMatchObject({ exitCode: 127, stderr: "orphan-reaper: [error] cannot run no-such-command-here: ENOENT\n" });
  const json = await runCli(["run", "no-such-command-here"]); // piped: JSON
  expect(logLines(json.stderr)).toEqual([expect.objectContaining({ msg: "cannot run no-such-command-here: ENOENT", level: 50 })]);
  expect(json.stderr).not.toContain("stack");
  const notExecutable = await runCli(["run", "--log-format", "human", "/dev/null"]);
  expect(notExecutable).toMatchObject({ exitCode: 126, stderr: "orphan-reaper: [error] cannot run /dev/null: EACCES\n" });
}, scaled(30_000));

test("no log line carries two pid keys; ORPHAN_REAPER_LOG_LEVEL is honoured", async () => {
  const child = Bun.spawn([process.execPath, CLI_MAIN, "run", "sh", "-c", "(sleep 0.1 &); sleep 0.3"], {
    stdout: "pipe", stderr: "pipe", env: { ...process.env, ORPHAN_REAPER_LOG_LEVEL: "debug" },
  });
  const stderr = await new Response(child.stderr).text();
  expect(await child.exited).toBe(0);
  const lines = stderr.split("\n").filter(Boolean);
  expect(lines.some((line) => JSON.parse(line).level === 20)).toBe(true); // debug lines: the level was taken
  expect(lines.map((line) => line.match(/"pid":/g)?.length ?? 0).filter((count) => count > 1)).toEqual([]);
  expect(logLines(stderr).filter((line) => line.msg === "reaped orphan")).toHaveLength(1);
}, scaled(30_000));

test("the command gets run's own environment, not a .env file Bun would add", async () => {
  const dir = mkdtempSync(join(tmpdir(), "orphan-reaper-env-"));
  try {
    writeFileSync(join(dir, ".env"), "ORPHAN_REAPER_DOTENV_PROBE=leaked\n");
    const child = Bun.spawn([process.execPath, CLI_MAIN, "run", "sh", "-c", "echo ${ORPHAN_REAPER_DOTENV_PROBE:-absent} $KEPT"], {
      cwd: dir, stdout: "pipe", stderr: "pipe", env: { ...process.env, KEPT: "kept" },
    });
    expect(await new Response(child.stdout).text()).toBe("absent kept\n");
    expect(await child.exited).toBe(0);
  } finally {
    rmSync(dir, { recursive: true });
  }
}, scaled(30_000));

test("-p SIGNAL: when run's parent exits, run gets SIGNAL and forwards it", async () => {
  // A shell starts run in the background and exits when told: run's parent is gone.
  const script = 'sh -c \'trap "echo got TERM; exit 0" TERM; echo ready; sleep 30 & wait\' ';
  const parent = Bun.spawn(
    ["sh", "-c", `"$@" </dev/null & echo $!; read line`, "sh", process.execPath, CLI_MAIN, "run", "-p", "TERM", "sh", "-c", script],
    { stdin: "pipe", stdout: "pipe", stderr: "pipe" },
  );
  const reader = parent.stdout.getReader();
  let text = "";
  let runPid = 0;
  try {
    while (!text.includes("ready")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    runPid = Number(text.split("\n")[0]);
    parent.stdin.write("go\n");
    await parent.stdin.flush();
    expect(await parent.exited).toBe(0);
    while (!text.includes("got TERM")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(text).toContain("got TERM");
    expect(await waitUntil(() => !isRunning(runPid), 10_000)).toBe(true);
  } finally {
    parent.kill("SIGKILL");
    if (runPid && isRunning(runPid)) process.kill(runPid, "SIGKILL");
  }
}, scaled(30_000));

/** Reads a child's stdout until it has printed `count` whole numbers. */
async function readNumbers(stream: ReadableStream<Uint8Array>, count: number): Promise<number[]> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    text += decoder.decode(chunk);
    const numbers = text.match(/\d+(?=\s)/g) ?? [];
    if (numbers.length >= count) return numbers.slice(0, count).map(Number);
  }
  throw new Error(`stream ended before ${count} numbers; got ${JSON.stringify(text)}`);
}

/**
 * Runs `orphan-reaper run ...args` (after `prefix`) on a shell that prints
 * `count` PIDs of descendants, then exits when told on stdin. Returns run's
 * exit code and stderr, the PIDs, and whether each ended (waited for, scaled).
 * What is left of it is killed, whatever happens.
 */
async function runAndTellToExit(args: string[], count: number, prefix: string[] = []) {
  const run = Bun.spawn([...prefix, process.execPath, CLI_MAIN, "run", ...args], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const stderr = new Response(run.stderr).text();
  let pids: number[] = [];
  try {
    pids = await readNumbers(run.stdout, count);
    run.stdin.write("go\n");
    await run.stdin.end();
    const exitCode = await run.exited;
    return { exitCode, stderr: await stderr, pids, allEnded: await waitUntil(() => pids.every((pid) => !isRunning(pid)), 10_000) };
  } finally {
    killTree(run);
    for (const pid of pids) if (isRunning(pid)) process.kill(pid, "SIGKILL");
  }
}

test("descendants reparented to run during the grace period get SIGTERM too", async () => {
  // The subshell exits on SIGTERM and leaves its sleep to run: that sleep must get SIGTERM as well.
  // The shell exits only when told, once the subshell has printed its sleep's PID (trap set, sleep forked).
  const script = "(trap 'exit 0' TERM; sleep 30 & echo $!; wait) & read _";
  const { exitCode, stderr, pids, allEnded } = await runAndTellToExit(["-v", "--grace-ms", "20000", "sh", "-c", script], 1);
  expect(exitCode).toBe(0);
  expect(stderr).not.toContain("sending SIGKILL");
  const termed = logLines(stderr).filter((line) => line.msg === "sent SIGTERM to the descendants the child left behind");
  expect(termed.flatMap((line) => line.pids as number[])).toContain(pids[0]!);
  expect(allEnded).toBe(true);
}, scaled(40_000));

test("after the grace period, descendants reparented to run once their parent is SIGKILLed get SIGKILL too", async () => {
  // Three links that ignore SIGTERM, each the parent of the next; the shell exits when told, once all three run.
  const chain = join(import.meta.dir, "../fixtures/descendant-chain.sh");
  const { exitCode, pids, allEnded } = await runAndTellToExit(["--grace-ms", "300", "sh", "-c", `trap '' TERM; sh ${chain} 3 & read _`], 3);
  expect(exitCode).toBe(0);
  expect(pids).toHaveLength(3);
  expect(allEnded).toBe(true);
}, scaled(30_000));

const BROKEN_STDERR = join(import.meta.dir, "../fixtures/broken-stderr.py");

for (const flags of [["--log-format", "human"], ["--log-format", "human", "-v"], ["--log-format", "json"], ["--log-format", "json", "-v"]]) {
  test(`a log line that cannot be written (EPIPE) is dropped: run still ends the descendants and exits with the child's code ${flags.join(" ")}`, async () => {
    // The second sleep ignores SIGTERM: run logs at warn, then must SIGKILL it. The shell exits when told.
    const script = "sleep 30 & first=$!; trap '' TERM; sleep 30 & echo $first $!; read _; exit 3";
    const { exitCode, stderr, allEnded } = await runAndTellToExit([...flags, "--grace-ms", "300", "--", "sh", "-c", script], 2, ["python3", BROKEN_STDERR]);
    expect({ exitCode, wrapperErrors: stderr }).toEqual({ exitCode: 3, wrapperErrors: "" });
    expect(allEnded).toBe(true);
  }, scaled(30_000));
}

test("signals that come while run ends do not end it: the child's code comes back (10 rounds)", async () => {
  // The child ignores SIGINT (forwarded to it); run gets one every millisecond until it has exited.
  for (let round = 0; round < 10; round++) {
    const run = Bun.spawn([process.execPath, CLI_MAIN, "run", "--", "sh", "-c", "trap '' INT; echo ready; read _; exit 5"], {
      stdin: "pipe", stdout: "pipe", stderr: "ignore",
    });
    let sender: ReturnType<typeof setInterval> | undefined;
    try {
      await readUntil(run.stdout, "ready");
      sender = setInterval(() => run.exitCode === null && run.signalCode === null && run.kill("SIGINT"), 1);
      run.stdin.write("go\n");
      await run.stdin.end();
      await run.exited;
      expect({ round, exitCode: run.exitCode, signal: run.signalCode }).toEqual({ round, exitCode: 5, signal: null });
    } finally {
      clearInterval(sender);
      killTree(run);
    }
  }
}, scaled(60_000));

const prlimit = Bun.which("prlimit");
if (!prlimit) console.log("skipping the spawn-failure test: prlimit (util-linux) is not installed");

test.skipIf(!prlimit)("a command that cannot be spawned at all (too few fds): one line and 126, never a crash", async () => {
  // From a limit too low for the runtime to start, up to one where the command runs: in between, the
  // runtime starts but cannot spawn the command (EMFILE). Each run is one short-lived process.
  const outcomes: { limit: number; exitCode: number; stderr: string }[] = [];
  for (let limit = 8; limit <= 64 && outcomes.at(-1)?.exitCode !== 3; limit++) {
    outcomes.push({ limit, ...(await runCli(["run", "--", "sh", "-c", "exit 3"], [prlimit!, `--nofile=${limit}`])) });
  }
  expect(outcomes.at(-1)?.exitCode).toBe(3);
  for (const { limit, stderr } of outcomes) expect({ limit, stderr }).not.toEqual({ limit, stderr: expect.stringMatching(/TypeError|is not an object|startCommand/) });
  const cannotSpawn = outcomes.filter(({ exitCode }) => exitCode === 126);
  for (const { stderr } of cannotSpawn) expect(logLines(stderr).map((line) => line.msg)).toContain("cannot run sh: EMFILE");
  if (cannotSpawn.length === 0) console.log(`no fd limit here lets the runtime start but not spawn: ${outcomes.map(({ limit, exitCode }) => `${limit}: ${exitCode}`).join(", ")}`);
}, scaled(120_000));

test("a signal ignored where run was started stays ignored for the command (nohup), as with tini", async () => {
  // sh's `trap ''` sets SIG_IGN, which exec keeps: run starts with SIGHUP ignored, and so must the command.
  const command = "kill -HUP $$; echo survived";
  const run = Bun.spawn(["sh", "-c", `trap '' HUP; exec "$0" "$1" run -- sh -c '${command}'`, process.execPath, CLI_MAIN], { stdout: "pipe", stderr: "pipe" });
  try {
    const [stdout, exitCode] = await Promise.all([new Response(run.stdout).text(), run.exited]);
    expect({ exitCode, stdout }).toEqual({ exitCode: 0, stdout: "survived\n" });
  } finally {
    killTree(run);
  }
}, scaled(30_000));
