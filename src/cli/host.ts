/**
 * Facts about the host that decide which source can serve: kernel release,
 * PID namespace nesting, and whether this is the initial network namespace
 * (the only one where the proc connector exists). Pure judges take what was
 * read; small readers read it.
 */
import { release } from "node:os";
import { INITIAL_NAMESPACE_INODE, readNamespaceInode, readOwnNsPids } from "../procfs.ts";

const PID_NS_INIT_INO = INITIAL_NAMESPACE_INODE.pid;
/** The initial network namespace's inode is fixed since Linux 6.18; earlier kernels number it like any other. */
const NET_NS_INIT_INO = INITIAL_NAMESPACE_INODE.net;
const NET_NS_FIXED_SINCE: readonly [number, number] = [6, 18];

export interface NamespaceVerdict {
  /** undefined when it cannot be told from here. */
  readonly initial: boolean | undefined;
  readonly reason: string;
}

/** [major, minor] of a kernel release such as "6.18.44-foo". */
export function parseKernelVersion(kernelRelease: string): [number, number] | undefined {
  const match = /^(\d+)\.(\d+)/.exec(kernelRelease);
  return match?.[1] && match[2] ? [Number(match[1]), Number(match[2])] : undefined;
}

function isAtLeast(version: readonly [number, number] | undefined, wanted: readonly [number, number]): boolean {
  return version !== undefined && (version[0] > wanted[0] || (version[0] === wanted[0] && version[1] >= wanted[1]));
}

export interface NetNamespaceFacts {
  readonly kernelRelease: string;
  readonly ownNetInode: number | undefined;
  /** Our PID namespace's inode, to know whether PID 1 is the host's init. */
  readonly ownPidInode: number | undefined;
  /** The network namespace inode of PID 1, when readable. */
  readonly pid1NetInode: number | undefined;
}

export function judgeNetNamespace(facts: NetNamespaceFacts): NamespaceVerdict {
  const { ownNetInode, pid1NetInode } = facts;
  if (ownNetInode === undefined) return { initial: undefined, reason: "/proc/self/ns/net is not readable" };
  if (ownNetInode === NET_NS_INIT_INO) return { initial: true, reason: "its inode is the initial namespace's fixed one" };
  if (isAtLeast(parseKernelVersion(facts.kernelRelease), NET_NS_FIXED_SINCE)) {
    return { initial: false, reason: "its inode is not the initial namespace's (fixed since Linux 6.18)" };
  }
  if (facts.ownPidInode !== PID_NS_INIT_INO || pid1NetInode === undefined) {
    return { initial: undefined, reason: "kernel before 6.18 and the host's init is not visible to compare with" };
  }
  return pid1NetInode === ownNetInode
    ? { initial: true, reason: "same network namespace as the host's init (PID 1)" }
    : { initial: false, reason: "not the network namespace of the host's init (PID 1)" };
}

export function readNetNamespace(): NamespaceVerdict {
  return judgeNetNamespace({
    kernelRelease: release(),
    ownNetInode: readNamespaceInode("net"),
    ownPidInode: readNamespaceInode("pid"),
    pid1NetInode: readNamespaceInode("net", 1),
  });
}

export interface PidNamespaceFacts extends NamespaceVerdict {
  /** Our PID in each PID namespace that this /proc shows, outermost first (NSpid). */
  readonly nsPids: readonly number[];
}

/**
 * The namespace's inode decides: NSpid lists only the levels the mounted
 * /proc can see, so under `unshare -p --mount-proc` it shows one PID although
 * the namespace is nested.
 */
export function judgePidNamespace(ownPidInode: number | undefined, nsPids: readonly number[]): PidNamespaceFacts {
  if (nsPids.length > 1) return { nsPids, initial: false, reason: `nested ${nsPids.length - 1} deep (NSpid)` };
  if (ownPidInode === undefined) return { nsPids, initial: undefined, reason: "/proc/self/ns/pid is not readable" };
  return ownPidInode === PID_NS_INIT_INO
    ? { nsPids, initial: true, reason: "its inode is the initial namespace's fixed one" }
    : { nsPids, initial: false, reason: "its inode is not the initial namespace's: nested, depth hidden by this /proc" };
}

export function readPidNamespace(): PidNamespaceFacts {
  return judgePidNamespace(readNamespaceInode("pid"), readOwnNsPids());
}
