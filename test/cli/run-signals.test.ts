/**
 * `run` forwards every signal it can catch to its child exactly once and
 * survives each, as PID 1 of a new PID namespace and as a child subreaper,
 * with and without -g; signals sent before the command runs are held.
 */
import { describe, expect, test } from "bun:test";
import { constants } from "node:os";
import { loadLibc } from "../../src/runtime/index.ts";
import { planSignals } from "../../src/cli/signals.ts";
import { readStat } from "../../src/procfs.ts";
import { runCli, unshareUnavailable } from "../helpers/cli.ts";
import { whyNoPidfdExitStatus } from "../helpers/pidfd-exit.mjs";
import { waitUntil } from "../helpers/processes.ts";
import { InitUnderTest, ourInit, PID1_PREFIX, RECORDER, SCALE, type Ready } from "./init-harness.ts";

/** 1-31 without KILL and STOP (uncatchable), CHLD (the init's own), PIPE, TTIN and TTOU (ignored), the four fault signals and PWR (the anchors differ on those). */
const FORWARDED_BY_ALL = [
  "HUP", "INT", "QUIT", "TRAP", "ABRT", "USR1", "USR2", "ALRM", "TERM", "CONT",
  "TSTP", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "SYS",
];
/** Ignored (SIG_IGN): TTIN and TTOU as tini does; PIPE, which the kernel sends for a log line written to a pipe nobody reads. */
const IGNORED = ["PIPE", "TTIN", "TTOU"];
const isBun = process.versions.bun !== undefined;
/** The fault signals, and PWR in Bun, are caught natively in front of the runtime's handler: forwarded when another process sent them. */
const IN_FRONT = ["SEGV", "BUS", "FPE", "ILL", ...(isBun ? ["PWR"] : [])];
const FORWARDED = [...FORWARDED_BY_ALL, "STKFLT", "PWR", "SEGV", "BUS", "FPE", "ILL"];
/** No process.on can listen to these: caught by the native handler (native-signals.ts). */
const REALTIME = ["RTMIN", "RTMIN+1", "RTMAX"];
/** Where the kernel keeps no wait status on a pidfd, run has only child_process's word for a real-time signal's end. */
const noPidfdExitStatus = await whyNoPidfdExitStatus(loadLibc());
if (noPidfdExitStatus) console.log(`skipping the real-time end of the child: ${noPidfdExitStatus}`);

test("the signal plan: what is forwarded and how, and why the rest is not", () => {
  const libc = loadLibc();
  const plan = planSignals(libc);
  const { min, max } = libc.realtimeSignalRange();
  expect(plan.caughtNatively.filter((signal) => signal < min)).toEqual(isBun ? [constants.signals.SIGSTKFLT] : []);
  expect(plan.caughtInFront).toEqual(IN_FRONT.map((name) => constants.signals[`SIG${name}` as NodeJS.Signals]));
  const names = [...plan.forwarded.map((name) => name.slice(3)), ...(isBun ? ["STKFLT"] : []), ...IN_FRONT];
  expect(names.sort()).toEqual([...FORWARDED].sort());
  expect(plan.caughtNatively.filter((signal) => signal >= min)).toEqual(Array.from({ length: max - min + 1 }, (_, i) => min + i));
  expect(Object.keys(plan.notForwarded).sort()).toEqual(["SIGCHLD", "SIGKILL", "SIGPIPE", "SIGSTOP", "SIGTTIN", "SIGTTOU"]);
});

function realtimeNumber(name: string): number {
  const { min, max } = loadLibc().realtimeSignalRange();
  const [base, offset] = name.split(/(?=[+-])/);
  return (base === "RTMIN" ? min : max) + Number(offset ?? 0);
}

/** kill(2) with a signal name of ours ("TERM", "RTMIN+1"). */
function signalNumber(name: string): number {
  return name.startsWith("RT") ? realtimeNumber(name) : constants.signals[`SIG${name}` as NodeJS.Signals];
}

const MODES = [
  { pid1: false, label: "as a child subreaper" },
  { pid1: true, label: "as PID 1 of a new PID namespace" },
];

