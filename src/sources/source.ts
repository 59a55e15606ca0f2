/**
 * What an event source is to the rest of the reaper. A source only wakes the
 * core (src/core.ts); the core alone decides and reaps, so every source shares
 * one policy and one reap path. The proc connector (src/sources/netlink.ts)
 * is not a waker: the core drains it on each wake-up.
 */
import type { SourceName } from "../types.ts";

export interface EventSource {
  readonly name: SourceName;
  /** Idempotent: clears timers, listeners and fds the source opened. */
  stop(): void;
}
