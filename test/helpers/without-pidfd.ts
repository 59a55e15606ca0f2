/**
 * Commands run where pidfd_open fails (test/fixtures/without-pidfd.ts): as
 * before Linux 5.3 (ENOSYS) or under a seccomp profile that does not know it
 * (EPERM).
 */
import { join } from "node:path";

export const WITHOUT_PIDFD = join(import.meta.dir, "../fixtures/without-pidfd.ts");

/** The prefix that runs a command (and all it starts) with pidfd_open failing with `errno`. */
export function withoutPidfd(errno: "EPERM" | "ENOSYS"): string[] {
  return [process.execPath, WITHOUT_PIDFD, errno, "--"];
}

/** Why the fixture cannot put its filter on here, or undefined when it can. */
export const seccompUnavailable = ["x64", "arm64"].includes(process.arch) ? undefined : `no seccomp syscall number for ${process.arch} in the fixture`;
