import { expect, test } from "bun:test";
import { ChildProvenance } from "../../src/netlink/provenance.ts";

/** The process of an EXIT has ended (the usual case); `runsOn` says it lives on: the EXIT was its leader thread's. */
const ended = () => false;
const runsOn = () => true;

test("a child we forked is ours before and after its exit", () => {
  const provenance = new ChildProvenance(10);
  provenance.recordFork(100);
  expect(provenance.forkedBySelf(100)).toBe(true);
  expect(provenance.recordExit(100, ended)).toBe("self");
  expect(provenance.forkedBySelf(100)).toBe(true); // its zombie is still the runtime's
});

test("an exit without a fork before it is an adopted orphan", () => {
  const provenance = new ChildProvenance(10);
  expect(provenance.recordExit(200, ended)).toBe("adopted");
  expect(provenance.forkedBySelf(200)).toBe(false);
});

test("a PID never seen is unknown, not 'not ours': its FORK event may be unread", () => {
  expect(new ChildProvenance(10).forkedBySelf(300)).toBeUndefined();
});

test("children found in /proc before the subscription stay unknown through their exit", () => {
  const provenance = new ChildProvenance(10);
  provenance.recordUnknown(400);
  expect(provenance.forkedBySelf(400)).toBeUndefined();
  expect(provenance.recordExit(400, ended)).toBe("unknown");
  expect(provenance.forkedBySelf(400)).toBeUndefined();
});

test("a second exit of a PID that exited as an orphan's is another orphan's", () => {
  const provenance = new ChildProvenance(10);
  provenance.recordExit(500, ended);
  expect(provenance.recordExit(500, ended)).toBe("adopted");
  expect(provenance.forkedBySelf(500)).toBe(false);
});

test("a second exit of a PID that exited as ours is unknown: a reused PID, or ours again after an exec from a thread", () => {
  const provenance = new ChildProvenance(10);
  provenance.recordFork(510);
  provenance.recordExit(510, ended);
  expect(provenance.recordExit(510, ended)).toBe("unknown");
  expect(provenance.forkedBySelf(510)).toBeUndefined();
  provenance.recordUnknown(520);
  provenance.recordExit(520, ended);
  expect(provenance.recordExit(520, ended)).toBe("unknown");
});

test("a leader thread's exit while its process runs on is no exit: the process stays ours however many exits follow", () => {
  const provenance = new ChildProvenance(2);
  provenance.recordFork(530);
  expect(provenance.recordExit(530, runsOn)).toBe("lives-on");
  expect(provenance.forkedBySelf(530)).toBe(true);
  for (const pid of [1, 2, 3]) provenance.recordExit(pid, ended); // more exits than are remembered
  expect(provenance.recordExit(530, ended)).toBe("self");
  // Asked only of a child not seen exiting: an orphan's exit costs no question.
  let asked = 0;
  provenance.recordExit(540, () => ++asked > 0);
  expect(asked).toBe(0);
});

test("a FORK event outranks an earlier /proc snapshot, and a reused PID forked by us is ours again", () => {
  const provenance = new ChildProvenance(10);
  provenance.recordUnknown(600);
  provenance.recordFork(600);
  expect(provenance.forkedBySelf(600)).toBe(true);
  provenance.recordExit(700, ended);
  provenance.recordFork(700);
  expect(provenance.forkedBySelf(700)).toBe(true);
});

test("exited entries are bounded, oldest exit forgotten first", () => {
  const provenance = new ChildProvenance(2);
  for (const pid of [1, 2, 3]) {
    provenance.recordFork(pid);
    provenance.recordExit(pid, ended);
  }
  expect([1, 2, 3].map((pid) => provenance.forkedBySelf(pid))).toEqual([undefined, true, true]);
});

test("a PID seen exiting, found in /proc again (after lost events), is unknown: it may be a child whose FORK was lost", () => {
  const provenance = new ChildProvenance(10);
  expect(provenance.recordExit(800, ended)).toBe("adopted");
  provenance.recordUnknown(800); // the PID, reused by a fork whose event the kernel dropped
  expect(provenance.forkedBySelf(800)).toBeUndefined();
  expect(provenance.recordExit(800, ended)).toBe("unknown");
});

test("a zombie of ours, listed again after lost events, stays ours: the runtime's to reap", () => {
  const provenance = new ChildProvenance(10);
  provenance.recordFork(900);
  expect(provenance.recordExit(900, ended)).toBe("self");
  provenance.recordUnknown(900);
  expect(provenance.forkedBySelf(900)).toBe(true);
});
