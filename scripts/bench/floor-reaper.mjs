/**
 * The floors under our two ways of reaping, for the per-exit rows: what the
 * cheapest reaper of each kind costs on a runtime, with no provenance, no
 * timer and no report. They are safe only here, where the daemon has one
 * child of its own (the workload), known by PID and left to the runtime:
 * reaping it would kill Bun (ECHILD) or hang Node.
 */

/**
 * Under a reaper woken by SIGCHLD that finds its zombies by peeking (our
 * sigchld source): in the runtime's own SIGCHLD listener, a waitid(P_ALL,
 * WNOWAIT) peek names a zombie and waitid(P_PID) reaps it, until none is left
 * (the last, empty peek walks every child).
 * `libc` and `wait` (P_ALL, P_PID, WEXITED, WNOHANG, WNOWAIT, __WNOTHREAD) from the runtime seam and src/libc.
 */
export function startFloorReaper(libc, wait) {
  const reapByPeeking = peekingReaper(libc, wait);
  let runtimeChild = 0;
  let reaped = 0;
  const onChildSignal = () => void (reaped += reapByPeeking(runtimeChild));
  libc.setChildSubreaper(true);
  process.on("SIGCHLD", onChildSignal);
  return {
    source: "floor",
    leave: (pid) => void (runtimeChild = pid),
    stats: () => ({ reaped, reapedBySource: {} }),
    stop: async () => void process.off("SIGCHLD", onChildSignal),
  };
}

/** A function that peeks and reaps until no zombie is left but `runtimeChild`, and returns how many it reaped. */
function peekingReaper(libc, wait) {
  const peek = wait.WEXITED | wait.WNOHANG | wait.WNOWAIT | wait.__WNOTHREAD;
  const reap = wait.WEXITED | wait.WNOHANG | wait.__WNOTHREAD;
  return (runtimeChild) => {
    let reaped = 0;
    for (;;) {
      let pid;
      try {
        pid = libc.waitid(wait.P_ALL, 0, peek).pid;
      } catch {
        return reaped; // ECHILD: no child at all
      }
      if (pid === 0 || pid === runtimeChild) return reaped;
      libc.waitid(wait.P_PID, pid, reap);
      reaped += 1;
    }
  };
}

/**
 * Under a reaper told each exit by the proc connector (our netlink source):
 * in the runtime's SIGCHLD listener, the socket (set up as ours is, kernel
 * filter included, but with the kernel's default receive buffer) is read to
 * its end and each EXIT of a child of ours is reaped by its PID. No peek, no
 * provenance: every child but the daemon's one is taken for an orphan. A
 * SIGCHLD may come before its EXIT is queued (do_exit() notifies the parent
 * first): when one finds no exit, the socket is read again 1 ms later, or
 * the last orphan would wait forever. Events lost (ENOBUFS: the receive queue
 * overflowed) are made up for as the peeking floor does; an EXIT read after
 * that may name a zombie a peek took.
 * `socket` is src/netlink/socket and `events` src/netlink/constants.
 */
export function startNetlinkFloorReaper(libc, wait, socket, events) {
  const { PROC_EVENT_OFFSET, PROC_EVENT_WHAT, PROC_EVENT_DATA, PROC_EVENT_EXIT, EXIT_PROCESS_PID, EXIT_PROCESS_TGID, EXIT_PARENT_TGID } = events;
  const reap = wait.WEXITED | wait.WNOHANG | wait.__WNOTHREAD;
  const reapByPeeking = peekingReaper(libc, wait);
  const exitAt = PROC_EVENT_OFFSET + PROC_EVENT_DATA;
  const datagram = new Uint8Array(8192);
  const words = new Int32Array(datagram.buffer);
  const sender = new Uint8Array(events.SOCKADDR_NL_SIZE);
  const word = (offset) => words[offset >>> 2];
  const selfPid = process.pid;
  const nonce = (Math.random() * 0xffff_fffe) >>> 0;
  libc.setChildSubreaper(true);
  const fd = socket.openProcConnectorSocket(libc);
  socket.attachOwnChildrenFilter(libc, fd, selfPid, nonce);
  socket.joinProcEvents(libc, fd);
  socket.sendListen(libc, fd, nonce);
  socket.narrowToForkAndExit(libc, fd);
  let runtimeChild = 0;
  let reaped = 0;
  let retry;
  const onChildSignal = () => {
    let exits = 0;
    // One proc event per datagram: the connector sends each on its own.
    for (;;) {
      let length;
      try {
        length = libc.receive(fd, datagram, sender);
      } catch (error) {
        if (error?.code !== "ENOBUFS") throw error;
        reaped += reapByPeeking(runtimeChild);
        continue;
      }
      if (length < 0) break;
      const pid = word(exitAt + EXIT_PROCESS_PID);
      if (word(PROC_EVENT_OFFSET + PROC_EVENT_WHAT) >>> 0 !== PROC_EVENT_EXIT || pid !== word(exitAt + EXIT_PROCESS_TGID)) continue;
      if (word(exitAt + EXIT_PARENT_TGID) !== selfPid || pid === runtimeChild) continue;
      exits += 1;
      try {
        libc.waitid(wait.P_PID, pid, reap);
        reaped += 1;
      } catch {
        // ECHILD: a peek after lost events took it.
      }
    }
    if (exits === 0 && retry === undefined) retry = setTimeout(() => ((retry = undefined), onChildSignal()), 1);
  };
  process.on("SIGCHLD", onChildSignal);
  return {
    source: "netlink floor",
    leave: (pid) => void (runtimeChild = pid),
    stats: () => ({ reaped, reapedBySource: {} }),
    stop: async () => {
      process.off("SIGCHLD", onChildSignal);
      clearTimeout(retry);
      socket.sendIgnore(libc, fd);
      libc.close(fd);
    },
  };
}
