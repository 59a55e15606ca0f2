/**
 * `orphan-reaper run` under Node (dist/, the package's bin), as PID 1 of a
 * new PID namespace and as a child subreaper: every catchable signal 1-31
 * and three real-time ones reach the child exactly once and the init
 * survives each; the command starts with default dispositions; a SIGTERM
 * 20 ms (scaled) after start has a documented outcome, never a dead init
 * with a live child; under a W^X policy the real-time signals are ignored
 * and the verbose line says why.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { constants } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test } from "node:test";
import { catchNatively } from "../../dist/cli/native-signals.js";
import { SignalRelay } from "../../dist/cli/signals.js";
import { loadLibc } from "../../dist/runtime/index.js";
import { whyNoPidfdExitStatus } from "../helpers/pidfd-exit.mjs";
import { scaled, unshareMissing } from "./helpers.mjs";
import { firstChildOf, isLive, NodeInit, RECORDER, waitUntil } from "./init-harness.mjs";

/** 1-31 without KILL and STOP (uncatchable), CHLD (the init's own), PIPE, TTIN and TTOU (ignored); the fault signals are caught natively in front of the runtime's handler. */
const FORWARDED = [
  "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "USR1", "SEGV", "USR2", "ALRM", "TERM", "STKFLT", "CONT",
  "TSTP", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];
/** Ignored (SIG_IGN): TTIN and TTOU as tini does; PIPE, which the kernel sends for a log line written to a pipe nobody reads. */
const IGNORED = ["PIPE", "TTIN", "TTOU"];
const REALTIME = ["RTMIN", "RTMIN+1", "RTMAX"];
const libc = loadLibc();
/** Where the kernel keeps no wait status on a pidfd, run has only child_process's word for a real-time signal's end. */
const noPidfdExitStatus = await whyNoPidfdExitStatus(libc);
const { min: SIGRTMIN, max: SIGRTMAX } = libc.realtimeSignalRange();

function signalNumber(name) {
  if (name === "RTMAX") return SIGRTMAX;
  if (name.startsWith("RTMIN")) return SIGRTMIN + Number(name.slice(5) || 0);
  return constants.signals[`SIG${name}`];
}

test("real-time signals caught natively reach the relay once each, in the order sent (koffi seam)", { timeout: scaled(30_000) }, async () => {
  const [first, second] = [SIGRTMIN + 2, SIGRTMIN + 3];
  const relay = new SignalRelay([]);
  try {
    relay.addNative(catchNatively(libc, [first, second]));
    for (const signal of [first, first, second, first]) process.kill(process.pid, signal);
    assert.equal(await waitUntil(() => relay.heldSignals.length >= 4, 5_000), true);
    const delivered = [];
    relay.deliverTo((signal) => delivered.push(signal));
    await sleep(scaled(100)); // a duplicate would show up by now
    assert.deepEqual(delivered, [first, first, second, first]);
  } finally {
    relay.stop();
    // Not SIG_IGN: every run this file starts would keep them ignored for its command (as nohup does).
    for (const signal of [first, second]) libc.setSignalDisposition(signal, "default");
  }
});

