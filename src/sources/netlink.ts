/**
 * The proc connector source: the kernel queues a FORK event for each child
 * this process forks and an EXIT event, with wait status and exit time, for
 * each child of ours that exits. The core drains the socket on every
 * SIGCHLD, on the sweep, and after pinning zombies, before judging them:
 * a child's FORK event is queued before the child can run, so once drained,
 * "forked by us" is known for every zombie there is. An EXIT with no FORK
 * before it is an adopted orphan's, proven.
 *
 * Reading is recvfrom(2) through the libc seam, no runtime-specific reader:
 * it gives the sender's address, and only the kernel (port 0) is believed.
 *
 * The probe decides by evidence: our namespaces, each socket step's errno,
 * the kernel's ack (queued before our send returns), and the FORK and EXIT
 * events of a child spawned for the purpose. Its FORK is queued before it
 * runs; its EXIT only after the runtime may have seen it exit: do_exit()
 * notifies the parent (exit_notify) before the proc connector.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { hasErrnoCode, messageOf } from "../errno.ts";
import type { Libc } from "../libc.ts";
import { RateLimitedLog } from "../log.ts";
import { monotonicOffsetMs, monotonicToNowMs } from "../netlink/clock.ts";
import { SOCKADDR_NL_PORT, SOCKADDR_NL_SIZE } from "../netlink/constants.ts";
import { ChildProvenance } from "../netlink/provenance.ts";
import {
  ackTo,
  attachOwnChildrenFilter,
  describeSocketError,
  joinProcEvents,
  narrowToForkAndExit,
  openProcConnectorSocket,
  sendIgnore,
  sendListen,
  setReceiveBuffer,
} from "../netlink/socket.ts";
import { ProcEventParser, type ProcEventSink } from "../netlink/structs.ts";
import { INITIAL_NAMESPACE_INODE, listAllChildrenNow, readNamespaceInode } from "../procfs.ts";
import { runRuntimeBinary } from "../runtime/index.ts";
import type { ExitNotice } from "../types.ts";
import { isChildRunning } from "../zombie.ts";
import type { EventSource } from "./source.ts";

export interface NetlinkSettings {
  /** How long the self-test waits for its child to exit. */
  readonly selfTestTimeoutMs: number;
  /** Receive queue to ask for; the kernel caps it at net.core.rmem_max without CAP_NET_ADMIN. */
  readonly receiveBufferBytes: number;
}

/** What one drain of the socket found; valid until the next drain, which reuses it. */
export type Drained = Readonly<DrainFindings>;

interface DrainFindings {
  /** Exits of adopted orphans (no FORK by us before the EXIT), reapable at once. */
  adoptedExits: ExitNotice[];
  /** Exits of children we forked, or whose fork we did not see: the runtime's to reap, or the grace rule's. */
  ownExits: ExitNotice[];
  /** Events were lost (ENOBUFS): only a scan finds what they said. */
  overrun: boolean;
  malformed: number;
  /** Datagrams not sent by the kernel, ignored. */
  forged: number;
  /** The drain stopped at its bound with datagrams still queued. */
  more: boolean;
}

export type NetlinkProbe =
  | { readonly ok: true; readonly source: NetlinkSource }
  | { readonly ok: false; readonly reason: string; readonly retryable: boolean };

/** Exited children remembered for provenance. */
const MAX_EXITED_CHILDREN = 65_536;
/** Datagrams read in one drain before the loop gets a turn (one proc event is 76 bytes). */
const DATAGRAMS_PER_DRAIN = 4096;
const DATAGRAM_BYTES = 8192;
/** How often the self-test looks again for the probe child's EXIT once the child has exited. */
const EXIT_EVENT_RECHECK_MS = 2;
/** Probe child: the runtime's own executable, always present (PATH may be empty). */
const PROBE_CHILD_ARGS = ["--version"];

export async function probeNetlinkSource(libc: Libc, logger: Logger, settings: NetlinkSettings): Promise<NetlinkProbe> {
  const namespaceReason = foreignNamespaceReason();
  if (namespaceReason) return { ok: false, reason: namespaceReason, retryable: false };
  let fd: number;
  try {
    fd = openProcConnectorSocket(libc);
  } catch (error) {
    return { ok: false, reason: describeSocketError(error), retryable: false };
  }
  const source = new NetlinkSource(libc, fd, logger);
  const failure = await source.subscribeAndSelfTest(settings);
  if (failure === undefined) return { ok: true, source };
  source.stop();
  return { ok: false, ...failure };
}

