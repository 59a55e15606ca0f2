import { describe, expect, test } from "bun:test";
import { classifyZombie, isLoopLate, judgeZombie, LATE_LOOP_THRESHOLD_MS, type ProvenanceFacts } from "../src/policy.ts";

const noFacts: ProvenanceFacts = {
  runtimeHoldsPidfd: false,
  forkedBySelf: undefined,
  runtimeMarksChildrenWithPidfd: false,
  predatesMarking: false,
  alwaysGrace: false,
};

describe("classifyZombie", () => {
  test("a zombie the runtime holds a pidfd on is the runtime's, whatever else is known", () => {
    expect(classifyZombie({ ...noFacts, runtimeHoldsPidfd: true })).toBe("runtime");
    expect(classifyZombie({ ...noFacts, runtimeHoldsPidfd: true, forkedBySelf: false })).toBe("runtime");
    expect(classifyZombie({ ...noFacts, runtimeHoldsPidfd: true, runtimeMarksChildrenWithPidfd: true })).toBe("runtime");
  });
  test("proven not forked by us is adopted", () => {
    expect(classifyZombie({ ...noFacts, forkedBySelf: false })).toBe("adopted");
  });
  test("forked by us but not held by the runtime is unknown (a native waiter may own it)", () => {
    expect(classifyZombie({ ...noFacts, forkedBySelf: true, runtimeMarksChildrenWithPidfd: true })).toBe("unknown");
  });
  test("no pidfd held is adopted only where the runtime is known to mark its children", () => {
    expect(classifyZombie({ ...noFacts, runtimeMarksChildrenWithPidfd: true })).toBe("adopted");
    expect(classifyZombie(noFacts)).toBe("unknown");
  });
  test("a child from before marking began is not proven adopted by its missing mark, only by the proc connector", () => {
    expect(classifyZombie({ ...noFacts, runtimeMarksChildrenWithPidfd: true, predatesMarking: true })).toBe("unknown");
    expect(classifyZombie({ ...noFacts, runtimeMarksChildrenWithPidfd: true, predatesMarking: true, forkedBySelf: false })).toBe("adopted");
    expect(classifyZombie({ ...noFacts, runtimeHoldsPidfd: true, predatesMarking: true })).toBe("runtime");
  });
  test("alwaysGrace turns every proof into the grace rule", () => {
    expect(classifyZombie({ ...noFacts, forkedBySelf: false, alwaysGrace: true })).toBe("unknown");
    expect(classifyZombie({ ...noFacts, runtimeMarksChildrenWithPidfd: true, alwaysGrace: true })).toBe("unknown");
  });
});

describe("judgeZombie", () => {
  const clock = { firstSeenAt: 1000, loopLateAt: -Infinity, now: 1000, graceMs: 500 };
  test("runtime zombies are left, adopted ones reaped at once", () => {
    expect(judgeZombie("runtime", clock)).toEqual({ action: "leave" });
    expect(judgeZombie("adopted", clock)).toEqual({ action: "reap" });
  });
  test("unknown zombies wait out the grace window", () => {
    expect(judgeZombie("unknown", clock)).toEqual({ action: "wait", until: 1500 });
    expect(judgeZombie("unknown", { ...clock, now: 1499 })).toEqual({ action: "wait", until: 1500 });
    expect(judgeZombie("unknown", { ...clock, now: 1500 })).toEqual({ action: "reap" });
  });
  test("a late event loop restarts the window: the runtime gets another round first", () => {
    expect(judgeZombie("unknown", { ...clock, now: 1600, loopLateAt: 1450 })).toEqual({ action: "wait", until: 1950 });
    expect(judgeZombie("unknown", { ...clock, now: 1950, loopLateAt: 1450 })).toEqual({ action: "reap" });
  });
  test("graceMs 0 reaps unknown zombies on sight", () => {
    expect(judgeZombie("unknown", { ...clock, graceMs: 0 })).toEqual({ action: "reap" });
  });
});

test("isLoopLate compares a timer's lateness with the threshold", () => {
  expect(isLoopLate(100, 100 + LATE_LOOP_THRESHOLD_MS)).toBe(false);
  expect(isLoopLate(100, 101 + LATE_LOOP_THRESHOLD_MS)).toBe(true);
});
