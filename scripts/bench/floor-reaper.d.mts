import type { Libc } from "../../src/libc.ts";

export interface FloorReaper {
  readonly source: "floor";
  /** The daemon's own child: never reaped here. */
  leave(pid: number): void;
  stats(): { reaped: number; reapedBySource: Record<string, number> };
  stop(): Promise<void>;
}

export function startFloorReaper(
  libc: Libc,
  wait: { P_ALL: number; P_PID: number; WEXITED: number; WNOHANG: number; WNOWAIT: number; __WNOTHREAD: number },
): FloorReaper;