/**
 * The kernel ignores subscriptions, without a reply, from outside the initial
 * PID and user namespaces (and its PIDs would not be ours). /proc/self/ns/*
 * tells, whichever /proc is mounted; NSpid does not.
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

export class NetlinkSource implements EventSource {
  readonly name = "netlink";
  readonly #libc: Libc;
  readonly #fd: number;
  readonly #log: Logger;
  readonly #warnings: RateLimitedLog;
  readonly #provenance = new ChildProvenance(MAX_EXITED_CHILDREN);
  readonly #selfPid: number;
  readonly #clockOffsetMs: number;
  readonly #nonce = (Math.random() * 0xffff_fffe) >>> 0;
  readonly #datagram = new Uint8Array(DATAGRAM_BYTES);
  readonly #parser = new ProcEventParser(this.#datagram);
  readonly #sender = new Uint8Array(SOCKADDR_NL_SIZE);
  readonly #senderWords = new Uint32Array(this.#sender.buffer);
  #ackError: number | undefined;
  /** ENOBUFS was read and the queue not yet read empty: the kernel is dropping events, or dropped some just now. */
  #congested = false;
  /** The last drain's findings, reused: one per exit is made otherwise. The parser's sink writes into it. */
  readonly #drained: DrainFindings = { adoptedExits: [], ownExits: [], overrun: false, malformed: 0, forged: 0, more: false };
  #subscribed = false;
  #receiveBufferBytes = 0;
  #closed = false;

  constructor(libc: Libc, fd: number, logger: Logger) {
    this.#libc = libc;
    this.#fd = fd;
    this.#log = logger.child({ source: "netlink" });
    this.#warnings = new RateLimitedLog(this.#log);
    this.#selfPid = libc.getpid();
    this.#clockOffsetMs = monotonicOffsetMs(libc);
  }

  /** True when this process forked `pid`, false when it surely did not, undefined when unknown. */
  forkedBySelf(pid: number): boolean | undefined {
    return this.#provenance.forkedBySelf(pid);
  }

  /** Undefined when events flow, else why not. */
  async subscribeAndSelfTest(settings: NetlinkSettings): Promise<{ reason: string; retryable: boolean } | undefined> {
    const libc = this.#libc;
    try {
      this.#receiveBufferBytes = setReceiveBuffer(libc, this.#fd, settings.receiveBufferBytes);
      attachOwnChildrenFilter(libc, this.#fd, this.#selfPid, this.#nonce);
      joinProcEvents(libc, this.#fd);
      sendListen(libc, this.#fd, this.#nonce);
    } catch (error) {
      return { reason: describeSocketError(error), retryable: false };
    }
    // The kernel handles the request inside send(): its ack, if any, is queued by now.
    this.drain();
    if (this.#ackError === undefined)
      return { reason: "the kernel did not answer the subscription: it ignored it (foreign namespace?) or has no CONFIG_PROC_EVENTS", retryable: false };
    this.#subscribed = true;
    if (this.#ackError !== 0)
      return { reason: `the kernel refused the subscription with errno ${this.#ackError}; before Linux 6.6 it needs CAP_NET_ADMIN`, retryable: false };
    try {
      narrowToForkAndExit(libc, this.#fd);
    } catch (error) {
      return { reason: describeSocketError(error), retryable: false };
    }
    this.#log.debug({ receiveBufferBytes: this.#receiveBufferBytes }, "proc connector subscribed");
    try {
      this.#recordChildrenUnknown();
    } catch (error) {
      return { reason: `cannot list this process's children: ${messageOf(error)}`, retryable: false };
    }
    return this.#selfTest(settings.selfTestTimeoutMs);
  }

  /**
   * The probe child's EXIT must come within the probe's time. It may come a
   * moment after the runtime saw the child exit (the kernel queues it after
   * notifying the parent; a busy host can preempt the child in between).
   */
  async #selfTest(timeoutMs: number): Promise<{ reason: string; retryable: boolean } | undefined> {
    const startedAt = performance.now();
    const child = await runRuntimeBinary(PROBE_CHILD_ARGS, timeoutMs);
    if (child.kind === "timed-out")
      return { reason: `the probe child did not exit within ${timeoutMs} ms (netlinkProbeTimeoutMs): a slow or busy host`, retryable: true };
    if (child.kind === "failed") return { reason: `cannot spawn a probe child: ${child.message}`, retryable: false };
    for (;;) {
      if (this.drain().ownExits.some((exit) => exit.pid === child.pid)) return undefined;
      if (performance.now() - startedAt >= timeoutMs) break;
      await sleep(EXIT_EVENT_RECHECK_MS);
    }
    // Its FORK read: events flow, the EXIT is late.
    if (this.#provenance.forkedBySelf(child.pid))
      return { reason: `the probe child's exit event did not come within ${timeoutMs} ms (netlinkProbeTimeoutMs): a slow or busy host`, retryable: true };
    return { reason: "no event for the probe child: the kernel sends no proc events (CONFIG_PROC_EVENTS?)", retryable: false };
  }

  /** Reads what is queued now, at most DATAGRAMS_PER_DRAIN datagrams. */
  drain(): Drained {
    const drained = this.#drained;
    // New arrays, not emptied ones: `length = 0` is a call into the runtime on V8's baseline tier, where this mostly runs.
    drained.adoptedExits = [];
    drained.ownExits = [];
    drained.overrun = false;
    drained.malformed = 0;
    drained.forged = 0;
    drained.more = false;
    if (this.#closed) return drained;
    for (let read = 0; read < DATAGRAMS_PER_DRAIN; read++) {
      let length: number;
      try {
        length = this.#libc.receive(this.#fd, this.#datagram, this.#sender);
      } catch (error) {
        if (!hasErrnoCode(error, "ENOBUFS")) throw error;
        drained.overrun = true;
        this.#congested = true;
        this.#warnOverrun();
        continue;
      }
      if (length < 0) {
        // Read empty: the kernel queues events again (it drops all while the queue is congested).
        if (this.#congested) this.#recordChildrenUnknown();
        this.#congested = false;
        return drained;
      }
      // Only the kernel (port 0) sends proc events; any other sender is forging them.
      if (this.#senderWords[SOCKADDR_NL_PORT >>> 2] !== 0) drained.forged += 1;
      else this.#parser.parse(length, this.#events);
    }
    drained.more = true;
    return drained;
  }

  /** The EXIT was the leader thread's and the process runs on: another thread's exec took the PID over, or threads outlive the leader. */
  readonly #livesOn = (pid: number) => isChildRunning(this.#libc, pid);

  /** Where the parser hands each event of the drain in progress. */
  readonly #events: ProcEventSink = {
    ack: (err, _seq, ack) => {
      if (ack === ackTo(this.#nonce)) this.#ackError = err;
    },
    fork: (_timestampNs, _parentPid, parentTgid, childPid, childTgid) => {
      if (parentTgid === this.#selfPid && childPid === childTgid) this.#provenance.recordFork(childPid);
    },
    exit: (timestampNs, pid, tgid, _exitCode, _exitSignal, parentPid, parentTgid) => {
      if (pid !== tgid || parentTgid !== this.#selfPid) return;
      // Events may have been dropped ahead of this one (a FORK lost): no EXIT proves adoption until the queue was read empty.
      if (this.#congested) this.#provenance.recordUnknown(pid);
      const origin = this.#provenance.recordExit(pid, this.#livesOn);
      if (origin === "lives-on") return;
      const notice = { pid, exitedAt: monotonicToNowMs(timestampNs, this.#clockOffsetMs) };
      // A child of another thread (a Worker's) is not ours to reap, adopted or not.
      if (origin === "adopted" && parentPid === this.#selfPid) this.#drained.adoptedExits.push(notice);
      else this.#drained.ownExits.push(notice);
    },
    malformed: () => void (this.#drained.malformed += 1),
  };

  /**
   * Children whose FORK may not have been read are of unknown origin: at the
   * subscription, and after an overrun once the queue was read empty. After
   * ENOBUFS the kernel drops every event until then, so a child forked in
   * between (a FORK lost) is listed here, and its EXIT never says "adopted"
   * (nor does an EXIT read before the empty read: it may be that child's,
   * queued the moment the drops ended). Without CONFIG_PROC_CHILDREN this
   * reads every process's stat, synchronously: rare (an overrun on such a
   * kernel), and the only way to know.
   */
  #recordChildrenUnknown(): void {
    for (const pid of listAllChildrenNow()) this.#provenance.recordUnknown(pid);
  }

  #warnOverrun(): void {
    this.#warnings.log(
      "warn",
      { receiveBufferBytes: this.#receiveBufferBytes },
      "proc connector events were lost (ENOBUFS: receive queue full); scanning for zombies instead. " +
        "Raise the netlinkReceiveBufferBytes option (above net.core.rmem_max needs CAP_NET_ADMIN) or keep the event loop from blocking",
    );
  }

  /** Idempotent: unsubscribes and closes the socket. */
  stop(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#subscribed) {
      try {
        sendIgnore(this.#libc, this.#fd);
      } catch (error) {
        this.#log.debug({ err: error }, "unsubscribe failed; closing the socket drops the subscription too");
      }
    }
    this.#libc.close(this.#fd);
  }
}
