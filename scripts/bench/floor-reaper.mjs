/**
 * The floor under a reaper woken by SIGCHLD that finds its zombies by
 * peeking (our sigchld source), for the per-exit rows: in the runtime's own
 * SIGCHLD listener, a waitid(P_ALL, WNOWAIT) peek names a zombie and
 * waitid(P_PID) reaps it, until none is left. Nothing else: no provenance,
 * no timer, no report. Not a floor for a reaper told each exit's PID (the
 * proc connector): that one skips the peeks, and the last, empty one walks
 * every child. It is safe only here, where the
 * daemon has one child of its own (the workload), known by PID and left to
 * the runtime: reaping it would kill Bun (ECHILD) or hang Node.
 */

/** `libc` and `wait` (P_ALL, P_PID, WEXITED, WNOHANG, WNOWAIT, __WNOTHREAD) from the runtime seam and src/libc. */
export function startFloorReaper(libc, wait) {
  const peek = wait.WEXITED | wait.WNOHANG | wait.WNOWAIT | wait.__WNOTHREAD;
  const reap = wait.WEXITED | wait.WNOHANG | wait.__WNOTHREAD;
  let runtimeChild = 0;
  let reaped = 0;
  const onChildSignal = () => {
    for (;;) {
      let pid;
      try {
        pid = libc.waitid(wait.P_ALL, 0, peek).pid;
      } catch {
        return; // ECHILD: no child at all
      }
      if (pid === 0 || pid === runtimeChild) return;
      libc.waitid(wait.P_PID, pid, reap);
      reaped += 1;
    }
  };
  libc.setChildSubreaper(true);
  process.on("SIGCHLD", onChildSignal);
  return {
    source: "floor",
    leave: (pid) => void (runtimeChild = pid),
    stats: () => ({ reaped, reapedBySource: {} }),
    stop: async () => void process.off("SIGCHLD", onChildSignal),
  };
}
