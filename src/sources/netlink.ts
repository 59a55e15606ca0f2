/**
 * The proc connector event source: the kernel tells us, from Bun's own event
 * loop, each time a child of ours exits, with its wait status and exit time,
 * so an adopted orphan is reaped within a millisecond and the runtime's own
 * children are told apart from orphans by their FORK events.
 *
 * The probe decides by evidence, not by kernel version: our namespaces,
 * each socket step's errno, the kernel's ack to our subscription, and finally
 * the exit event of a child spawned for the purpose.
 */
import { hasErrnoCode } from "../errno.ts";
import { countFdsLinkedTo, INITIAL_NAMESPACE_INODE, readFdLink, readNamespaceInode, readTaskChildren } from "../procfs.ts";
import { ChildProvenance } from "../netlink/provenance.ts";
import {
  attachOwnChildrenFilter,
  narrowToForkAndExit,
  openProcConnectorSocket,
  sendIgnore,
  sendListen,
  setReceiveBuffer,
} from "../netlink/socket.ts";
import { parseProcEvents, type AckEvent, type ExitEvent, type ProcEvent } from "../netlink/structs.ts";
import type { EventSource, ProbeResult, ReaperCore } from "./source.ts";

export interface NetlinkSourceOptions {
  /** How long to wait for the kernel's ack, then for the test child's exit event. @default 100 */
  readonly selfTestTimeoutMs?: number;
  /** Receive queue to ask for; the kernel caps it at net.core.rmem_max without CAP_NET_ADMIN. @default 4 MiB */
  readonly receiveBufferBytes?: number;
  /** Exited children remembered for provenance. @default 65536 */
  readonly maxExitedChildren?: number;
  /** Overruns closer together than this are one burst, logged once. @default 1000 */
  readonly overrunQuietMs?: number;
}

const DEFAULTS = {
  selfTestTimeoutMs: 100,
  receiveBufferBytes: 4 * 1024 * 1024,
  maxExitedChildren: 65_536,
  overrunQuietMs: 1000,
} as const satisfies Required<NetlinkSourceOptions>;

/** How long stop() waits for Bun to close its duplicate of the socket. */
const DUPLICATE_CLOSE_WAIT_MS = 250;

type Settings = { readonly [K in keyof typeof DEFAULTS]: number };

export async function probeNetlinkSource(core: ReaperCore, options: NetlinkSourceOptions = {}): Promise<ProbeResult> {
  const settings: Settings = { ...DEFAULTS, ...options };
  const namespaceReason = foreignNamespaceReason();
  if (namespaceReason) return { ok: false, reason: namespaceReason };
  // TEMPORARY (seam branch): this reader is Bun.file(fd).stream(); drop this line with the core branch's recvfrom reader.
  if (!process.versions.bun) return { ok: false, reason: "this build reads the proc connector with Bun.file(fd).stream(), which Node.js does not have" };

  let fd: number;
  try {
    fd = openProcConnectorSocket(core.libc);
  } catch (error) {
    return { ok: false, reason: describeSocketError(error) };
  }
  const source = new NetlinkSource(core, fd, settings);
  const failure = await source.subscribeAndSelfTest();
  if (failure === undefined) return { ok: true, source };
  await source.stop();
  return { ok: false, reason: failure };
}

/**
 * The kernel ignores subscriptions, without a reply, from outside the initial
 * PID and user namespaces (and its PIDs would not be ours). /proc/self/ns/*
 * tells, whichever /proc is mounted; NSpid does not: under a /proc mounted by
 * the inner namespace it shows one number (measured with unshare --mount-proc).
 */
function foreignNamespaceReason(): string | undefined {
  for (const kind of ["pid", "user"] as const) {
    const inode = readNamespaceInode(kind);
    const initial = INITIAL_NAMESPACE_INODE[kind];
    if (inode !== initial)
      return `not in the initial ${kind} namespace (${kind}:[${inode}], the initial one is ${kind}:[${initial}]): the proc connector ignores subscriptions from there`;
  }
  return undefined;
}

