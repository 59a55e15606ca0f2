/**
 * Where pidfd_open fails (ENOSYS before Linux 5.3; EPERM under a seccomp
 * profile that does not know it, as Docker's default before 20.10), Bun
 * watches its children from a thread whose SIGCHLD handler a listener
 * replaces: a reaper that listened to SIGCHLD would leave every later
 * Bun.spawn and child_process child without its exit. There the reaper adds
 * no listener, says why, and reaps on the sweep, pinning zombies by their
 * stat. Real seccomp filters (test/fixtures/without-pidfd.ts), real children
 * and real orphans.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { logLines, runCli } from "./helpers/cli.ts";
import { killTree } from "./helpers/processes.ts";
import { scaled, sleep } from "./helpers/time.ts";
import { seccompUnavailable, withoutPidfd } from "./helpers/without-pidfd.ts";

const REAPER_RUN = join(import.meta.dir, "fixtures/reaper-run.ts");
/** Long enough for reaper-run's 100 orphans and 70 runtime children on a slow machine; on the bug, its children never report. */
const FIXTURE_DEADLINE_MS = 60_000;

if (seccompUnavailable) console.warn(`skipping the tests without pidfds: ${seccompUnavailable}`);

/** reaper-run's JSON line, run in a process whose pidfd_open fails with `errno`; throws if it does not end in time. */
async function reaperRunWithoutPidfd(errno: "EPERM" | "ENOSYS", options: object): Promise<Record<string, any>> {
  const child = Bun.spawn([...withoutPidfd(errno), process.execPath, REAPER_RUN, JSON.stringify(options)], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr] = [new Response(child.stdout).text(), new Response(child.stderr).text()];
  try {
    const ended = await Promise.race([child.exited, sleep(scaled(FIXTURE_DEADLINE_MS)).then(() => "deadline" as const)]);
    if (ended !== 0) throw new Error(`reaper-run without pidfds ended with ${ended}`);
    return JSON.parse((await stdout).trim().split("\n").at(-1)!);
  } catch (error) {
    killTree(child);
    throw new Error(`${(error as Error).message}; its stderr: ${await stderr}`);
  }
}

for (const errno of ["EPERM", "ENOSYS"] as const) {
  test.skipIf(!!seccompUnavailable)(
    `pidfd_open failing with ${errno}: no SIGCHLD listener, Bun.spawn and child_process children keep their exits, the sweep reaps every orphan`,
    async () => {
      const result = await reaperRunWithoutPidfd(errno, { sweepIntervalMs: 200 });
      expect(result).toMatchObject({ source: "sweep", reaped: 100, zombiesLeft: 0, exitCodesTrue: true });
      for (const source of ["netlink", "sigchld"]) {
        expect(result.notChosen[source]).toContain(`pidfd_open failed: ${errno}`);
        expect(result.notChosen[source]).toContain("oven-sh/bun#42933");
      }
    },
    scaled(FIXTURE_DEADLINE_MS + 10_000),
  );
}

test.skipIf(!!seccompUnavailable)(
  "run without pidfds: the sweep alone and real-time signals ignored, each with why; the child's exit code; no zombie taken for a running descendant",
  async () => {
    // Orphans that end at once: zombies, or live descendants for a moment on a slow machine.
    const command = "for i in 1 2 3; do (sh -c 'exit 0' &); done; sleep 0.2; exit 7";
    const run = await runCli(["run", "--log-level", "info", "--grace-ms", "1000", "--", "sh", "-c", command], withoutPidfd("EPERM"));
    const lines = logLines(run.stderr);
    const messages = lines.map((line) => String(line.msg));
    expect(run.exitCode).toBe(7);
    const started = lines.find((line) => String(line.msg).startsWith("orphan reaper started"));
    expect(started).toMatchObject({ source: "sweep" });
    expect(String((started?.notChosen as Record<string, string>).sigchld)).toContain("oven-sh/bun#42933");
    expect(messages.find((msg) => msg.startsWith("real-time signals"))).toContain("no SIGCHLD listener may wake their relay");
    expect(messages).not.toContain("descendants still running after the grace period: sending SIGKILL");
  },
  scaled(30_000),
);
