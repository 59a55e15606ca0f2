#!/usr/bin/env node
/**
 * The orphan-reaper command line: `doctor` examines the host, `run` runs a
 * command under the reaper (an init in place of tini). Usage errors exit 1,
 * as tini, dumb-init and catatonit do. The static imports are few and small:
 * `run` listens to signals before the libc seam, the reaper, pino and the
 * rest load (they take most of the start-up), so a signal in that time is
 * held, not fatal.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { DEFAULT_GRACE_MS, parseRunArgs, UsageError } from "./run-args.ts";
import { holdSignals, listenToSignals } from "./signals.ts";

const USAGE = `usage:
  orphan-reaper doctor [--json]
      Examine this host: kernel, PID 1, subreaper, namespaces, proc connector,
      runtime pidfds, and the source the reaper would choose here.
      Exits 0 when an event-driven source (netlink or sigchld) works.
  orphan-reaper run [options] [--] command [args...]
      Run the command as a child with the reaper active, forward signals to it,
      and exit with its exit code (128 + N when killed by signal N). Options end
      at the command's name or at --. Each but -v has a variable; a flag wins
      over it.
      -g, --group                    signal the child's whole process group
                                     (ORPHAN_REAPER_GROUP=1)
      --grace-ms N                   after the child exits, time its descendants get
                                     between SIGTERM and SIGKILL (default ${DEFAULT_GRACE_MS})
                                     (ORPHAN_REAPER_GRACE_MS)
      -e, --expect-exit CODE         exit 0 when the command exits with CODE; repeatable
                                     (ORPHAN_REAPER_EXPECT_EXIT=143,130)
      -p, --parent-death-signal SIG  get SIG when our parent exits
                                     (ORPHAN_REAPER_PARENT_DEATH_SIGNAL)
      -s, --subreaper                accepted; the subreaper is automatic
      -v, --verbose                  log the start line, each reap and the child's exit
      --log-level LEVEL              fatal, error, warn (default), info, debug, trace
                                     (ORPHAN_REAPER_LOG_LEVEL)
      --log-format json|human        default: human on a terminal, else JSON
                                     (ORPHAN_REAPER_LOG_FORMAT)
  orphan-reaper --version
`;

const EXIT_USAGE = 1;

function version(): string {
  const packageJson = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
  return `orphan-reaper ${packageJson.version}\n`;
}

async function parseDoctor(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: "boolean", default: false } }, strict: true });
  const [{ doctorCommand }, { loadLibc }] = await Promise.all([import("./doctor.ts"), import("../runtime/index.ts")]);
  return doctorCommand(values.json, loadLibc);
}

async function run(args: string[]): Promise<number> {
  const relay = listenToSignals();
  const options = parseRunArgs(args);
  const { loadLibc, whySigchldIsNotOurs } = await import("../runtime/index.ts");
  const libc = loadLibc();
  const held = holdSignals(libc, relay, whySigchldIsNotOurs(libc));
  if (options.parentDeathSignal !== undefined) libc.setParentDeathSignal(options.parentDeathSignal);
  const { runCommand } = await import("./run.ts");
  return runCommand(options, held);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "doctor") return parseDoctor(rest);
  if (command === "run") return run(rest);
  if (command === "--version" || command === "-V") {
    process.stdout.write(version());
    return 0;
  }
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