function describeSocketError(error: unknown): string {
  if (hasErrnoCode(error, "EPROTONOSUPPORT", "EAFNOSUPPORT"))
    return `kernel without the netlink connector (CONFIG_CONNECTOR): ${error.syscall}: ${error.code}`;
  if (hasErrnoCode(error, "ECONNREFUSED"))
    return `the proc connector exists only in the initial network namespace (${error.syscall}: ECONNREFUSED)`;
  if (hasErrnoCode(error, "EPERM", "EACCES"))
    return `not permitted to use the proc connector (${error.syscall}: ${error.code}); before Linux 6.6 it needs CAP_NET_ADMIN`;
  return `proc connector socket failed: ${error instanceof Error ? error.message : String(error)}`;
}

/** The exit time, moved from CLOCK_MONOTONIC to performance.now(). */
function monotonicOffsetMs(core: ReaperCore): number {
  const before = performance.now();
  const monotonicMs = Number(core.libc.monotonicNs() / 1000n) / 1000;
  return monotonicMs - (before + performance.now()) / 2;
}

class NetlinkSource implements EventSource {
  readonly name = "netlink" as const;
  readonly #core: ReaperCore;
  readonly #fd: number;
  readonly #settings: Settings;
  readonly #log: ReaperCore["logger"];
  readonly #provenance: ChildProvenance;
  readonly #selfPid: number;
  readonly #clockOffsetMs: number;
  readonly #nonce = (Math.random() * 0xffff_fffe) >>> 0;
  #reader: { cancel(): Promise<void> } | undefined;
  #reading: Promise<void> | undefined;
  #subscribed = false;
  /** What the kernel granted for the receive queue (it doubles the request). */
  #receiveBufferBytes = 0;
  #stopped = false;
  #closed: Promise<void> | undefined;
  #lastOverrunAt = -Infinity;
  #ackWaiter: ((ack: AckEvent) => void) | undefined;
  #exitWaiters = new Map<number, () => void>();

  constructor(core: ReaperCore, fd: number, settings: Settings) {
    this.#core = core;
    this.#fd = fd;
    this.#settings = settings;
    this.#log = core.logger.child({ source: "netlink" });
    this.#provenance = new ChildProvenance(settings.maxExitedChildren);
    this.#selfPid = core.selfPid;
    this.#clockOffsetMs = monotonicOffsetMs(core);
  }

  forkedBySelf(pid: number): boolean | undefined {
    return this.#provenance.forkedBySelf(pid);
  }

