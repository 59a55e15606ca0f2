import type { Libc } from "../../src/libc.ts";
import type * as events from "../../src/netlink/constants.ts";
import type * as socket from "../../src/netlink/socket.ts";

export interface FloorReaper {
  readonly source: "floor" | "netlink floor";
  /** The daemon's own child: never reaped here. */
  leave(pid: number): void;
  stats(): { reaped: number; reapedBySource: Record<string, number> };
  stop(): Promise<void>;
}

type WaitConstants = { P_ALL: number; P_PID: number; WEXITED: number; WNOHANG: number; WNOWAIT: number; __WNOTHREAD: number };

export function startFloorReaper(libc: Libc, wait: WaitConstants): FloorReaper;

export function startNetlinkFloorReaper(libc: Libc, wait: WaitConstants, netlinkSocket: typeof socket, netlinkEvents: typeof events): FloorReaper;
