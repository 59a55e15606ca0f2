/**
 * Orphans that are orphans whatever the machine's speed: each waits on a pipe
 * whose only writer is the test, so it cannot exit before the shell that
 * forked it has gone (no fixed sleep). release() closes the pipe: each then
 * exits with `exitCode`. A background list reads /dev/null unless redirected,
 * hence the shell's stdin is kept on fd 3 for them.
 */
export interface GatedOrphans {
  readonly pids: readonly number[];
  release(): void;
  /** For finally blocks: SIGKILL whichever still runs. */
  kill(): void;
}

/** Deadlines in tests scale with ORPHAN_REAPER_TEST_SCALE (a multiplier, default 1). */
export const TEST_SCALE = Number(process.env.ORPHAN_REAPER_TEST_SCALE ?? "1") || 1;

export async function makeGatedOrphans(count: number, exitCode: number): Promise<GatedOrphans> {
  const orphan = `( while read -r _; do :; done; exit ${exitCode} ) <&3 >/dev/null 2>&1 &`;
  const script = `exec 3<&0; i=0; while [ $i -lt ${count} ]; do ${orphan} echo $!; i=$((i+1)); done`;
  const shell = Bun.spawn(["sh", "-c", script], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  const pids = (await new Response(shell.stdout).text()).trim().split("\n").filter(Boolean).map(Number);
  await shell.exited;
  return {
    pids,
    release: () => void shell.stdin.end(),
    kill: () => {
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
    },
  };
}
