/**
 * Errno as a typed error. bun:ffi has no errno API: libc.ts reads it through
 * __errno_location() right after each call and throws ErrnoError, naming the
 * call, so every call site can sort expected codes (EINTR, ECHILD, ESRCH, ...)
 * from real failures, as tini's reap_zombies does.
 */
import { constants } from "node:os";

const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, value]) => [value, name]),
);

export class ErrnoError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly syscall: string;

  constructor(syscall: string, errno: number) {
    const code = errnoNames.get(errno) ?? `E${errno}`;
    super(`${syscall} failed: ${code} (errno ${errno})`);
    this.name = "ErrnoError";
    this.errno = errno;
    this.code = code;
    this.syscall = syscall;
  }
}

/** True when `error` is an ErrnoError carrying one of `codes`. */
export function hasErrnoCode(error: unknown, ...codes: string[]): error is ErrnoError {
  return error instanceof ErrnoError && codes.includes(error.code);
}