for (const { pid1, label } of MODES) {
  const skip = pid1 ? unshareUnavailable(["-p", "-f", "--mount-proc"]) : undefined;
  if (skip) console.log(`skipping the PID 1 signal tests: ${skip}`);
  describe.skipIf(skip !== undefined)(`run ${label}`, () => {
    for (const flags of [[], ["-g"]]) {
      test(`every forwarded signal reaches the child exactly once, and run survives each ${flags.join(" ") || "(no -g)"}`, async () => {
        const init = new InitUnderTest([...ourInit(flags), "bash", RECORDER, ...FORWARDED, ...REALTIME], pid1);
        let recorder: Ready | undefined;
        try {
          recorder = await init.ready(pid1);
          expect(recorder.pgid).toBe(recorder.pid); // a process group of its own
          for (const name of [...FORWARDED, ...REALTIME]) {
            process.kill(init.initPid, signalNumber(name));
            expect({ name, arrived: await init.waitForLine(`got ${name}`) }).toEqual({ name, arrived: true });
            expect({ name, initAlive: init.initAlive() }).toEqual({ name, initAlive: true });
          }
          process.kill(init.initPid, "SIGUSR1"); // a marker: signals from one sender arrive in order
          await init.waitForLine("got USR1");
          await Bun.sleep(200 * SCALE); // let a duplicate show up, if any
          expect(init.initAlive()).toBe(true);
          const counts = Object.fromEntries([...FORWARDED, ...REALTIME].map((name) => [name, init.count(`got ${name}`)]));
          expect(counts).toEqual({ ...Object.fromEntries([...FORWARDED, ...REALTIME].map((name) => [name, 1])), USR1: 2 });
          expect(await init.finish(7)).toBe(7);
        } finally {
          init.end(recorder);
        }
      }, 60_000 * SCALE);
    }

    test("the command starts with every signal at its default action and none blocked: exec dropped the native handler", async () => {
      const result = await runCli(["run", "--", "cat", "/proc/self/status"], pid1 ? PID1_PREFIX : []);
      expect(result.exitCode).toBe(0);
      const masks = Object.fromEntries(result.stdout.split("\n").filter((line) => /^Sig(Blk|Ign|Cgt):/.test(line)).map((line) => line.split(":\t")));
      expect(masks).toEqual({ SigBlk: "0000000000000000", SigIgn: "0000000000000000", SigCgt: "0000000000000000" });
    }, 30_000 * SCALE);

    test("SIGPIPE, SIGTTIN and SIGTTOU are ignored: not forwarded, and run is neither stopped nor ended by them", async () => {
      const init = new InitUnderTest([...ourInit(), "bash", RECORDER, ...IGNORED, "USR1"], pid1);
      let recorder: Ready | undefined;
      try {
        recorder = await init.ready(pid1);
        for (const name of IGNORED) process.kill(init.initPid, signalNumber(name));
        process.kill(init.initPid, "SIGUSR1"); // a marker: signals from one sender arrive in order
        expect(await init.waitForLine("got USR1")).toBe(true);
        await Bun.sleep(200 * SCALE); // let a late one show up, if any
        expect(IGNORED.map((name) => init.count(`got ${name}`))).toEqual([0, 0, 0]);
        expect(readStat(init.initPid)?.state).not.toBe("T");
        expect(await init.finish(7)).toBe(7);
      } finally {
        init.end(recorder);
      }
    }, 30_000 * SCALE);

    test.skipIf(noPidfdExitStatus !== undefined)("a child killed by a real-time signal: run exits 128 + N (child_process reports it as exit 0)", async () => {
      const signal = realtimeNumber("RTMIN+2");
      const init = new InitUnderTest([...ourInit(), "bash", RECORDER], pid1);
      let recorder: Ready | undefined;
      try {
        recorder = await init.ready(pid1);
        process.kill(init.initPid, signal); // forwarded; the recorder does not trap it: its default action ends it
        expect(await init.process.exited).toBe(128 + signal);
      } finally {
        init.end(recorder);
      }
    }, 30_000 * SCALE);

    test("-e 143 turns the child's 143 into 0; without it 143 comes back", async () => {
      for (const [flags, expected] of [[["-e", "143"], 0], [[], 143]] as const) {
        const init = new InitUnderTest([...ourInit(flags), "bash", RECORDER], pid1);
        let recorder: Ready | undefined;
        try {
          recorder = await init.ready(pid1);
          process.kill(init.initPid, "SIGTERM"); // no trap: the recorder dies of it
          expect(await init.process.exited).toBe(expected);
        } finally {
          init.end(recorder);
        }
      }
    }, 30_000 * SCALE);
  });
}

