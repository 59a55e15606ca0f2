import { describe, expect, test } from "bun:test";
import { scaled } from "../helpers/time.ts";

const unshare = Bun.which("unshare");
if (!unshare) console.warn("unshare(1) is missing: the namespace probe tests are skipped, not passed");
const probeScript = new URL("../fixtures/probe-netlink.ts", import.meta.url).pathname;

function probeUnder(...unshareArgs: string[]): { ok: boolean; reason?: string; retryable?: boolean } {
  const run = Bun.spawnSync([unshare!, ...unshareArgs, process.execPath, probeScript], { timeout: scaled(20_000) });
  const output = run.stdout.toString().trim();
  if (run.exitCode !== 0 || !output) throw new Error(`probe under unshare ${unshareArgs.join(" ")} failed: ${run.stderr}`);
  return JSON.parse(output);
}

describe.skipIf(!unshare)("netlink probe inside namespaces", () => {
  test("without unshare the probe succeeds (control)", () => {
    const run = Bun.spawnSync([process.execPath, probeScript], { timeout: scaled(20_000) });
    expect(JSON.parse(run.stdout.toString())).toEqual({ ok: true });
  }, scaled(30_000));

  test("in a new PID namespace (with its own /proc) it fails, naming the namespace", () => {
    const result = probeUnder("-p", "-f", "--mount-proc");
    expect(result.ok).toBe(false);
    expect(result.reason).toMatch(/^not in the initial pid namespace \(pid:\[\d+\], the initial one is pid:\[4026531836\]\)/);
  }, scaled(30_000));

  test("in a new network namespace it fails with ECONNREFUSED", () => {
    const result = probeUnder("-n");
    expect(result).toEqual({
      ok: false,
      reason: "the proc connector exists only in the initial network namespace (send: ECONNREFUSED)",
      retryable: false,
    });
  }, scaled(30_000));

  test("in a new user namespace (root mapped) it fails, naming the namespace", () => {
    const result = probeUnder("-U", "-r");
    expect(result.ok).toBe(false);
    expect(result.reason).toMatch(/^not in the initial user namespace/);
  }, scaled(30_000));
});
