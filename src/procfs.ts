/**
 * Reading /proc: process stat lines, this process's own children, its fds
 * and the PID each pidfd names, and its PID namespace nesting. Pure parsers
 * take strings (unit tested with fixtures); readers are small and bounded:
 * every loop over many files yields to the event loop between chunks, so a
 * daemon with thousands of processes never stalls for more than a couple of
 * milliseconds.
 */
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import type { Libc } from "./libc.ts";

/** The fields of /proc/PID/stat the reaper needs (see proc(5)). */
export interface ProcStat {
  readonly pid: number;
  readonly comm: string;
  /** One letter: R, S, D, Z (zombie), T, t, X, I, ... */
  readonly state: string;
  readonly ppid: number;
  /** Start time in clock ticks after boot: with pid, names one process instance. */
  readonly startTime: number;
}

// proc(5): after "pid (comm) ", field 3 (state) is index 0, field 4 (ppid)
// index 1, field 22 (starttime) index 19.
const STAT_STATE = 0;
const STAT_PPID = 1;
const STAT_STARTTIME = 19;
const FILES_PER_CHUNK = 64;
const ASCII_ZERO = 0x30;

/**
 * Parses one /proc/PID/stat line. comm may hold spaces, parentheses and
 * newlines (even text like ") Z 1 "), so the fields start after the LAST ")".
 */
export function parseStat(line: string): ProcStat | undefined {
  const open = line.indexOf(" (");
  const close = line.lastIndexOf(")");
  if (open < 1 || close < open) return undefined;
  const pid = Number(line.slice(0, open));
  const fields = line.slice(close + 2).split(" ");
  const state = fields[STAT_STATE];
  const ppid = Number(fields[STAT_PPID]);
  const startTime = Number(fields[STAT_STARTTIME]);
  if (!Number.isInteger(pid) || !state || !Number.isInteger(ppid) || !Number.isInteger(startTime)) {
    return undefined;
  }
  return { pid, comm: line.slice(open + 2, close), state, ppid, startTime };
}

/** ENOENT / ESRCH: the process or fd went away meanwhile, an answer in itself. */
function isGone(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ESRCH";
}

/**
 * Reads a /proc file (the kernel bounds their size), or undefined when the
 * process is gone. Any other error throws: a safety check must not take
 * "could not read" for "not there".
 */
function readSmall(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if (isGone(error)) return undefined;
    throw error;
  }
}

export function readStat(pid: number): ProcStat | undefined {
  const text = readSmall(`/proc/${pid}/stat`);
  return text === undefined ? undefined : parseStat(text);
}

/** <linux/threads.h>: PIDs below this are never handed out again once PIDs wrap. */
const RESERVED_PIDS = 300;

/**
 * How many PIDs must be handed out before the last PID can come round to
 * its value now: every PID free now (pid_max, less the reserved ones and
 * every task on the host, /proc/loadavg's count, ours among them). Undefined
 * where either cannot be read.
 */
export function freePidsNow(): number | undefined {
  try {
    const pidMax = Number(readFileSync("/proc/sys/kernel/pid_max", "utf8"));
    const tasks = Number(readFileSync("/proc/loadavg", "utf8").split(" ")[3]?.split("/")[1]);
    return Number.isInteger(pidMax) && Number.isInteger(tasks) ? Math.max(0, pidMax - RESERVED_PIDS - tasks) : undefined;
  } catch {
    return undefined;
  }
}

/** Lets the event loop run between chunks of /proc reads. */
export const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Calls `visit` for each item, yielding to the event loop between chunks. */
export async function forEachChunked<T>(items: readonly T[], visit: (item: T) => void): Promise<void> {
  for (let start = 0; start < items.length; start += FILES_PER_CHUNK) {
    if (start > 0) await yieldToEventLoop();
    for (const item of items.slice(start, start + FILES_PER_CHUNK)) visit(item);
  }
}

/** Parses the space-separated PIDs of a /proc/PID/task/TID/children file. */
export function parseChildren(text: string): number[] {
  return text.split(" ").filter((word) => word.trim() !== "").map(Number);
}

/**
 * The children of every thread of process `pid` (orphans are reparented to
 * any live thread of a reaper: kernel find_alive_thread), read now; undefined
 * when the kernel lacks CONFIG_PROC_CHILDREN.
 */
export function readTaskChildren(pid: number | "self" = "self"): number[] | undefined {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  const children: number[] = [];
  for (const tid of tasks) {
    const text = readSmall(`/proc/${pid}/task/${tid}/children`);
    if (text === undefined && String(tid) === String(pid === "self" ? process.pid : pid)) return undefined;
    if (text) children.push(...parseChildren(text));
  }
  return children;
}

/**
 * The children of this process's main thread (where orphans are reparented,
 * and the only ones the reaper's waitid calls consider); without
 * CONFIG_PROC_CHILDREN, all of /proc is scanned for children of the process.
 */
export async function listOwnChildren(selfPid: number): Promise<number[]> {
  const text = readSmall(`/proc/${selfPid}/task/${selfPid}/children`);
  if (text !== undefined) return parseChildren(text);
  const children: number[] = [];
  await forEachChunked(procPids(), (pid) => {
    if (readStat(pid)?.ppid === selfPid) children.push(pid);
  });
  return children;
}

/**
 * The children of every thread of this process, read in one synchronous
 * step; without CONFIG_PROC_CHILDREN, every process in /proc whose parent is
 * this process (a stat's ppid names the process, whichever thread forked).
 */
export function listAllChildrenNow(): number[] {
  return readTaskChildren() ?? procPids().filter((pid) => readStat(pid)?.ppid === process.pid);
}

