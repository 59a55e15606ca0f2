/**
 * Whether the kernel keeps a reaped process's wait status on its pidfd
 * (PIDFD_GET_INFO with PIDFD_INFO_EXIT, Linux 6.15), which `run` reads for
 * a child killed by a signal child_process has no name for. Asked of a real
 * child, for Bun's tests and Node's alike.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";

/** Undefined where the kernel keeps it, else why not. */
export async function whyNoPidfdExitStatus(libc) {
  const child = spawn("true", { stdio: "ignore" });
  let pidfd;
  try {
    pidfd = libc.pidfdOpen(child.pid);
  } catch (error) {
    await once(child, "exit");
    return `no pidfd here: ${error.message}`;
  }
  await once(child, "exit");
  try {
    return libc.pidfdExitStatus(pidfd) === undefined ? "the kernel keeps no wait status on a pidfd (PIDFD_INFO_EXIT: Linux 6.15)" : undefined;
  } finally {
    libc.close(pidfd);
  }
}
