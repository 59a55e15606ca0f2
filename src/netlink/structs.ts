/**
 * Pure parse/format of proc connector messages: a datagram from the socket
 * becomes a list of events, and a subscription request becomes bytes. The
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

const alignMessage = (length: number) => (length + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1);
/** Word order of the u64 timestamp: host order, like every netlink field. */
const LOW_WORD_FIRST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Reads proc events from one buffer, as 32- and 16-bit words in host byte
 * order (netlink's): every message starts 4-byte aligned and every field
 * we read is aligned to its size. Typed-array reads, not DataView calls:
 * this runs once per exit, mostly before the JIT has compiled it.
 */
export class ProcEventParser {
  readonly #words: Int32Array;
  readonly #halves: Uint16Array;

  /** `buffer` must start 4-byte aligned in its ArrayBuffer. */
  constructor(buffer: Uint8Array) {
    this.#words = new Int32Array(buffer.buffer, buffer.byteOffset, buffer.byteLength >>> 2);
    this.#halves = new Uint16Array(buffer.buffer, buffer.byteOffset, buffer.byteLength >>> 1);
  }

  /** Every proc event in the first `byteLength` bytes (the kernel may pack several messages in a datagram). */
  parse(byteLength: number): ParsedDatagram {
    const events: ProcEvent[] = [];
    const malformed: string[] = [];
    let offset = 0;
    while (offset < byteLength) {
      const remaining = byteLength - offset;
      if (remaining < NLMSG_HDRLEN) {
        malformed.push(`${remaining} trailing bytes, shorter than a netlink header`);
        break;
      }
      const length = this.#u32(offset + NLMSG_LEN);
      if (length < NLMSG_HDRLEN || length > remaining) {
        // Without a trustworthy length the next message cannot be found.
        malformed.push(`nlmsg_len ${length} does not fit the ${remaining} bytes left`);
        break;
      }
      const result = this.#message(offset, length);
      if (typeof result === "string") malformed.push(result);
      else if (result) events.push(result);
      offset += alignMessage(length);
    }
    return { events, malformed };
  }

  #u32(at: number): number {
    return this.#words[at >>> 2]! >>> 0;
  }

  #i32(at: number): number {
    return this.#words[at >>> 2]!;
  }

  #u16(at: number): number {
    return this.#halves[at >>> 1]!;
  }

  /** The netlink message of `length` bytes at `at`: an event, undefined for a type we do not use, or why it is malformed. */
  #message(at: number, length: number): ProcEvent | undefined | string {
    const type = this.#u16(at + NLMSG_TYPE);
    if (type !== NLMSG_DONE) return `nlmsg_type ${type} is not NLMSG_DONE`;
    // A sanity check only: the sender writes this field. The source address decides (src/sources/netlink.ts).
    const senderPort = this.#u32(at + NLMSG_PID);
    if (senderPort !== 0) return `sender port ${senderPort} is not the kernel`;
    if (length < NLMSG_HDRLEN + CN_MSG_SIZE) return `nlmsg_len ${length} too short for a cn_msg`;
    const cn = at + NLMSG_HDRLEN;
    const idx = this.#u32(cn + CN_IDX);
    const val = this.#u32(cn + CN_VAL);
    if (idx !== CN_IDX_PROC || val !== CN_VAL_PROC) return `connector id ${idx}:${val} is not the proc connector`;
    const payloadLength = this.#u16(cn + CN_LEN);
    const payloadRoom = length - NLMSG_HDRLEN - CN_MSG_SIZE;
    if (payloadLength > payloadRoom) return `cn_msg.len ${payloadLength} exceeds the ${payloadRoom} bytes after it`;
    return this.#event(cn + CN_MSG_SIZE, payloadLength, this.#u32(cn + CN_SEQ), this.#u32(cn + CN_ACK));
  }

  /** The struct proc_event of `length` bytes at `at`. */
  #event(at: number, length: number, seq: number, ack: number): ProcEvent | undefined | string {
    if (length < PROC_EVENT_HEADER_SIZE) return `proc_event of ${length} bytes is truncated`;
    const what = this.#u32(at + PROC_EVENT_WHAT);
    const data = at + PROC_EVENT_DATA;
    const room = length - PROC_EVENT_DATA;
    switch (what) {
      case PROC_EVENT_NONE:
        if (room < 4) return "ack event is truncated";
        return { type: "ack", err: this.#u32(data + ACK_ERR), seq, ack };
      case PROC_EVENT_FORK:
        if (room < FORK_SIZE) return "fork event is truncated";
        return {
          type: "fork",
          timestampNs: this.#timestampNs(at),
          parentPid: this.#i32(data + FORK_PARENT_PID),
          parentTgid: this.#i32(data + FORK_PARENT_TGID),
          childPid: this.#i32(data + FORK_CHILD_PID),
          childTgid: this.#i32(data + FORK_CHILD_TGID),
        };
      case PROC_EVENT_EXIT:
        if (room < EXIT_SIZE) return "exit event is truncated";
        return {
          type: "exit",
          timestampNs: this.#timestampNs(at),
          pid: this.#i32(data + EXIT_PROCESS_PID),
          tgid: this.#i32(data + EXIT_PROCESS_TGID),
          exitCode: this.#i32(data + EXIT_CODE),
          exitSignal: this.#i32(data + EXIT_SIGNAL),
          parentPid: this.#i32(data + EXIT_PARENT_PID),
          parentTgid: this.#i32(data + EXIT_PARENT_TGID),
        };
      default:
        return undefined; // exec, uid, comm, ...: not ours to use, not malformed
    }
  }

  /** The u64 of nanoseconds as a double: exact for 104 days of uptime, to the microsecond far beyond. */
  #timestampNs(event: number): number {
    const first = this.#u32(event + PROC_EVENT_TIMESTAMP);
    const second = this.#u32(event + PROC_EVENT_TIMESTAMP + 4);
    return LOW_WORD_FIRST ? first + second * 2 ** 32 : second + first * 2 ** 32;
  }
}

/** Every proc event in one datagram; `bytes` is copied when it does not start 4-byte aligned. */
export function parseProcEvents(bytes: Uint8Array): ParsedDatagram {
  const aligned = bytes.byteOffset % NLMSG_ALIGNTO === 0 ? bytes : bytes.slice();
  return new ProcEventParser(aligned).parse(bytes.byteLength);
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