test("in front of Node's SIGSEGV handler: a SIGSEGV kill sent is forwarded; a real fault still ends the process by SIGSEGV", { timeout: scaled(60_000) }, async () => {
  const child = spawn(process.execPath, [join(import.meta.dirname, "fixtures/fault-in-front.mjs")], { stdio: ["ignore", "pipe", "pipe"] });
  const timer = setTimeout(() => child.kill("SIGKILL"), scaled(20_000));
  try {
    const lines = [];
    child.stdout.on("data", (chunk) => lines.push(...chunk.toString().split("\n").filter(Boolean)));
    const exited = new Promise((resolve) => child.on("close", (code, signal) => resolve({ code, signal })));
    assert.equal(await waitUntil(() => lines.includes("ready"), 10_000), true);
    child.kill("SIGSEGV");
    assert.deepEqual(await exited, { code: null, signal: "SIGSEGV" });
    assert.deepEqual(lines, ["ready", "got 11"]);
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
});

const pid1Missing = unshareMissing();
if (pid1Missing) console.log(`# skipping the PID 1 run tests: ${pid1Missing}`);

for (const pid1 of [false, true]) {
  describe(`run under Node ${pid1 ? "as PID 1 of a new PID namespace" : "as a child subreaper"}`, { skip: pid1 && pid1Missing }, () => {
    for (const flags of [[], ["-g"]]) {
      test(`every forwarded signal reaches the child exactly once, and run survives each ${flags.join(" ") || "(no -g)"}`, { timeout: scaled(120_000) }, async () => {
        const init = new NodeInit({ flags, command: ["bash", RECORDER, ...FORWARDED, ...REALTIME], pid1 });
        try {
          const recorder = await init.ready();
          assert.equal(recorder.pgid, recorder.pid);
          for (const name of [...FORWARDED, ...REALTIME]) {
            process.kill(init.initPid, signalNumber(name));
            assert.deepEqual({ name, arrived: await init.waitForLine(`got ${name}`) }, { name, arrived: true });
            assert.deepEqual({ name, initAlive: isLive(init.initPid) }, { name, initAlive: true });
          }
          process.kill(init.initPid, "SIGUSR1"); // a marker: signals from one sender arrive in order
          await init.waitForLine("got USR1");
          await sleep(scaled(200)); // let a duplicate show up, if any
          const all = [...FORWARDED, ...REALTIME];
          const counts = Object.fromEntries(all.map((name) => [name, init.count(`got ${name}`)]));
          assert.deepEqual(counts, { ...Object.fromEntries(all.map((name) => [name, 1])), USR1: 2 });
          assert.equal(await init.finish(7), 7);
        } finally {
          init.end();
        }
      });
    }

    test("the command starts with every signal at its default action and none blocked", { timeout: scaled(60_000) }, async () => {
      const init = new NodeInit({ command: ["cat", "/proc/self/status"], pid1 });
      try {
        assert.equal(await init.exitedWithin(), 0);
        const masks = Object.fromEntries(init.lines.filter((line) => /^Sig(Blk|Ign|Cgt):/.test(line)).map((line) => line.split(":\t")));
        assert.deepEqual(masks, { SigBlk: "0000000000000000", SigIgn: "0000000000000000", SigCgt: "0000000000000000" });
      } finally {
        init.end();
      }
    });

    test("SIGPIPE, SIGTTIN and SIGTTOU are ignored: not forwarded, and run is neither stopped nor ended by them", { timeout: scaled(60_000) }, async () => {
      const init = new NodeInit({ command: ["bash", RECORDER, ...IGNORED, "USR1"], pid1 });
      try {
        await init.ready();
        for (const name of IGNORED) process.kill(init.initPid, signalNumber(name));
        process.kill(init.initPid, "SIGUSR1"); // a marker: signals from one sender arrive in order
        assert.equal(await init.waitForLine("got USR1"), true);
        await sleep(scaled(200)); // let a late one show up, if any
        assert.deepEqual(IGNORED.map((name) => init.count(`got ${name}`)), [0, 0, 0]);
        assert.equal(isLive(init.initPid), true);
        assert.equal(await init.finish(7), 7);
      } finally {
        init.end();
      }
    });

    test("a child killed by a real-time signal: run exits 128 + N (child_process reports it as exit 0)", { timeout: scaled(60_000), skip: noPidfdExitStatus }, async () => {
      const signal = SIGRTMIN + 2;
      const init = new NodeInit({ command: ["bash", RECORDER], pid1 });
      try {
        await init.ready();
        process.kill(init.initPid, signal); // forwarded; the recorder does not trap it: its default action ends it
        assert.equal(await init.exitedWithin(), 128 + signal);
      } finally {
        init.end();
      }
    });

    test("a SIGTERM 20 ms (scaled) after start: held and delivered, or the documented outcome; never a dead init with a live child", { timeout: scaled(90_000) }, async () => {
      const marker = `ORPHAN_REAPER_STARTUP_MARK=${process.pid}-${pid1}-${Math.random()}`;
      const [key, value] = marker.split("=");
      const init = new NodeInit({ flags: ["-v"], command: ["bash", RECORDER, "TERM"], pid1, env: { [key]: value } });
      try {
        await sleep(scaled(20));
        let target = init.process.pid;
        if (pid1) {
          assert.equal(await waitUntil(() => firstChildOf(init.process.pid) !== undefined, 5_000), true);
          target = firstChildOf(init.process.pid);
        }
        process.kill(target, "SIGTERM");
        const settled = () => init.exitStatus !== undefined || init.lines.includes("got TERM") || init.lines.some((line) => line.startsWith("ready "));
        assert.equal(await waitUntil(settled, 20_000), true);
        let outcome;
        if (init.exitStatus === undefined && (await init.waitForLine("got TERM"))) {
          assert.equal(await init.finish(5), 5);
          outcome = "held, delivered, trapped";
        } else if (init.exitStatus === undefined) {
          assert.equal(pid1, true, "only as PID 1 may the TERM vanish (the kernel drops it before run listens)");
          assert.equal(await init.finish(5), 5);
          outcome = "dropped before run listened (PID 1)";
        } else {
          assert.equal(await init.exitedWithin(), 143);
          outcome = init.stderr.includes('"child exited"') ? "held, delivered before the command's trap: it died of it (143)" : "run died of it before it listened (143)";
        }
        assert.equal(await waitUntil(() => processesMarked(marker).length === 0, 5_000), true, "a process of the init's outlived it");
        console.log(`# SIGTERM 20 ms after start, Node, ${pid1 ? "PID 1" : "subreaper"}: ${outcome}`);
      } finally {
        init.end();
        for (const pid of processesMarked(marker)) process.kill(pid, "SIGKILL");
      }
    });
  });
}

/** PIDs of live processes whose environment carries `marker`. */
function processesMarked(marker) {
  return readdirSync("/proc").filter((entry) => /^\d+$/.test(entry)).map(Number).filter((pid) => {
    try {
      return isLive(pid) && readFileSync(`/proc/${pid}/environ`, "utf8").includes(marker);
    } catch {
      return false; // gone meanwhile
    }
  });
}

// <linux/prctl.h>: memory-deny-write-execute, per process and inherited (Linux 6.3+).
const PR_SET_MDWE = 65;
const PR_MDWE_REFUSE_EXEC_GAIN = 1;
const MDWE_WRAPPER = `import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(${PR_SET_MDWE}, ${PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_MDWE): " + os.strerror(ctypes.get_errno()))
os.execvp(sys.argv[1], sys.argv[1:])`;

function mdweMissing() {
  const probe = spawnSync("python3", ["-c", MDWE_WRAPPER, "true"], { encoding: "utf8" });
  if (probe.error) return `python3 cannot run: ${probe.error.message}`;
  return probe.status === 0 ? undefined : `no W^X policy to try here: ${probe.stderr.trim()}`;
}

const wxMissing = mdweMissing();
if (wxMissing) console.log(`# skipping the W^X test: ${wxMissing}`);

// Under PR_SET_MDWE, V8 needs --jitless (its JIT wants executable memory it
// wrote), and Bun does not start bun:ffi at all ("bun:ffi requires the JIT").
test("under a W^X policy (PR_SET_MDWE) run ignores the real-time signals, says why on the verbose line, and survives one", { skip: wxMissing, timeout: scaled(60_000) }, async () => {
  const init = new NodeInit({ flags: ["-v"], command: ["bash", RECORDER, "USR1"], prefix: ["python3", "-c", MDWE_WRAPPER], nodeArgs: ["--jitless"] });
  try {
    await init.ready();
    const line = init.stderr.split("\n").filter((text) => text.startsWith("{")).map((text) => JSON.parse(text)).find((entry) => entry.ignored);
    assert.match(line?.msg ?? "", /real-time signals .* are ignored, not forwarded; nor are the fault signals .*: mprotect failed: EACCES/);
    assert.deepEqual(line.ignored, Array.from({ length: SIGRTMAX - SIGRTMIN + 1 }, (_, i) => SIGRTMIN + i));
    assert.deepEqual(line.notForwarded, ["SEGV", "BUS", "FPE", "ILL"].map((name) => constants.signals[`SIG${name}`]));
    process.kill(init.initPid, SIGRTMIN);
    process.kill(init.initPid, "SIGUSR1"); // after the RT one: once it arrives, the RT one has been dealt with
    assert.equal(await init.waitForLine("got USR1"), true);
    assert.equal(isLive(init.initPid), true);
    assert.equal(await init.finish(3), 3);
  } finally {
    init.end();
  }
});
