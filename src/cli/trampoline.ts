/**
 * The first code of `run`'s child, between spawn and exec: neither Bun nor
 * Node can run code between fork and exec, so the init spawns the runtime on
 * this module and it becomes the command with execvp, keeping its PID.
 * argv: the signals to keep ignored (comma-separated, or "-"), the number
 * of the command's words, then the words (counted: Bun drops a `--` right
 * after the script path, which would drop a command's first word `--`). It
 *  1. marks the exec-status pipe (fd 3) close-on-exec: the init sees it close
 *     when the command runs, or reads an errno code when it cannot run;
 *  2. puts itself in a process group of its own (setpgid(0, 0), as tini does);
 *  3. when stdin is a terminal whose foreground group was the init's (not a
 *     background job's), makes the new group the foreground group (tcsetpgrp,
 *     with SIGTTOU ignored: the new group is not in the foreground yet);
 *  4. gives the command default signal actions and an empty signal mask
 *     (the runtime ignores SIGPIPE, the init ignores what it cannot forward;
 *     exec keeps ignored actions and the mask), but for the signals the
 *     init was started with ignored (nohup), which stay ignored;
 *  5. execvp.
 */
import { writeSync } from "node:fs";
import { ErrnoError, hasErrnoCode } from "../errno.ts";
import type { Libc } from "../libc.ts";
import { loadLibc } from "../runtime/index.ts";
import { EXEC_STATUS_FD, exitCodeForExecError } from "./child.ts";

const SIGTTOU = 22;
const STDIN = 0;
const LAST_CLASSIC_SIGNAL = 31;

/** Whether stdin is a terminal whose foreground group is ours; ENOTTY: a terminal, but not our session's. */
function terminalForegroundIsOurs(libc: Libc): boolean {
  if (!libc.isatty(STDIN)) return false;
  try {
    return libc.tcgetpgrp(STDIN) === libc.getpgrp();
  } catch (err) {
    if (hasErrnoCode(err, "ENOTTY", "ENXIO")) return false;
    throw err;
  }
}

function ownForegroundGroup(libc: Libc): void {
  const inForeground = terminalForegroundIsOurs(libc);
  libc.setpgid(0, 0);
  if (!inForeground) return;
  libc.setSignalDisposition(SIGTTOU, "ignore");
  libc.tcsetpgrp(STDIN, libc.getpgrp());
}

function defaultSignals(libc: Libc, ignoredAtInitStart: ReadonlySet<number>): void {
  // Between the classic and the real-time signals lie libc's own (32-33 glibc, 32-34 musl): not ours to touch.
  const { min, max } = libc.realtimeSignalRange();
  for (let signal = 1; signal <= max; signal = signal === LAST_CLASSIC_SIGNAL ? min : signal + 1) {
    // Ignored again: the init listens to it, and a caught signal is back at the default after exec.
    if (ignoredAtInitStart.has(signal)) libc.setSignalDisposition(signal, "ignore");
    else if (libc.signalDisposition(signal) === "ignore") libc.setSignalDisposition(signal, "default");
  }
  libc.unblockAllSignals();
}

const STANDARD_FDS = [0, 1, 2];

/** Node marks the standard fds close-on-exec at start-up (measured): the command must keep those that are open. */
function keepStandardFds(libc: Libc): void {
  for (const fd of STANDARD_FDS) {
    try {
      libc.setCloseOnExec(fd, false);
    } catch (error) {
      if (!hasErrnoCode(error, "EBADF")) throw error;
    }
  }
}

const [keptIgnored = "-", wordCount] = process.argv.slice(2, 4);
const command = process.argv.slice(-Number(wordCount));
try {
  const libc = loadLibc();
  libc.setCloseOnExec(EXEC_STATUS_FD, true);
  keepStandardFds(libc);
  ownForegroundGroup(libc);
  defaultSignals(libc, new Set(keptIgnored.split(",").filter((signal) => signal !== "-").map(Number)));
  libc.execvp(command[0]!, command);
} catch (err) {
  // Whatever stopped the command from running, the init reports it as its errno code.
  const code = err instanceof ErrnoError ? err.code : String(err);
  writeSync(EXEC_STATUS_FD, code);
  process.exit(exitCodeForExecError(code));
}