/**
 * The README's comparison rows on signals, measured on the anchors as PID 1
 * (the container case) when they are installed: which of the signals we
 * forward (plus PWR and STKFLT) reach the child. dumb-init is left out: it
 * stops itself on SIGTSTP by design, so the signals after it say nothing.
 */
const ANCHORS_NOT_FORWARDING: Record<string, { argv: string[]; missing: string[] }> = {
  tini: { argv: ["tini", "--"], missing: ["TRAP", "ABRT", "TTIN", "TTOU", "SYS"] },
  catatonit: { argv: ["catatonit", "--"], missing: ["TRAP", "ABRT", "TSTP", "TTIN", "TTOU", "SYS"] },
};
const pid1Skip = unshareUnavailable(["-p", "-f", "--mount-proc"]);

describe.skipIf(pid1Skip !== undefined)("the anchors as PID 1 (comparison)", () => {
  for (const [name, { argv, missing }] of Object.entries(ANCHORS_NOT_FORWARDING)) {
    const absent = Bun.which(name) ? undefined : `${name} is not installed (apt-get install ${name})`;
    if (absent) console.log(`skipping the comparison with ${name}: ${absent}`);
    test.skipIf(absent !== undefined)(`${name} forwards all but ${missing.join(", ")}, real-time ones included`, async () => {
      const all = [...FORWARDED_BY_ALL, ...IGNORED, "PWR", ...REALTIME];
      const init = new InitUnderTest([...argv, "bash", RECORDER, ...all], true);
      let recorder: Ready | undefined;
      try {
        recorder = await init.ready(true);
        const notArrived: string[] = [];
        for (const signal of all) {
          process.kill(init.initPid, signalNumber(signal));
          if (!(await waitUntil(() => init.lines.includes(`got ${signal}`), missing.includes(signal) ? 500 : 5_000))) notArrived.push(signal);
        }
        expect(notArrived.sort()).toEqual([...missing].sort());
        expect(await init.finish(7)).toBe(7);
      } finally {
        init.end(recorder);
      }
    }, 60_000 * SCALE);
  }
});

describe("the anchors as subreapers (comparison)", () => {
  for (const [name, argv] of [["tini", ["tini", "-s", "--"]], ["catatonit", ["catatonit", "--"]]] as const) {
    const absent = Bun.which(name) ? undefined : `${name} is not installed (apt-get install ${name})`;
    if (absent) console.log(`skipping the comparison with ${name}: ${absent}`);
    test.skipIf(absent !== undefined)(`${name} dies of a SIGTRAP sent to it and leaves its child running; run survives it`, async () => {
      const init = new InitUnderTest([...argv, "bash", RECORDER, "TRAP"], false);
      let recorder: Ready | undefined;
      try {
        recorder = await init.ready(false);
        process.kill(init.initPid, "SIGTRAP");
        expect(await init.process.exited).toBe(128 + constants.signals.SIGTRAP);
        expect(init.count("got TRAP")).toBe(0);
        expect(process.kill(recorder.pid, 0)).toBe(true); // the child lives on, orphaned
      } finally {
        init.end(recorder);
        try {
          if (recorder) process.kill(-recorder.pgid, "SIGKILL"); // the orphaned recorder and its reader
        } catch {
          // already gone
        }
      }
    }, 30_000 * SCALE);
  }
});
