/**
 * Pure parse/format of proc connector messages: a datagram from the socket
 * becomes events, handed one by one to a sink (or collected as objects), and
 * a subscription request becomes bytes. The
 * parser never throws: anything that does not look like the kernel's own
 * message is counted as malformed, with a reason, and skipped.
 */
import {
  ACK_ERR,
  CN_ACK,
  CN_IDX,
  CN_IDX_PROC,
  CN_LEN,
  CN_MSG_SIZE,
  CN_SEQ,
  CN_VAL,
  CN_VAL_PROC,
  EXIT_CODE,
  EXIT_PARENT_PID,
  EXIT_PARENT_TGID,
  EXIT_PROCESS_PID,
  EXIT_PROCESS_TGID,
  EXIT_SIGNAL,
  EXIT_SIZE,
  FORK_CHILD_PID,
  FORK_CHILD_TGID,
  FORK_PARENT_PID,
  FORK_PARENT_TGID,
  FORK_SIZE,
  NLMSG_ALIGNTO,
  NLMSG_DONE,
  NLMSG_HDRLEN,
  NLMSG_LEN,
  NLMSG_PID,
  NLMSG_TYPE,
  PROC_EVENT_DATA,
  PROC_EVENT_EXIT,
  PROC_EVENT_FORK,
  PROC_EVENT_HEADER_SIZE,
  PROC_EVENT_NONE,
  PROC_EVENT_TIMESTAMP,
  PROC_EVENT_WHAT,
} from "./constants.ts";

/** The kernel's answer to a subscription request. */
export interface AckEvent {
  readonly type: "ack";
  /** A positive errno, 0 when the request was taken. */
  readonly err: number;
  /** The kernel's own message counter, not our request's seq. */
  readonly seq: number;
  /** Our request's cn_msg.ack plus one: ties the ack to our request. */
  readonly ack: number;
}

export interface ForkEvent {
  readonly type: "fork";
  /** ktime_get_ns() at the event: CLOCK_MONOTONIC nanoseconds. */
  readonly timestampNs: number;
  readonly parentPid: number;
  readonly parentTgid: number;
  readonly childPid: number;
  readonly childTgid: number;
}

export interface ExitEvent {
  readonly type: "exit";
  readonly timestampNs: number;
  readonly pid: number;
  readonly tgid: number;
  /** Wait status form (768 = exit(3), 9 = SIGKILL). */
  readonly exitCode: number;
  readonly exitSignal: number;
  readonly parentPid: number;
  readonly parentTgid: number;
}

export type ProcEvent = AckEvent | ForkEvent | ExitEvent;

export interface ParsedDatagram {
  readonly events: ProcEvent[];
  /** Why each malformed message was skipped; empty when all were sound. */
  readonly malformed: string[];
}

/**
 * What the parser hands each message to, in order, with the kernel struct's
 * fields as arguments: no object is made per event on the path that runs
 * once per exit, mostly before the JIT has compiled it.
 */
export interface ProcEventSink {
  ack(err: number, seq: number, ack: number): void;
  /** struct fork_proc_event's fields, in its order. */
  fork(timestampNs: number, parentPid: number, parentTgid: number, childPid: number, childTgid: number): void;
  /** struct exit_proc_event's fields, in its order; `exitCode` is in wait status form (768 = exit(3), 9 = SIGKILL). */
  exit(timestampNs: number, pid: number, tgid: number, exitCode: number, exitSignal: number, parentPid: number, parentTgid: number): void;
  /** Why a message was skipped. */
  malformed(reason: string): void;
}

