import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import fixture from "../fixtures/proc-events.json";
import {
  CN_IDX,
  CN_LEN,
  NLMSG_HDRLEN,
  NLMSG_LEN,
  NLMSG_PID,
  NLMSG_TYPE,
  PROC_CN_MCAST_IGNORE,
  PROC_CN_MCAST_LISTEN,
  PROC_EVENT_EXIT,
  PROC_EVENT_FORK,
  PROC_EVENT_OFFSET,
} from "../../src/netlink/constants.ts";
import { formatSubscription, parseProcEvents } from "../../src/netlink/structs.ts";

const bytes = (hex: string) => new Uint8Array(Buffer.from(hex, "hex"));
const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
/** A copy of `hex` with one u32/u16 field changed. */
function patched(hex: string, offset: number, value: number, size: 2 | 4 = 4): Uint8Array {
  const copy = bytes(hex);
  const view = new DataView(copy.buffer);
  if (size === 4) view.setUint32(offset, value, true);
  else view.setUint16(offset, value, true);
  return copy;
}

describe("parseProcEvents on bytes captured from the kernel", () => {
  test("the subscription ack carries our nonce + 1 and no error", () => {
    const { events, malformed } = parseProcEvents(bytes(fixture.ack));
    expect(malformed).toEqual([]);
    expect(events).toEqual([expect.objectContaining({ type: "ack", err: 0, ack: fixture.nonce + 1 })]);
  });

  test("a fork names the parent and the new process", () => {
    const [event] = parseProcEvents(bytes(fixture.forkOfExit3.hex)).events;
    expect(event).toMatchObject({
      type: "fork",
      parentTgid: fixture.exit3.parent,
      childPid: fixture.forkOfExit3.pid,
      childTgid: fixture.forkOfExit3.pid,
    });
  });

  test("exit(3) reads as wait status 768 with its parent", () => {
    const [event] = parseProcEvents(bytes(fixture.exit3.hex)).events;
    expect(event).toMatchObject({
      type: "exit",
      pid: fixture.exit3.pid,
      tgid: fixture.exit3.pid,
      exitCode: 3 << 8,
      exitSignal: 17, // SIGCHLD, the signal the parent gets
      parentTgid: fixture.exit3.parent,
    });
    expect(event?.type === "exit" && event.timestampNs > 0).toBe(true);
  });

  test("a SIGKILLed process reads as wait status 9", () => {
    const [event] = parseProcEvents(bytes(fixture.sigkill.hex)).events;
    expect(event).toMatchObject({ type: "exit", pid: fixture.sigkill.pid, exitCode: 9 });
  });

  test("a chunk holding several datagrams yields every event", () => {
    const chunk = bytes(fixture.multiDatagramChunk);
    const { events, malformed } = parseProcEvents(chunk);
    expect(malformed).toEqual([]);
    expect(events.length).toBe(chunk.byteLength / 76);
  });

  test("messages concatenated by hand parse in order", () => {
    const { events } = parseProcEvents(concat(bytes(fixture.ack), bytes(fixture.exit3.hex), bytes(fixture.sigkill.hex)));
    expect(events.map((e) => e.type)).toEqual(["ack", "exit", "exit"]);
  });
});