/** Every PID in /proc: the slow way to find children. */
function procPids(): number[] {
  // An empty /proc (unmounted) would list no children: "none" must not be said for "cannot tell".
  if (readSmall("/proc/self/stat") === undefined) throw new Error("/proc is not mounted (no /proc/self): cannot list children");
  return readdirSync("/proc").filter((name) => /^\d+$/.test(name)).map(Number);
}

/** Reads the stat of each PID, in chunks; processes gone meanwhile are left out. */
export async function readStats(pids: readonly number[]): Promise<ProcStat[]> {
  const stats: ProcStat[] = [];
  await forEachChunked(pids, (pid) => {
    const stat = readStat(pid);
    if (stat) stats.push(stat);
  });
  return stats;
}

/**
 * /proc/sys/kernel/ns_last_pid: the last PID (or thread ID) the kernel handed
 * out in the reader's PID namespace, so any fork or new thread in it changes
 * it. Kept open and read with one pread through the libc seam, digits taken
 * from the bytes: this is read once per exit on the sigchld path. Undefined
 * where it cannot be read.
 */
export class LastPidCounter {
  readonly #libc: Libc;
  readonly #fd: number;
  readonly #buffer = new Uint8Array(16);

  private constructor(libc: Libc, fd: number) {
    this.#libc = libc;
    this.#fd = fd;
  }

  static open(libc: Libc): LastPidCounter | undefined {
    try {
      const counter = new LastPidCounter(libc, openSync("/proc/sys/kernel/ns_last_pid", "r"));
      return counter.read() === undefined ? (counter.close(), undefined) : counter;
    } catch {
      return undefined;
    }
  }

  read(): number | undefined {
    let length: number;
    try {
      length = this.#libc.readAt(this.#fd, this.#buffer, 0);
    } catch {
      return undefined;
    }
    // "12345\n": decimal digits up to the newline.
    let pid = 0;
    let digits = 0;
    for (; digits < length; digits++) {
      const digit = this.#buffer[digits]! - ASCII_ZERO;
      if (digit < 0 || digit > 9) break;
      pid = pid * 10 + digit;
    }
    return digits > 0 ? pid : undefined;
  }

  close(): void {
    closeSync(this.#fd);
  }
}

/** What /proc/self/fd/N links to for a pidfd, on every kernel (pidfs keeps the name). */
export const PIDFD_LINK = "anon_inode:[pidfd]";

/** The PID named by a pidfd's /proc/self/fdinfo text ("Pid:\t123"), if any. */
export function parsePidfdInfo(text: string): number | undefined {
  const match = /^Pid:\s+(-?\d+)$/m.exec(text);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** The PID a pidfd of ours names (-1 once that process was reaped), or undefined when fd is no pidfd. */
export function readPidfdTarget(fd: number): number | undefined {
  return parsePidfdInfo(readSmall(`/proc/self/fdinfo/${fd}`) ?? "");
}

/** How many fds this process's fd table has room for (FDSize: a power of two, never shrinks); every open fd is below it. */
export function readFdTableSize(): number | undefined {
  const match = /^FDSize:\s+(\d+)$/m.exec(readSmall("/proc/self/status") ?? "");
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** The fds this process has open now; throws when /proc/self/fd cannot be listed (never "none"). */
export function listOwnFds(): number[] {
  return readdirSync("/proc/self/fd").map(Number);
}

/** The target of one of our fds ("socket:[123]", "anon_inode:[pidfd]"), if open. */
export function readFdLink(fd: number): string | undefined {
  return readLink(`/proc/self/fd/${fd}`);
}

function readLink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch (error) {
    if (isGone(error)) return undefined; // closed meanwhile
    throw error;
  }
}

/** <linux/proc_ns.h>: initial namespaces have fixed inodes (pid and user since 3.8, net since 6.18). */
export const INITIAL_NAMESPACE_INODE = { pid: 0xeffffffc, user: 0xeffffffd, net: 0xeffffff9 } as const;

/** The inode of a namespace link such as "net:[4026531833]". */
export function parseNamespaceInode(link: string): number | undefined {
  const match = /^\w+:\[(\d+)\]$/.exec(link);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** The inode of a process's namespace of `kind`; undefined when it cannot be read. */
export function readNamespaceInode(kind: "pid" | "user" | "net", pid: number | "self" = "self"): number | undefined {
  try {
    const link = readLink(`/proc/${pid}/ns/${kind}`);
    return link === undefined ? undefined : parseNamespaceInode(link);
  } catch {
    return undefined; // EACCES on another process's namespaces: cannot tell
  }
}

/** The PIDs of this process in each nested PID namespace, outermost first. */
export function parseNsPids(statusText: string): number[] {
  const match = /^NSpid:\s+([\d\s]+)$/m.exec(statusText);
  return match?.[1] ? parseChildren(match[1].replace(/\s+/g, " ")) : [];
}

export function readOwnNsPids(): number[] {
  return parseNsPids(readSmall("/proc/self/status") ?? "");
}

/**
 * Why /proc cannot tell about this process's children, or undefined when it
 * can: it must be mounted for our own PID namespace. /proc/self names this
 * process by its PID in the namespace /proc was mounted for: a /proc left
 * from the parent namespace (`unshare -p -f` without --mount-proc) names
 * it otherwise, and its children and stats are other processes'.
 */
export function whyProcIsNotOurs(selfPid: number): string | undefined {
  let named: string;
  try {
    named = readlinkSync("/proc/self");
  } catch (error) {
    return `/proc is not mounted or not readable (${(error as NodeJS.ErrnoException).code ?? String(error)})`;
  }
  if (named === String(selfPid)) return undefined;
  return `/proc is another PID namespace's (it names this process ${named}, not ${selfPid}): mount one for this namespace (unshare --mount-proc, or mount -t proc proc /proc)`;
}
