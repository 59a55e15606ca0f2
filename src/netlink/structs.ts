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
  readonly timestampNs: bigint;
  readonly parentPid: number;
  readonly parentTgid: number;
  readonly childPid: number;
  readonly childTgid: number;
}

export interface ExitEvent {
  readonly type: "exit";
  readonly timestampNs: bigint;
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

/** Every proc event in one datagram (the kernel may pack several). */
export function parseProcEvents(bytes: Uint8Array): ParsedDatagram {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const events: ProcEvent[] = [];
  const malformed: string[] = [];
  let offset = 0;
  while (offset < bytes.byteLength) {
    const remaining = bytes.byteLength - offset;
    if (remaining < NLMSG_HDRLEN) {
      malformed.push(`${remaining} trailing bytes, shorter than a netlink header`);
      break;
    }
    const length = view.getUint32(offset + NLMSG_LEN, true);
    if (length < NLMSG_HDRLEN || length > remaining) {
      // Without a trustworthy length the next message cannot be found.
      malformed.push(`nlmsg_len ${length} does not fit the ${remaining} bytes left`);
      break;
    }
    const result = parseMessage(new DataView(bytes.buffer, bytes.byteOffset + offset, length));
    if (typeof result === "string") malformed.push(result);
    else if (result) events.push(result);
    offset += alignMessage(length);
  }
  return { events, malformed };
}

/** One netlink message: an event, undefined for a type we do not use, or why it is malformed. */
function parseMessage(message: DataView): ProcEvent | undefined | string {
  const type = message.getUint16(NLMSG_TYPE, true);
  if (type !== NLMSG_DONE) return `nlmsg_type ${type} is not NLMSG_DONE`;
  // A sanity check only: the sender writes this field. The source address decides (src/sources/netlink.ts).
  const senderPort = message.getUint32(NLMSG_PID, true);
  if (senderPort !== 0) return `sender port ${senderPort} is not the kernel`;
  if (message.byteLength < NLMSG_HDRLEN + CN_MSG_SIZE) return `nlmsg_len ${message.byteLength} too short for a cn_msg`;
  const cn = NLMSG_HDRLEN;
  const idx = message.getUint32(cn + CN_IDX, true);
  const val = message.getUint32(cn + CN_VAL, true);
  if (idx !== CN_IDX_PROC || val !== CN_VAL_PROC) return `connector id ${idx}:${val} is not the proc connector`;
  const payloadLength = message.getUint16(cn + CN_LEN, true);
  const payloadRoom = message.byteLength - NLMSG_HDRLEN - CN_MSG_SIZE;
  if (payloadLength > payloadRoom) return `cn_msg.len ${payloadLength} exceeds the ${payloadRoom} bytes after it`;
  const event = new DataView(message.buffer, message.byteOffset + cn + CN_MSG_SIZE, payloadLength);
  return parseProcEvent(event, message.getUint32(cn + CN_SEQ, true), message.getUint32(cn + CN_ACK, true));
}

function parseProcEvent(event: DataView, seq: number, ack: number): ProcEvent | undefined | string {
  if (event.byteLength < PROC_EVENT_HEADER_SIZE) return `proc_event of ${event.byteLength} bytes is truncated`;
  const what = event.getUint32(PROC_EVENT_WHAT, true);
  const timestampNs = event.getBigUint64(PROC_EVENT_TIMESTAMP, true);
  const data = PROC_EVENT_DATA;
  const need = (size: number) => event.byteLength >= data + size;
  const i32 = (field: number) => event.getInt32(data + field, true);
  switch (what) {
    case PROC_EVENT_NONE:
      if (!need(4)) return "ack event is truncated";
      return { type: "ack", err: event.getUint32(data + ACK_ERR, true), seq, ack };
    case PROC_EVENT_FORK:
      if (!need(FORK_SIZE)) return "fork event is truncated";
      return {
        type: "fork",
        timestampNs,
        parentPid: i32(FORK_PARENT_PID),
        parentTgid: i32(FORK_PARENT_TGID),
        childPid: i32(FORK_CHILD_PID),
        childTgid: i32(FORK_CHILD_TGID),
      };
    case PROC_EVENT_EXIT:
      if (!need(EXIT_SIZE)) return "exit event is truncated";
      return {
        type: "exit",
        timestampNs,
        pid: i32(EXIT_PROCESS_PID),
        tgid: i32(EXIT_PROCESS_TGID),
        exitCode: i32(EXIT_CODE),
        exitSignal: i32(EXIT_SIGNAL),
        parentPid: i32(EXIT_PARENT_PID),
        parentTgid: i32(EXIT_PARENT_TGID),
      };
    default:
      return undefined; // exec, uid, comm, ...: not ours to use, not malformed
  }
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
