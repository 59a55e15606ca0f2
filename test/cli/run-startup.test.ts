/**
 * No start-up window: a signal that comes while `run` starts is held and
 * delivered once the command runs. Before the runtime runs our first line
 * nothing can listen: then the documented outcome is, as a subreaper, the
 * init dies of the signal before any child exists (143, nothing left
 * running) and, as PID 1, the kernel drops it (PID 1 gets only signals it
 * has a handler for). Never a dead init with a live child.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { constants } from "node:os";
import { SignalRelay } from "../../src/cli/signals.ts";
import { unshareUnavailable } from "../helpers/cli.ts";
import { waitUntil } from "../helpers/processes.ts";
import { InitUnderTest, ourInit, RECORDER, SCALE } from "./init-harness.ts";

test("the relay holds a signal until it has a target, then delivers it once", async () => {
  const relay = new SignalRelay(["SIGUSR2"]);
  try {
    process.kill(process.pid, "SIGUSR2");
    expect(await waitUntil(() => relay.heldSignals.length === 1, 2_000)).toBe(true);
    const delivered: number[] = [];
    relay.deliverTo((signal) => delivered.push(signal));
    expect(delivered).toEqual([constants.signals.SIGUSR2]);
    process.kill(process.pid, "SIGUSR2");
    expect(await waitUntil(() => delivered.length === 2, 2_000)).toBe(true);
    expect(relay.heldSignals).toEqual([]);
  } finally {
    relay.stop();
  }
});

/** PIDs of live processes whose environment carries `marker`. */
function processesMarked(marker: string): number[] {
  const marked: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      if (readFileSync(`/proc/${entry}/environ`, "utf8").includes(marker)) marked.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return marked;
}

type Outcome =
  | "held, delivered, trapped"
  | "held, delivered before the command's trap: it died of it (143)"
  | "run died of it before it listened (143)"
  | "dropped before run listened (PID 1)";

async function termDuringStart(delayMs: number, pid1: boolean): Promise<Outcome> {
  const marker = `ORPHAN_REAPER_STARTUP_MARK=${process.pid}-${delayMs}-${pid1}-${Math.random()}`;
  const [key, value] = marker.split("=") as [string, string];
  const init = new InitUnderTest([...ourInit(["-v"]), "bash", RECORDER, "TERM"], pid1, { [key]: value });
  try {
    await Bun.sleep(delayMs * SCALE);
    // As PID 1 the init is unshare's child: signal it, not unshare.
    const target = pid1 ? await waitForInitUnder(init.process.pid) : init.process.pid;
    if (target) process.kill(target, "SIGTERM");
    const settled = await waitUntil(
      () => init.exitStatus !== undefined || init.lines.includes("got TERM") || init.lines.some((line) => line.startsWith("ready ")),
      10_000,
    );
    expect(settled).toBe(true);
    let outcome: Outcome;
    if (init.exitStatus !== undefined || !(await init.waitForLine("got TERM"))) {
      if (init.exitStatus === undefined) {
        // ready, and the TERM never came: only allowed as PID 1, where the kernel drops it
        expect(pid1).toBe(true);
        expect(await finishWithLog(init, 5)).toBe(5);
        outcome = "dropped before run listened (PID 1)";
      } else {
        expect(await init.process.exited).toBe(143);
        const childRan = (await init.stderr()).includes('"child exited"');
        outcome = childRan ? "held, delivered before the command's trap: it died of it (143)" : "run died of it before it listened (143)";
      }
    } else {
      expect(await finishWithLog(init, 5)).toBe(5);
      outcome = "held, delivered, trapped";
    }
    // Never a dead init with a live child.
    expect(await waitUntil(() => processesMarked(marker).length === 0, 5_000)).toBe(true);
    return outcome;
  } finally {
    init.end();
    for (const pid of processesMarked(marker)) process.kill(pid, "SIGKILL");
  }
}

/** The init's exit code after `exit code`; when it is another, what the command printed and run logged, to tell what happened. */
async function finishWithLog(init: InitUnderTest, code: number): Promise<number> {
  const exited = await init.finish(code);
  if (exited !== code) console.log(`exited ${exited}, not ${code}; the command printed ${JSON.stringify(init.lines)}; run logged:\n${await init.stderr()}`);
  return exited;
}

async function waitForInitUnder(unsharePid: number): Promise<number | undefined> {
  let child: number | undefined;
  await waitUntil(() => {
    const text = readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, "utf8").trim();
    child = text ? Number(text.split(" ")[0]) : undefined;
    return child !== undefined;
  }, 5_000);
  return child;
}

const DELAYS_MS = [0, 20, 50, 100, 200, 400];

for (const pid1 of [false, true]) {
  const skip = pid1 ? unshareUnavailable(["-p", "-f", "--mount-proc"]) : undefined;
  if (skip) console.log(`skipping the PID 1 start-up test: ${skip}`);
  test.skipIf(skip !== undefined)(`a SIGTERM during start-up ${pid1 ? "as PID 1" : "as a subreaper"}: held and delivered, or the documented outcome`, async () => {
    const outcomes: Record<number, Outcome> = {};
    for (const delayMs of DELAYS_MS) outcomes[delayMs] = await termDuringStart(delayMs, pid1);
    console.log(`SIGTERM n ms after start, ${pid1 ? "PID 1" : "subreaper"}:`, outcomes);
  }, 120_000 * SCALE);
}
