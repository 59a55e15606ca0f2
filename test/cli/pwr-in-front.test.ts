/**
 * JavaScriptCore keeps working with the native handler in front of its
 * SIGPWR and SIGSEGV handlers (as `run` installs it in Bun): a process that
 * collects garbage on three threads and terminates spinning Workers (JSC's
 * own SIGPWR and SIGSEGV, which must reach JSC and never the relay) gets
 * SIGPWR from outside, several times: each is delivered exactly once, no
 * SIGSEGV is, and the process finishes normally.
 */
import { expect, test } from "bun:test";
import { constants } from "node:os";
import { join } from "node:path";
import { waitUntil } from "../helpers/processes.ts";
import { SCALE } from "./init-harness.ts";

const FIXTURE = join(import.meta.dir, "../fixtures/pwr-in-front.ts");
const SENT = 5;

test("Bun: outside SIGPWRs are each delivered once while JSC suspends and traps threads; no SIGSEGV is delivered; the process finishes", async () => {
  const child = Bun.spawn([process.execPath, FIXTURE], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000 * SCALE);
  try {
    const lines: string[] = [];
    void (async () => {
      let partial = "";
      for await (const chunk of child.stdout) {
        const complete = (partial + new TextDecoder().decode(chunk)).split("\n");
        partial = complete.pop()!;
        lines.push(...complete);
      }
    })();
    const count = (line: string) => lines.filter((seen) => seen === line).length;
    const terminations = () => lines.filter((line) => line.startsWith("terminated ")).length;
    expect(await waitUntil(() => lines.includes("ready"), 20_000)).toBe(true);
    for (let sent = 1; sent <= SENT; sent++) {
      const before = terminations();
      // Two Worker terminations (JSC's own SIGPWR and SIGSEGV) between two of ours.
      expect(await waitUntil(() => terminations() >= before + 2, 20_000)).toBe(true);
      child.kill("SIGPWR");
      expect({ sent, delivered: await waitUntil(() => count(`got ${constants.signals.SIGPWR}`) === sent, 10_000) }).toEqual({ sent, delivered: true });
    }
    child.stdin.write("stop\n");
    await child.stdin.flush();
    expect(await child.exited).toBe(0);
    expect(lines).toContain("done");
    expect(lines.filter((line) => line.startsWith("got "))).toEqual(new Array(SENT).fill(`got ${constants.signals.SIGPWR}`));
  } finally {
    clearTimeout(timer);
    child.kill("SIGKILL");
  }
}, 120_000 * SCALE);
