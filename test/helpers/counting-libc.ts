/** The real libc, with each call counted by name (waitid by id type): for tests that bound what a reap costs. */
import { P_ALL, P_PID, P_PIDFD, type Libc } from "../../src/libc.ts";

const ID_TYPES: Record<number, string> = { [P_ALL]: "P_ALL", [P_PID]: "P_PID", [P_PIDFD]: "P_PIDFD" };

export function countingLibc(libc: Libc): { libc: Libc; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const count = (name: string) => calls.set(name, (calls.get(name) ?? 0) + 1);
  const counted = new Proxy(libc, {
    get(target, name: string) {
      const value = Reflect.get(target, name) as unknown;
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        count(name === "waitid" ? `waitid(${ID_TYPES[args[0] as number]})` : name);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { libc: counted, calls };
}

/** The calls a runtime-pidfd look makes about fds (polls, and asking one which child it names), of those counted. */
export function fdCallsOf(calls: ReadonlyMap<string, number>): number {
  return ["readableAmong", "readableBelow", "waitablePidOfFd"].reduce((sum, name) => sum + (calls.get(name) ?? 0), 0);
}
