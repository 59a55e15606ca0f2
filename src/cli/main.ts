#!/usr/bin/env node
/**
 * The orphan-reaper command line: `doctor` examines the host, `run` runs a
 * command under the reaper (a tini-like init). Arguments are parsed with
 * node:util parseArgs; usage errors exit 2, as most Unix tools do.
 */
import { parseArgs } from "node:util";
import { loadLibc } from "../runtime/index.ts";
import { doctorCommand } from "./doctor.ts";
import { runCommand } from "./run.ts";

const USAGE = `usage:
  orphan-reaper doctor [--json]
      Examine this host: kernel, PID 1, subreaper, namespaces, proc connector,
      runtime pidfds, and the source the reaper would choose here.
      Exits 0 when an event-driven source (netlink or sigchld) works.
  orphan-reaper run [-g|--group] [--grace-ms N] [-v|--verbose] -- command [args...]
      Run the command as a child with the reaper active, forward signals to it,
      and exit with its exit code (128 + N when killed by signal N).
      -g, --group     signal the child's whole process group (the child gets its own session)
      --grace-ms N    after the child exits, how long descendants it left get between
                      SIGTERM and SIGKILL (default 5000)
      -v, --verbose   log the start line and each reaped orphan to stderr
`;

const EXIT_USAGE = 2;
const DEFAULT_GRACE_MS = 5_000;

class UsageError extends Error {}

function parseDoctor(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: "boolean", default: false } }, strict: true });
  return doctorCommand(values.json, loadLibc);
}

function parseRun(args: string[]): Promise<number> {
  const separator = args.indexOf("--");
  if (separator === -1) throw new UsageError("run needs `--` before the command");
  const command = args.slice(separator + 1);
  if (command.length === 0) throw new UsageError("run needs a command after `--`");
  const { values } = parseArgs({
    args: args.slice(0, separator),
    options: {
      group: { type: "boolean", short: "g", default: false },
      "grace-ms": { type: "string", default: String(DEFAULT_GRACE_MS) },
      verbose: { type: "boolean", short: "v", default: false },
    },
    strict: true,
  });
  const graceMs = Number(values["grace-ms"]);
  if (!Number.isInteger(graceMs) || graceMs < 0) throw new UsageError(`--grace-ms must be a whole number of ms, got ${values["grace-ms"]}`);
  return runCommand({ command, group: values.group, graceMs, verbose: values.verbose });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "doctor") return parseDoctor(rest);
  if (command === "run") return parseRun(rest);
  if (command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(USAGE);
    return 0;
  }
  throw new UsageError(command === undefined ? "no command given" : `unknown command ${JSON.stringify(command)}`);
}

try {
  process.exit(await main(process.argv.slice(2)));
} catch (err) {
  // parseArgs throws TypeErrors with a code for unknown or malformed options
  const isUsage = err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
  if (!isUsage) throw err;
  process.stderr.write(`orphan-reaper: ${(err as Error).message}\n\n${USAGE}`);
  process.exit(EXIT_USAGE);
}
