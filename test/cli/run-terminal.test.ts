/**
 * On a real pseudo-terminal (python3's pty): one Ctrl-C is one SIGINT for the
 * child, with and without -g; the child's group is its own and the
 * terminal's foreground group. The same checks run on tini, dumb-init and
 * catatonit when they are installed (the README's comparison table).
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { readStat } from "../../src/procfs.ts";
import { killIfAlive, liveDescendants } from "../../scripts/descendants.ts";
import { hasCommand } from "../helpers/processes.ts";
import { ourInit, RECORDER, SCALE } from "./init-harness.ts";

const PTY_DRIVER = join(import.meta.dir, "../fixtures/pty-interrupt.py");

interface PtyOutcome {
  readonly ready: string | null;
  readonly interrupts: number;
  readonly exitCode: number | null;
  readonly terminal: string;
}

async function onTerminal(initArgv: readonly string[]): Promise<PtyOutcome> {
  const driver = Bun.spawn(["python3", PTY_DRIVER, ...initArgv, "bash", RECORDER, "INT"], { stdout: "pipe", stderr: "pipe" });
  try {
    const [stdout, stderr] = await Promise.all([new Response(driver.stdout).text(), new Response(driver.stderr).text()]);
    if ((await driver.exited) !== 0) throw new Error(`pty driver failed: ${stderr}`);
    return JSON.parse(stdout);
  } finally {
    driver.kill("SIGKILL"); // the driver kills its init itself; this only ends a driver the test gave up on
  }
}

function expectOneInterruptInForeground(outcome: PtyOutcome): void {
  const [, pid, pgid, tpgid] = (outcome.ready ?? "").split(" ").map(Number);
  expect({ pid, pgid, tpgid }).toEqual({ pid: pid!, pgid: pid!, tpgid: pid! }); // own group, in the foreground
  expect(outcome.interrupts).toBe(1);
  expect(outcome.exitCode).toBe(5);
}

const noPython = hasCommand("python3") ? undefined : "python3 is not installed (its pty module drives the terminal)";
if (noPython) console.log(`skipping the terminal tests: ${noPython}`);

describe.skipIf(noPython !== undefined)("run on a terminal", () => {
  for (const flags of [[], ["-g"]]) {
    test(`one Ctrl-C is one SIGINT, and the child's group has the terminal ${flags.join(" ") || "(no -g)"}`, async () => {
      expectOneInterruptInForeground(await onTerminal(ourInit(flags)));
    }, 30_000 * SCALE);
  }

  test("run started as a background job leaves the terminal to the foreground job", async () => {
    // A job-control shell (set -m) puts the background job in a group of its own, not the foreground one.
    const outcome = await onTerminal(["sh", "-c", 'set -m; "$@" & wait $!', "sh", ...ourInit()]);
    const [, pid, pgid, tpgid] = (outcome.ready ?? "").split(" ").map(Number);
    try {
      expect(pgid).toBe(pid!);
      expect(tpgid).not.toBe(pgid);
    } finally {
      // The driver's Ctrl-C went to the shell; end what it left by PID: the recorder's group and run.
      const runPid = readStat(pid!)?.ppid;
      for (const target of [-pgid!, runPid]) {
        try {
          if (target) process.kill(target, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
  }, 30_000 * SCALE);

  test("log lines are human-readable on a terminal, JSON when asked", async () => {
    const human = await onTerminal(ourInit(["-v"]));
    expect(human.terminal).toContain("orphan-reaper: child exited");
    expect(human.terminal.split(/\r?\n/).filter((line) => line.startsWith("{"))).toEqual([]);
    const json = await onTerminal(ourInit(["-v", "--log-format", "json"]));
    const exitedLine = json.terminal.split(/\r?\n/).find((line) => line.includes('"child exited"'));
    expect(JSON.parse(exitedLine!)).toMatchObject({ msg: "child exited", child: { exitCode: 5 }, code: 5 });
  }, 30_000 * SCALE);
});

/** The anchors, run the same way; tini needs -s when it is not PID 1. */
const ANCHORS: readonly { name: string; argv: string[] }[] = [
  { name: "tini", argv: ["tini", "-s", "--"] },
  { name: "tini", argv: ["tini", "-s", "-g", "--"] },
  { name: "dumb-init", argv: ["dumb-init"] },
  { name: "catatonit", argv: ["catatonit", "--"] },
  { name: "catatonit", argv: ["catatonit", "-g", "--"] },
];

describe.skipIf(noPython !== undefined)("the anchors on a terminal (comparison)", () => {
  for (const anchor of ANCHORS) {
    const missing = hasCommand(anchor.name) ? undefined : `${anchor.name} is not installed (apt-get install ${anchor.name})`;
    if (missing) console.log(`skipping the comparison with ${anchor.argv.join(" ")}: ${missing}`);
    test.skipIf(missing !== undefined)(`${anchor.argv.join(" ")}: one Ctrl-C is one SIGINT, the child's group has the terminal`, async () => {
      expectOneInterruptInForeground(await onTerminal(anchor.argv));
    }, 30_000 * SCALE);
  }
});

const PTY_RUN = join(import.meta.dir, "../fixtures/pty-run.py");

describe.skipIf(noPython !== undefined)("run as a background job on a terminal with tostop", () => {
  test("SIGTTOU is ignored, as tini does: run's log line is written, no retry loop, and the child's exit code comes through", async () => {
    // A job-control shell puts run in a background group; with tostop, a background write to the terminal gets SIGTTOU.
    const script = 'stty tostop; set -m; "$@" & echo "run $!"; wait $!; echo "exit $?"';
    const driver = Bun.spawn(["python3", PTY_RUN, "sh", "-c", script, "sh", ...ourInit(["-v"]), "sh", "-c", "exit 3"], { stdout: "pipe", stderr: "pipe" });
    let runPid = 0;
    try {
      const [stdout, stderr] = await Promise.all([new Response(driver.stdout).text(), new Response(driver.stderr).text()]);
      expect({ driver: await driver.exited, stderr }).toEqual({ driver: 0, stderr: "" });
      const outcome = JSON.parse(stdout) as { exitCode: number | null; terminal: string };
      runPid = Number(/^run (\d+)/m.exec(outcome.terminal)?.[1] ?? 0);
      expect(outcome.terminal).toContain("orphan-reaper: child exited");
      expect(outcome.terminal).toMatch(/^exit 3\r?$/m);
      expect(outcome.exitCode).toBe(0);
    } finally {
      driver.kill("SIGKILL");
      // A run left behind is in a background group of its own, which the terminal's hangup spares.
      for (const pid of runPid ? [...liveDescendants(runPid), runPid] : []) killIfAlive(pid);
    }
  }, 40_000 * SCALE);
});
