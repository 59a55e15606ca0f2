/**
 * The netlink source on the real kernel for tests: a recording core
 * (test/helpers/fake-core.ts) with a subscribed source, and the netlink
 * sockets this process holds.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { loadLibc } from "../../src/libc.ts";
import { probeNetlinkSource, type NetlinkSourceOptions } from "../../src/sources/netlink.ts";
import type { EventSource } from "../../src/sources/source.ts";
import { recordingCore, type RecordingCore } from "../helpers/fake-core.ts";
import { scaled } from "../helpers/time.ts";

export { recordingCore, type RecordingCore } from "../helpers/fake-core.ts";
export { isZombie } from "../helpers/processes.ts";
export { waitUntil as until } from "../helpers/time.ts";

/** Long enough for the probe's ack and self-test event on a busy machine: these tests are about the source, not the probe's speed. */
export const PROBE_TIMEOUT_MS = scaled(5_000);
/** For a beforeAll that runs a probe: more than the probe may take. */
export const PROBE_HOOK_TIMEOUT_MS = scaled(20_000);

/** A recording core with a subscribed netlink source, for a test file's beforeAll (we become a subreaper). */
export async function startRecordingSource(options?: NetlinkSourceOptions): Promise<{ core: RecordingCore; source: EventSource }> {
  loadLibc().setChildSubreaper(true);
  const core = recordingCore();
  const probe = await probeNetlinkSource(core, { selfTestTimeoutMs: PROBE_TIMEOUT_MS, ...options });
  if (!probe.ok) throw new Error(`netlink probe failed: ${probe.reason}`);
  return { core, source: probe.source };
}

export function netlinkSocketFds(): Map<string, string> {
  // /proc/net/netlink lists every netlink socket of the namespace; column 10 is the inode.
  const netlinkInodes = new Set(
    readFileSync("/proc/self/net/netlink", "utf8")
      .trim()
      .split("\n")
      .slice(1)
      .map((line) => line.trim().split(/\s+/)[9]),
  );
  const held = new Map<string, string>();
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1];
      if (inode && netlinkInodes.has(inode)) held.set(fd, inode);
    } catch {
      // closed while we listed
    }
  }
  return held;
}