describe("parseProcEvents on broken bytes", () => {
  const exit = fixture.exit3.hex;

  test("a truncated datagram is malformed, not thrown", () => {
    const result = parseProcEvents(bytes(exit).subarray(0, 50));
    expect(result.events).toEqual([]);
    expect(result.malformed).toEqual([expect.stringContaining("nlmsg_len 76")]);
  });

  test("trailing bytes shorter than a header are reported after the good message", () => {
    const result = parseProcEvents(concat(bytes(exit), new Uint8Array(7)));
    expect(result.events).toHaveLength(1);
    expect(result.malformed).toEqual([expect.stringContaining("7 trailing bytes")]);
  });

  test("nlmsg_len smaller than a header stops the walk", () => {
    expect(parseProcEvents(patched(exit, NLMSG_LEN, 8)).malformed).toEqual([expect.stringContaining("nlmsg_len 8")]);
  });

  test("cn_msg.len larger than the message is malformed", () => {
    const result = parseProcEvents(patched(exit, NLMSG_HDRLEN + CN_LEN, 200, 2));
    expect(result.malformed).toEqual([expect.stringContaining("cn_msg.len 200")]);
  });

  test("cn_msg.len too short for an exit event is malformed", () => {
    const result = parseProcEvents(patched(exit, NLMSG_HDRLEN + CN_LEN, 20, 2));
    expect(result.malformed).toEqual(["exit event is truncated"]);
  });

  test("another connector id is malformed", () => {
    const result = parseProcEvents(patched(exit, NLMSG_HDRLEN + CN_IDX, 7));
    expect(result.malformed).toEqual([expect.stringContaining("connector id 7:1")]);
  });

  test("a sender port other than the kernel's is malformed, and the next message still parses", () => {
    const result = parseProcEvents(concat(patched(exit, NLMSG_PID, 4242), bytes(fixture.sigkill.hex)));
    expect(result.malformed).toEqual([expect.stringContaining("sender port 4242")]);
    expect(result.events).toEqual([expect.objectContaining({ pid: fixture.sigkill.pid })]);
  });

  test("an nlmsg_type other than NLMSG_DONE is malformed", () => {
    expect(parseProcEvents(patched(exit, NLMSG_TYPE, 2, 2)).malformed).toEqual([expect.stringContaining("nlmsg_type 2")]);
  });

  test("an unknown event type is skipped, neither event nor malformed", () => {
    const exec = 0x00000002;
    expect(parseProcEvents(patched(exit, PROC_EVENT_OFFSET, exec))).toEqual({ events: [], malformed: [] });
  });

  test("random bytes never throw", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (random) => {
        const result = parseProcEvents(random);
        return Array.isArray(result.events) && Array.isArray(result.malformed);
      }),
      { numRuns: 5000 },
    );
  });

  test("real messages with random bytes flipped never throw", () => {
    const real = concat(bytes(fixture.exit3.hex), bytes(fixture.ack));
    fc.assert(
      fc.property(fc.nat(real.byteLength - 1), fc.integer({ min: 0, max: 255 }), (at, value) => {
        const copy = real.slice();
        copy[at] = value;
        parseProcEvents(copy);
        return true;
      }),
      { numRuns: 3000 },
    );
  });
});

describe("formatSubscription", () => {
  test("the plain op is a 40-byte message the parser's own layout accepts", () => {
    const message = formatSubscription(PROC_CN_MCAST_LISTEN, undefined, { ack: 9 });
    const view = new DataView(message.buffer);
    expect(message.byteLength).toBe(40);
    expect(view.getUint32(NLMSG_LEN, true)).toBe(40);
    expect(view.getUint16(NLMSG_HDRLEN + CN_LEN, true)).toBe(4);
    expect(view.getUint32(NLMSG_HDRLEN + 12, true)).toBe(9);
    expect(view.getUint32(PROC_EVENT_OFFSET, true)).toBe(PROC_CN_MCAST_LISTEN);
  });

  test("with an event mask it carries the 8-byte proc_input", () => {
    const message = formatSubscription(PROC_CN_MCAST_IGNORE, PROC_EVENT_EXIT | PROC_EVENT_FORK);
    const view = new DataView(message.buffer);
    expect(message.byteLength).toBe(44);
    expect(view.getUint16(NLMSG_HDRLEN + CN_LEN, true)).toBe(8);
    expect(view.getUint32(PROC_EVENT_OFFSET, true)).toBe(PROC_CN_MCAST_IGNORE);
    expect(view.getUint32(PROC_EVENT_OFFSET + 4, true)).toBe(0x80000001);
  });
});