/** Word order of the u64 timestamp: host order, like every netlink field. */
const LOW_WORD_FIRST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Reads proc events from one buffer, as 32- and 16-bit words in host byte
 * order (netlink's): every message starts 4-byte aligned and every field
 * we read is aligned to its size. Typed-array reads, not DataView calls.
 */
export class ProcEventParser {
  readonly #words: Int32Array;
  readonly #halves: Uint16Array;

  /** `buffer` must start 4-byte aligned in its ArrayBuffer. */
  constructor(buffer: Uint8Array) {
    this.#words = new Int32Array(buffer.buffer, buffer.byteOffset, buffer.byteLength >>> 2);
    this.#halves = new Uint16Array(buffer.buffer, buffer.byteOffset, buffer.byteLength >>> 1);
  }

  /** Hands `sink` every proc event in the first `byteLength` bytes (the kernel may pack several messages in a datagram). */
  parse(byteLength: number, sink: ProcEventSink): void {
    const words = this.#words;
    let offset = 0;
    while (offset < byteLength) {
      const remaining = byteLength - offset;
      if (remaining < NLMSG_HDRLEN) return sink.malformed(`${remaining} trailing bytes, shorter than a netlink header`);
      const length = words[(offset + NLMSG_LEN) >>> 2]! >>> 0;
      // Without a trustworthy length the next message cannot be found.
      if (length < NLMSG_HDRLEN || length > remaining) return sink.malformed(`nlmsg_len ${length} does not fit the ${remaining} bytes left`);
      const problem = this.#message(offset, length, sink);
      if (problem !== undefined) sink.malformed(problem);
      // NLMSG_ALIGN(length).
      offset += (length + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1);
    }
  }

  /** The netlink message of `length` bytes at `at`, handed to `sink`; or why it is malformed. */
  #message(at: number, length: number, sink: ProcEventSink): string | undefined {
    const words = this.#words;
    const type = this.#halves[(at + NLMSG_TYPE) >>> 1]!;
    if (type !== NLMSG_DONE) return `nlmsg_type ${type} is not NLMSG_DONE`;
    // A sanity check only: the sender writes this field. The source address decides (src/sources/netlink.ts).
    const senderPort = words[(at + NLMSG_PID) >>> 2]! >>> 0;
    if (senderPort !== 0) return `sender port ${senderPort} is not the kernel`;
    if (length < NLMSG_HDRLEN + CN_MSG_SIZE) return `nlmsg_len ${length} too short for a cn_msg`;
    const cn = at + NLMSG_HDRLEN;
    const idx = words[(cn + CN_IDX) >>> 2]! >>> 0;
    const val = words[(cn + CN_VAL) >>> 2]! >>> 0;
    if (idx !== CN_IDX_PROC || val !== CN_VAL_PROC) return `connector id ${idx}:${val} is not the proc connector`;
    const payloadLength = this.#halves[(cn + CN_LEN) >>> 1]!;
    const payloadRoom = length - NLMSG_HDRLEN - CN_MSG_SIZE;
    if (payloadLength > payloadRoom) return `cn_msg.len ${payloadLength} exceeds the ${payloadRoom} bytes after it`;
    const event = cn + CN_MSG_SIZE;
    if (payloadLength < PROC_EVENT_HEADER_SIZE) return `proc_event of ${payloadLength} bytes is truncated`;
    const what = words[(event + PROC_EVENT_WHAT) >>> 2]! >>> 0;
    // The u64 of nanoseconds as a double: exact for 104 days of uptime, to the microsecond far beyond.
    const firstWord = words[(event + PROC_EVENT_TIMESTAMP) >>> 2]! >>> 0;
    const secondWord = words[(event + PROC_EVENT_TIMESTAMP + 4) >>> 2]! >>> 0;
    const timestampNs = LOW_WORD_FIRST ? firstWord + secondWord * 2 ** 32 : secondWord + firstWord * 2 ** 32;
    const data = (event + PROC_EVENT_DATA) >>> 2;
    const room = payloadLength - PROC_EVENT_DATA;
    if (what === PROC_EVENT_EXIT) {
      if (room < EXIT_SIZE) return "exit event is truncated";
      sink.exit(
        timestampNs,
        words[data + (EXIT_PROCESS_PID >>> 2)]!,
        words[data + (EXIT_PROCESS_TGID >>> 2)]!,
        words[data + (EXIT_CODE >>> 2)]!,
        words[data + (EXIT_SIGNAL >>> 2)]!,
        words[data + (EXIT_PARENT_PID >>> 2)]!,
        words[data + (EXIT_PARENT_TGID >>> 2)]!,
      );
    } else if (what === PROC_EVENT_FORK) {
      if (room < FORK_SIZE) return "fork event is truncated";
      sink.fork(
        timestampNs,
        words[data + (FORK_PARENT_PID >>> 2)]!,
        words[data + (FORK_PARENT_TGID >>> 2)]!,
        words[data + (FORK_CHILD_PID >>> 2)]!,
        words[data + (FORK_CHILD_TGID >>> 2)]!,
      );
    } else if (what === PROC_EVENT_NONE) {
      if (room < 4) return "ack event is truncated";
      sink.ack(words[data + (ACK_ERR >>> 2)]! >>> 0, words[(cn + CN_SEQ) >>> 2]! >>> 0, words[(cn + CN_ACK) >>> 2]! >>> 0);
    }
    // Any other (exec, uid, comm, ...): not ours to use, not malformed.
    return undefined;
  }
}

/** Every proc event in one datagram, as objects; `bytes` is copied when it does not start 4-byte aligned. */
export function parseProcEvents(bytes: Uint8Array): ParsedDatagram {
  const aligned = bytes.byteOffset % NLMSG_ALIGNTO === 0 ? bytes : bytes.slice();
  const events: ProcEvent[] = [];
  const malformed: string[] = [];
  new ProcEventParser(aligned).parse(bytes.byteLength, {
    ack: (err, seq, ack) => void events.push({ type: "ack", err, seq, ack }),
    fork: (timestampNs, parentPid, parentTgid, childPid, childTgid) =>
      void events.push({ type: "fork", timestampNs, parentPid, parentTgid, childPid, childTgid }),
    exit: (timestampNs, pid, tgid, exitCode, exitSignal, parentPid, parentTgid) =>
      void events.push({ type: "exit", timestampNs, pid, tgid, exitCode, exitSignal, parentPid, parentTgid }),
    malformed: (reason) => void malformed.push(reason),
  });
  return { events, malformed };
}

/**
 * A subscription request datagram. With `eventTypes` (a PROC_EVENT_* mask) it
 * carries the 8-byte struct proc_input that kernels 6.6+ filter by; without,
 * the bare 4-byte op every kernel since 2.6.15 understands.
 */
export function formatSubscription(op: number, eventTypes?: number, ids: { seq?: number; ack?: number } = {}): Uint8Array {
  const payloadLength = eventTypes === undefined ? 4 : 8;
  const length = NLMSG_HDRLEN + CN_MSG_SIZE + payloadLength;
  const bytes = new Uint8Array(length);
  const view = new DataView(bytes.buffer);
  view.setUint32(NLMSG_LEN, length, true);
  view.setUint16(NLMSG_TYPE, NLMSG_DONE, true);
  const cn = NLMSG_HDRLEN;
  view.setUint32(cn + CN_IDX, CN_IDX_PROC, true);
  view.setUint32(cn + CN_VAL, CN_VAL_PROC, true);
  view.setUint32(cn + CN_SEQ, ids.seq ?? 0, true);
  view.setUint32(cn + CN_ACK, ids.ack ?? 0, true);
  view.setUint16(cn + CN_LEN, payloadLength, true);
  view.setUint32(cn + CN_MSG_SIZE, op, true);
  if (eventTypes !== undefined) view.setUint32(cn + CN_MSG_SIZE + 4, eventTypes >>> 0, true);
  return bytes;
}
