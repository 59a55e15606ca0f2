/**
 * The native handler in front of the runtime's (native-signals.ts, the
 * chain `run` uses for the fault signals): a SIGSEGV another process sends
 * is recorded and survived; a real fault afterwards still reaches Bun's
 * crash handler, with its address, and ends the process by SIGSEGV (not a
 * hang on the faulting instruction).
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { waitUntil } from "../helpers/processes.ts";
import { SCALE } from "./init-harness.ts";

const FIXTURE = join(import.meta.dir, "../fixtures/fault-in-front.ts");

test("a SIGSEGV kill sent is forwarded; a real fault still ends the process by SIGSEGV through Bun's crash handler", async () => {
  const child = Bun.spawn([process.execPath, FIXTURE], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000 * SCALE);
  try {
    const lines: string[] = [];
    const reading = (async () => {
      for await (const chunk of child.stdout) lines.push(...new TextDecoder().decode(chunk).split("\n").filter(Boolean));
    })();
    expect(await waitUntil(() => lines.includes("ready"), 10_000)).toBe(true);
    child.kill("SIGSEGV");
    await child.exited;
    await reading;
    expect(lines).toEqual(["ready", "got 11"]);
    expect(child.signalCode).toBe("SIGSEGV");
    expect(await new Response(child.stderr).text()).toContain("Segmentation fault at address 0x8");
  } finally {
    clearTimeout(timer);
    child.kill("SIGKILL");
  }
}, 30_000 * SCALE);
