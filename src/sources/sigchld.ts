/**
 * The SIGCHLD source: PID 1 and child subreapers get SIGCHLD, with no
 * privilege, whenever an adopted orphan exits. Signals merge, so one signal
 * only means "look": the core rescans until nothing new turns up.
 * It adds a listener and never replaces or ignores SIGCHLD, so the runtime's
 * own child handling and any other listener keep working.
 */
import type { EventSource, ReaperCore } from "./source.ts";

export function startSigchldSource(core: ReaperCore): EventSource {
  const onSigchld = () => core.requestScan("sigchld");
  process.on("SIGCHLD", onSigchld);
  return {
    name: "sigchld",
    stop: async () => {
      process.off("SIGCHLD", onSigchld);
    },
  };
}
