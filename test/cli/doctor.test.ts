import { describe, expect, test } from "bun:test";
import { existsSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import type { DoctorReport } from "../../src/cli/doctor.ts";
import { judgeNetNamespace, judgePidNamespace, parseKernelVersion } from "../../src/cli/host.ts";
import { PID1_PREFIX, runCli, unshareUnavailable } from "../helpers/cli.ts";
import { scaled } from "../helpers/time.ts";

const INITIAL_PID_NS = "pid:[4026531836]";
/** The netlink source lands from another branch; until then the doctor must say it is not built in. */
const NETLINK_BUILT = existsSync(join(import.meta.dir, "../../src/sources/netlink.ts"));

async function doctorJson(prefix: readonly string[] = []): Promise<{ exitCode: number; report: DoctorReport }> {
  const { exitCode, stdout, stderr } = await runCli(["doctor", "--json"], prefix);
  if (!stdout.startsWith("{")) throw new Error(`doctor printed no JSON (exit ${exitCode}): ${stderr}`);
  return { exitCode, report: JSON.parse(stdout) };
}

function skipWhy(flags: string[]): string | undefined {
  const why = unshareUnavailable(flags);
  if (why) console.log(`skipping the unshare ${flags.join(" ")} doctor test: ${why}`);
  return why;
}

describe("host facts", () => {
  test("kernel versions and namespace inodes are judged", () => {
    expect(parseKernelVersion("6.18.44-fc-v857")).toEqual([6, 18]);
    expect(parseKernelVersion("garbage")).toBeUndefined();
    const facts = { kernelRelease: "6.1.0", ownPidInode: 0xeffffffc, pid1NetInode: 4026531840 };
    expect(judgeNetNamespace({ ...facts, ownNetInode: 0xeffffff9 }).initial).toBe(true);
    expect(judgeNetNamespace({ ...facts, ownNetInode: 4026531840 }).initial).toBe(true);
    expect(judgeNetNamespace({ ...facts, ownNetInode: 4026532177 }).initial).toBe(false);
    expect(judgeNetNamespace({ ...facts, ownNetInode: 4026532177, ownPidInode: 4026532246 }).initial).toBeUndefined();
    expect(judgeNetNamespace({ ...facts, kernelRelease: "6.18.1", ownNetInode: 4026531840 }).initial).toBe(false);
    expect(judgePidNamespace(4026532246, [1]).initial).toBe(false);
    expect(judgePidNamespace(0xeffffffc, [812]).initial).toBe(true);
    expect(judgePidNamespace(0xeffffffc, [812, 1]).initial).toBe(false);
  });
});

describe("orphan-reaper doctor --json", () => {
  test("on this machine: an event-driven source, and the namespaces as /proc shows them", async () => {
    const { exitCode, report } = await doctorJson();
    expect(exitCode).toBe(0);
    expect(["netlink", "sigchld"]).toContain(report.source);
    expect(report.eventDriven).toBe(true);
    expect(report.pid1).toBe(false);
    expect(report.pidNamespace.initial).toBe(readlinkSync("/proc/self/ns/pid") === INITIAL_PID_NS);
    expect(report.runtimePidfds.holds).toBe(true);
    expect(report.alongside.sweep).toContain("safety net");
    expect(report.notChosen.sweep).toBeUndefined();
    const hostNamespaces = report.pidNamespace.initial && report.networkNamespace.initial;
    if (!NETLINK_BUILT) expect(report.procConnector.reason).toContain("no proc connector source");
    else if (hostNamespaces && report.source !== "netlink") {
      // On a busy machine the probe child may outlast netlinkProbeTimeoutMs: sigchld serves first, and netlink is probed again.
      expect(report.source).toBe("sigchld");
      expect(report.notChosen.netlink).toContain("netlinkProbeTimeoutMs");
      expect(report.retry?.source).toBe("netlink");
    }
  }, scaled(60_000));

  test.skipIf(Boolean(skipWhy(["-p", "-f", "--mount-proc"])))(
    "inside unshare -p -f --mount-proc: PID 1 of a nested PID namespace, sigchld serves",
    async () => {
      const { exitCode, report } = await doctorJson(PID1_PREFIX);
      expect(exitCode).toBe(0);
      expect(report.pid1).toBe(true);
      expect(report.pidNamespace.initial).toBe(false);
      expect(report.source).toBe("sigchld");
      expect(report.procConnector.works).toBe(false);
      if (NETLINK_BUILT) expect(report.notChosen.netlink).toMatch(/PID namespace/i);
    },
    scaled(60_000),
  );

  test.skipIf(Boolean(skipWhy(["-n"])))("inside unshare -n: not the initial network namespace, sigchld serves", async () => {
    const { exitCode, report } = await doctorJson(["unshare", "-n"]);
    expect(exitCode).toBe(0);
    expect(report.networkNamespace.initial).toBe(false);
    expect(report.source).toBe("sigchld");
    expect(report.procConnector.works).toBe(false);
    if (NETLINK_BUILT) expect(report.notChosen.netlink).toMatch(/ECONNREFUSED|network namespace/i);
  }, scaled(60_000));

  test("the human table names the source and the verdict", async () => {
    const { exitCode, stdout } = await runCli(["doctor"]);
    expect(exitCode).toBe(0);
    expect(stdout).toMatch(/^source\s+(netlink|sigchld)/m);
    expect(stdout).toContain("orphans are reaped as they exit");
    // Sources that run beside the chosen one are listed as such, never as "not" chosen.
    expect(stdout).toMatch(/^\s+also sweep\s+runs underneath as the safety net/m);
    expect(stdout).not.toMatch(/^\s+not (sweep|\S+\s+runs beside)/m);
  }, scaled(60_000));
});