  /** Undefined when events flow, else why not. */
  async subscribeAndSelfTest(): Promise<string | undefined> {
    const { libc } = this.#core;
    const timeoutMs = this.#settings.selfTestTimeoutMs;
    try {
      this.#receiveBufferBytes = setReceiveBuffer(libc, this.#fd, this.#settings.receiveBufferBytes);
      this.#log.debug({ receiveBufferBytes: this.#receiveBufferBytes }, "proc connector receive buffer");
      attachOwnChildrenFilter(libc, this.#fd, this.#selfPid);
    } catch (error) {
      return describeSocketError(error);
    }
    this.#reading = this.#readUntilStopped();
    const ack = this.#waitFor<AckEvent>((resolve) => (this.#ackWaiter = resolve), timeoutMs);
    try {
      sendListen(libc, this.#fd, this.#nonce);
    } catch (error) {
      return describeSocketError(error);
    }
    const answer = await ack;
    if (!answer)
      return `no subscription ack within ${timeoutMs} ms: the kernel ignored it or has no CONFIG_PROC_EVENTS`;
    this.#subscribed = true;
    if (answer.err !== 0)
      return `the kernel refused the subscription with errno ${answer.err}; before Linux 6.6 it needs CAP_NET_ADMIN`;
    try {
      narrowToForkAndExit(libc, this.#fd);
    } catch (error) {
      return describeSocketError(error);
    }
    for (const pid of (readTaskChildren() ?? [])) this.#provenance.recordUnknown(pid);
    return this.#selfTest(timeoutMs);
  }

  /** Spawns a child and waits for its exit event to pass the filter. */
  async #selfTest(timeoutMs: number): Promise<string | undefined> {
    const child = Bun.spawn(["true"], { stdio: ["ignore", "ignore", "ignore"] });
    const seen = await this.#waitFor<true>((resolve) => this.#exitWaiters.set(child.pid, () => resolve(true)), timeoutMs);
    this.#exitWaiters.delete(child.pid);
    await child.exited;
    if (seen) return undefined;
    return `no exit event within ${timeoutMs} ms (subscription ignored? kernel without CONFIG_PROC_EVENTS?)`;
  }

  #waitFor<T>(register: (resolve: (value: T) => void) => void, timeoutMs: number): Promise<T | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      register((value) => {
        clearTimeout(timer);
        resolve(value);
      });
    });
  }

  async #readUntilStopped(): Promise<void> {
    // Bun's stream ends with an error on ENOBUFS but leaves the fd open: a
    // new stream over the same fd carries on (measured).
    while (!this.#stopped) {
      const reader = Bun.file(this.#fd).stream().getReader();
      this.#reader = reader;
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done || this.#stopped) break;
          this.#handleChunk(value);
        }
        if (this.#stopped) return;
        this.#log.error("proc connector stream ended; netlink source stops, other sources must carry on");
        this.#core.requestScan("netlink", "netlink stream ended");
        return;
      } catch (error) {
        if (this.#stopped) return;
        // Bun's own SystemError, not an ErrnoError: it carries the same code.
        if ((error as { code?: unknown } | undefined)?.code !== "ENOBUFS") {
          this.#log.error({ err: error }, "proc connector read failed; netlink source stops, other sources must carry on");
          this.#core.requestScan("netlink", "netlink read failed");
          return;
        }
        this.#handleOverrun();
      }
    }
  }

  #handleChunk(chunk: Uint8Array): void {
    const { events, malformed } = parseProcEvents(chunk);
    for (const reason of malformed) {
      this.#core.count("malformed");
      this.#log.debug({ reason }, "skipped a malformed proc connector message");
    }
    // A malformed message may have been one of our exits.
    if (malformed.length > 0) this.#core.requestScan("netlink", "malformed proc event");
    for (const event of events) this.#handleEvent(event);
  }

  #handleEvent(event: ProcEvent): void {
    if (event.type === "ack") {
      if (event.ack === ((this.#nonce + 1) >>> 0)) this.#ackWaiter?.(event);
    } else if (event.type === "fork") {
      if (event.parentTgid === this.#selfPid && event.childPid === event.childTgid)
        this.#provenance.recordFork(event.childPid);
    } else if (event.pid === event.tgid && event.parentTgid === this.#selfPid) {
      this.#handleChildExit(event);
    }
  }

  #handleChildExit(event: ExitEvent): void {
    this.#exitWaiters.get(event.pid)?.();
    const origin = this.#provenance.recordExit(event.pid);
    if (origin === "adopted") {
      const exitedAt = Number(event.timestampNs / 1000n) / 1000 - this.#clockOffsetMs;
      this.#core.noteExit({ pid: event.pid, waitStatus: event.exitCode, exitedAt, adopted: true });
    }
    // The kernel reparents the exiting process's children (zombies too) to
    // us before it sends this event: look for them now.
    this.#core.requestScan("netlink", "child exited; its orphans are ours now");
  }

  #handleOverrun(): void {
    const now = performance.now();
    const burstStarted = now - this.#lastOverrunAt > this.#settings.overrunQuietMs;
    this.#lastOverrunAt = now;
    this.#core.count("overruns");
    // FORK events were lost too: children forked meanwhile are of unknown origin.
    for (const pid of (readTaskChildren() ?? [])) this.#provenance.recordUnknown(pid);
    this.#core.requestScan("netlink", "overrun");
    const receiveBufferBytes = this.#receiveBufferBytes;
    const message =
      "proc connector events were lost (ENOBUFS: receive queue full); scanning for zombies instead. " +
      "Raise receiveBufferBytes (above net.core.rmem_max needs CAP_NET_ADMIN) or keep the event loop from blocking";
    if (burstStarted) this.#log.warn({ receiveBufferBytes }, message);
    else this.#log.debug({ receiveBufferBytes }, message);
  }

  stop(): Promise<void> {
    this.#stopped = true;
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    if (this.#subscribed) {
      try {
        sendIgnore(this.#core.libc, this.#fd);
      } catch (error) {
        this.#log.debug({ err: error }, "unsubscribe failed; closing the socket drops the subscription too");
      }
    }
    const socket = readFdLink(this.#fd);
    await this.#reader?.cancel().catch(() => undefined);
    await this.#reading;
    // Bun's stream reads through its own duplicate of the fd and closes it a
    // moment after cancel: wait for that (bounded), so stop() leaves no fd.
    for (let waited = 0; socket && waited < DUPLICATE_CLOSE_WAIT_MS && countFdsLinkedTo(socket) > 1; waited += 1) {
      await Bun.sleep(1);
    }
    this.#core.libc.close(this.#fd);
  }
}
