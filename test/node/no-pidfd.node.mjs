/**
 * Where pidfd_open fails (ENOSYS before Linux 5.3; EPERM under a seccomp
 * profile that does not know it, as Docker's default before 20.10), the Node
 * daemon (test/node/fixtures/daemon.mjs) still reaps on SIGCHLD (libuv shares
 * it among its watchers), pinning each zombie by its stat: every orphan
 * reaped, every child_process exit code kept. The filter is a real seccomp
 * one, put on by test/fixtures/without-pidfd.ts, which runs under Bun.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { runNodeFixture, scaled } from "./helpers.mjs";

const DAEMON = new URL("./fixtures/daemon.mjs", import.meta.url).pathname;
const WITHOUT_PIDFD = new URL("../fixtures/without-pidfd.ts", import.meta.url).pathname;
/** scripts/test-node.mjs names the devDependency's bun. */
const BUN = process.env.ORPHAN_REAPER_TEST_BUN ?? "bun";
const ORPHANS = 50;

function whyNoFilter() {
  if (!["x64", "arm64"].includes(process.arch)) return `no seccomp syscall number for ${process.arch} in the fixture`;
  const probe = spawnSync(BUN, [WITHOUT_PIDFD, "EPERM", "--", "true"], { encoding: "utf8", timeout: scaled(30_000), killSignal: "SIGKILL" });
  if (probe.error) return `${BUN} cannot run: ${probe.error.message}`;
  if (probe.status !== 0) return `the seccomp filter cannot be put on here: ${probe.stderr.trim()}`;
  return undefined;
}
const noFilter = whyNoFilter();

for (const errno of ["EPERM", "ENOSYS"]) {
  test(`pidfd_open failing with ${errno}: sigchld reaps every orphan, pinning by stat; every exit code kept`, { skip: noFilter, timeout: scaled(180_000) }, () => {
    const config = { timeoutMs: scaled(30_000), settleMs: scaled(200), orphans: ORPHANS, rounds: 1, options: { source: "sigchld" } };
    const result = runNodeFixture(DAEMON, [JSON.stringify(config)], { prefix: [BUN, WITHOUT_PIDFD, errno, "--"] });
    assert.equal(result.source, "sigchld");
    assert.match(result.runtimePidfds.reason, new RegExp(`pidfd_open failed: ${errno}`));
    assert.deepEqual(result.wrongExitCodes, []);
    assert.ok(result.exitCodesChecked >= 7, `every API checked (${result.exitCodesChecked} exit codes)`);
    assert.equal(result.reaped, ORPHANS);
    assert.equal(result.zombiesLeft, 0);
  });
}
