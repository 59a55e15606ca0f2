/**
 * SIGCHLD: PID 1 and child subreapers get it, with no privilege, whenever a
 * child exits, adopted orphans included. Signals merge, so one only means
 * "look". It wakes the core beside the proc connector too (whose socket is
 * read on it) and is the container path without it. It adds a listener and
 * never replaces or ignores SIGCHLD, so the runtime's own child handling and
 * any other listener keep working.
 */
import type { EventSource } from "./source.ts";

export function startSigchldSource(core: { onChildSignal(): void }): EventSource {
  const onSigchld = () => core.onChildSignal();
  process.on("SIGCHLD", onSigchld);
  return {
    name: "sigchld",
    stop: () => void process.off("SIGCHLD", onSigchld),
  };
}
