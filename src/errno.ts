/**
 * Errno as a typed error. libc.ts reads errno right after each call (through
 * __errno_location on Bun, koffi.errno() on Node) and throws ErrnoError, naming
 * the call, so every call site can sort expected codes (EINTR, ECHILD, ESRCH, ...)
 * from real failures, as tini's reap_zombies does.
 */
import { constants } from "node:os";

// Aliases share a number (EWOULDBLOCK is EAGAIN, 11): the first name listed
// wins, so a non-blocking read that finds nothing says EAGAIN.
const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) if (!errnoNames.has(value)) errnoNames.set(value, name);

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

/** What went wrong, for a log line or a reason: an Error's message, anything else as text. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
