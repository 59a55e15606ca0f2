/**
 * A classic BPF socket filter that lets through only the proc events that
 * concern this process's own children, so the daemon is not woken for the
 * rest of the machine's forks and exits (and so that kernels before 6.6,
 * which ignore the proc_input event filter, cost no more than new ones).
 *
 * Kept: the ack to our own subscription (PROC_EVENT_NONE with our cn_msg.ack:
 * the kernel multicasts every listener's acks to all); EXIT of a process (not
 * a thread: pid == tgid) whose parent_tgid is us; FORK of a process (not a
 * thread: child_pid == child_tgid) by us. Everything else is dropped before
 * it is queued. The program reads the datagram from the nlmsghdr on.
 */
import {
  CN_ACK,
  EXIT_PARENT_TGID,
  EXIT_PROCESS_PID,
  EXIT_PROCESS_TGID,
  FORK_CHILD_PID,
  FORK_CHILD_TGID,
  FORK_PARENT_TGID,
  NLMSG_HDRLEN,
  PROC_EVENT_DATA,
  PROC_EVENT_EXIT,
  PROC_EVENT_FORK,
  PROC_EVENT_NONE,
  PROC_EVENT_OFFSET,
  PROC_EVENT_WHAT,
} from "./constants.ts";

// <linux/bpf_common.h>, <linux/filter.h>
const BPF_LD_W_ABS = 0x00 | 0x00 | 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_JMP_JEQ_K = 0x05 | 0x10 | 0x00; // BPF_JMP | BPF_JEQ | BPF_K
const BPF_JMP_JEQ_X = 0x05 | 0x10 | 0x08; // BPF_JMP | BPF_JEQ | BPF_X
const BPF_MISC_TAX = 0x07 | 0x00; // X = A
const BPF_RET_K = 0x06 | 0x00;
const SOCK_FILTER_SIZE = 8; // struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }
const KEEP_WHOLE_DATAGRAM = 0xffffffff;
const DROP = 0;

interface Instruction {
  readonly code: number;
  readonly jt: number;
  readonly jf: number;
  readonly k: number;
}

/** BPF_ABS loads read network (big-endian) order: compare with swapped host values. */
const hostToLoaded = (value: number) =>
  (((value & 0xff) << 24) | ((value & 0xff00) << 8) | ((value >>> 8) & 0xff00) | (value >>> 24)) >>> 0;

const eventField = (field: number) => PROC_EVENT_OFFSET + PROC_EVENT_DATA + field;
const load = (offset: number): Instruction => ({ code: BPF_LD_W_ABS, jt: 0, jf: 0, k: offset });
const jumpIfEqual = (hostValue: number, jt: number, jf: number): Instruction => ({
  code: BPF_JMP_JEQ_K,
  jt,
  jf,
  k: hostToLoaded(hostValue),
});
const jumpIfEqualX = (jt: number, jf: number): Instruction => ({ code: BPF_JMP_JEQ_X, jt, jf, k: 0 });
const copyToX: Instruction = { code: BPF_MISC_TAX, jt: 0, jf: 0, k: 0 };
const ret = (k: number): Instruction => ({ code: BPF_RET_K, jt: 0, jf: 0, k });

/** The filter's instructions for parent `selfPid` (a PID of the initial namespace) and the ack number our subscription gets. */
export function ownChildrenFilter(selfPid: number, ackNumber: number): Instruction[] {
  // A jump skips jt/jf instructions after itself: the comments name targets.
  return [
    /* 0 */ load(PROC_EVENT_OFFSET + PROC_EVENT_WHAT),
    /* 1 */ jumpIfEqual(PROC_EVENT_EXIT, 2, 0), // -> 4 exit checks / 2
    /* 2 */ jumpIfEqual(PROC_EVENT_FORK, 7, 0), // -> 10 fork checks / 3
    /* 3 */ jumpIfEqual(PROC_EVENT_NONE, 12, 15), // -> 16 ack check / 19 drop
    // EXIT: a whole process (pid == tgid) whose parent is us
    /* 4 */ load(eventField(EXIT_PROCESS_PID)),
    /* 5 */ copyToX,
    /* 6 */ load(eventField(EXIT_PROCESS_TGID)),
    /* 7 */ jumpIfEqualX(0, 11), // -> 8 / 19 drop
    /* 8 */ load(eventField(EXIT_PARENT_TGID)),
    /* 9 */ jumpIfEqual(selfPid, 8, 9), // -> 18 keep / 19 drop
    // FORK: a new process (not a thread) forked by us
    /* 10 */ load(eventField(FORK_CHILD_PID)),
    /* 11 */ copyToX,
    /* 12 */ load(eventField(FORK_CHILD_TGID)),
    /* 13 */ jumpIfEqualX(0, 5), // -> 14 / 19 drop
    /* 14 */ load(eventField(FORK_PARENT_TGID)),
    /* 15 */ jumpIfEqual(selfPid, 2, 3), // -> 18 keep / 19 drop
    // ACK: ours only
    /* 16 */ load(NLMSG_HDRLEN + CN_ACK),
    /* 17 */ jumpIfEqual(ackNumber, 0, 1), // -> 18 keep / 19 drop
    /* 18 */ ret(KEEP_WHOLE_DATAGRAM),
    /* 19 */ ret(DROP),
  ];
}

/** struct sock_filter[] in host byte order, ready for SO_ATTACH_FILTER. */
export function encodeFilter(program: readonly Instruction[]): Uint8Array {
  const bytes = new Uint8Array(program.length * SOCK_FILTER_SIZE);
  const view = new DataView(bytes.buffer);
  program.forEach(({ code, jt, jf, k }, index) => {
    const at = index * SOCK_FILTER_SIZE;
    view.setUint16(at, code, true);
    view.setUint8(at + 2, jt);
    view.setUint8(at + 3, jf);
    view.setUint32(at + 4, k, true);
  });
  return bytes;
}
