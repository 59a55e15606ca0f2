/**
 * `orphan-reaper doctor`: what this machine offers the reaper and which
 * source it would choose, with the reason for every source not chosen. It
 * learns the choice the only honest way: it starts a reaper with a silent
 * logger, reads stats(), and stops it. The libc comes from the caller (the
 * command line's entry loads it through the runtime seam).
 */
import { release } from "node:os";
import pino from "pino";
import { messageOf } from "../errno.ts";
import { startOrphanReaper, type ReaperSource, type ReaperStats } from "../index.ts";
import type { Libc } from "../libc.ts";
import type { RuntimePidfdProbe } from "../runtime-mark-probe.ts";
import { readNetNamespace, readPidNamespace, type NamespaceVerdict, type PidNamespaceFacts } from "./host.ts";
import { colorsWanted, formatTable, painter } from "./style.ts";

export interface DoctorReport {
  readonly kernel: string;
  readonly pid: number;
  readonly pid1: boolean;
  /** Whether this process was a child subreaper before the doctor's own reaper ran, or why unknown. */
  readonly subreaper: boolean | { readonly error: string };
  readonly pidNamespace: PidNamespaceFacts;
  readonly networkNamespace: NamespaceVerdict;
  readonly procConnector: { readonly works: boolean; readonly reason: string };
  readonly runtimePidfds: RuntimePidfdProbe;
  readonly source: ReaperSource;
  readonly notChosen: ReaperStats["notChosen"];
  /** Sources that run beside the chosen one, and what for. */
  readonly alongside: ReaperStats["alongside"];
  /** A source whose probe failed for time and that a running reaper would probe again. */
  readonly retry: ReaperStats["retry"];
  /** True when orphans are reaped as they exit (netlink or sigchld), not only by the sweep. */
  readonly eventDriven: boolean;
}

function readSubreaper(loadLibc: () => Libc): DoctorReport["subreaper"] {
  try {
    return loadLibc().isChildSubreaper();
  } catch (err) {
    return { error: messageOf(err) };
  }
}

/** The proc connector's verdict as the reaper's own probe gave it. */
function procConnectorVerdict(stats: ReaperStats): DoctorReport["procConnector"] {
  if (stats.source === "netlink") return { works: true, reason: "the reaper's probe subscribed and it serves" };
  const reason = stats.notChosen.netlink ?? stats.notChosen.off;
  return { works: false, reason: reason ?? "this build of orphan-reaper has no proc connector source" };
}

/** The reaper's own probe of the runtime's mark (on Node the mark exists only while a reaper runs). */
function runtimePidfdsVerdict(stats: ReaperStats): RuntimePidfdProbe {
  return stats.runtimePidfds ?? { holds: false, reason: `not probed: the reaper is off (${stats.notChosen.off ?? "no reason given"})` };
}

export async function examineHost(loadLibc: () => Libc): Promise<DoctorReport> {
  const subreaper = readSubreaper(loadLibc);
  const reaper = await startOrphanReaper({ logger: pino({ level: "silent" }) });
  const stats = reaper.stats();
  await reaper.stop();
  const runtimePidfds = runtimePidfdsVerdict(stats);
  return {
    kernel: release(),
    pid: process.pid,
    pid1: process.pid === 1,
    subreaper,
    pidNamespace: readPidNamespace(),
    networkNamespace: readNetNamespace(),
    procConnector: procConnectorVerdict(stats),
    runtimePidfds,
    source: stats.source,
    notChosen: stats.notChosen,
    alongside: stats.alongside,
    retry: stats.retry,
    eventDriven: stats.source === "netlink" || stats.source === "sigchld",
  };
}

function describeSubreaper(subreaper: DoctorReport["subreaper"]): string {
  if (typeof subreaper === "object") return `unknown: ${subreaper.error}`;
  return subreaper ? "yes" : "no (the reaper becomes one when it starts, unless PID 1)";
}

function describeNamespace({ initial, reason }: NamespaceVerdict): string {
  const verdict = initial === undefined ? "unknown" : initial ? "initial" : "not initial";
  return `${verdict}: ${reason}`;
}

export function renderDoctorReport(report: DoctorReport, colors: boolean): string {
  const paint = painter(colors);
  const mark = (ok: boolean) => (ok ? paint("green", "ok") : paint("yellow", "no"));
  const rows: string[][] = [
    ["check", "status", "finding"].map((cell) => paint("bold", cell)),
    ["kernel", "", report.kernel],
    ["PID 1", report.pid1 ? "yes" : "no", `this process is PID ${report.pid}`],
    ["child subreaper", "", describeSubreaper(report.subreaper)],
    ["PID namespace", "", `${describeNamespace(report.pidNamespace)}, NSpid ${report.pidNamespace.nsPids.join(" ")}`],
    ["network namespace", "", describeNamespace(report.networkNamespace)],
    ["proc connector", mark(report.procConnector.works), report.procConnector.reason],
    ["runtime pidfds", mark(report.runtimePidfds.holds), report.runtimePidfds.reason],
    ["source", paint(report.eventDriven ? "green" : "red", report.source), "what startOrphanReaper chooses here"],
  ];
  for (const [name, reason] of Object.entries(report.alongside)) rows.push([`  also ${name}`, "", reason ?? ""]);
  for (const [name, reason] of Object.entries(report.notChosen)) rows.push([`  not ${name}`, "", reason ?? ""]);
  if (report.retry) rows.push([`  later ${report.retry.source}`, "", "its probe failed for time: a running reaper probes it again, and switches when it serves"]);
  const verdict = report.eventDriven
    ? paint("green", `orphans are reaped as they exit (source ${report.source})`)
    : paint("red", `no event-driven source: orphans wait for the sweep, or are not reaped (source ${report.source})`);
  return `${formatTable(rows)}\n\n${verdict}\n`;
}

/** Prints the report; the exit code is 0 when an event-driven source works. */
export async function doctorCommand(json: boolean, loadLibc: () => Libc): Promise<number> {
  const report = await examineHost(loadLibc);
  const text = json ? `${JSON.stringify(report, null, 2)}\n` : renderDoctorReport(report, colorsWanted(process.stdout));
  process.stdout.write(text);
  return report.eventDriven ? 0 : 1;
}
