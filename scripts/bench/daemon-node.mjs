/**
 * The Node.js daemon under test: daemon.ts's per-exit arms, on Node. It
 * starts our reaper from the built package (dist/, `npm run build`), runs
 * one command as its child, and writes the same JSON report when the
 * command has exited.
 *
 *   node scripts/bench/daemon-node.mjs --reaper none|floor|netlink-floor|netlink|sigchld [--repo DIR] --report FILE -- command args...
 *
 * --reaper none makes the daemon a child subreaper and reaps nothing: what
 * Node itself spends on the orphans' SIGCHLD, with no reaper.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { startFloorReaper, startNetlinkFloorReaper } from "./floor-reaper.mjs";

const dash = process.argv.indexOf("--", 2);
const { values } = parseArgs({
  args: process.argv.slice(2, dash),
  options: { reaper: { type: "string" }, repo: { type: "string" }, report: { type: "string" } },
});
const command = process.argv.slice(dash + 1);
if (dash < 0 || command.length === 0 || !values.reaper) throw new Error("usage: daemon-node.mjs --reaper SOURCE [--repo DIR] [--report FILE] -- command...");
const repo = resolve(values.repo ?? join(import.meta.dirname, "../.."));

/** A module of this checkout's build (dist/), for the arms that are not our reaper. */
const thisRepoModule = (path) => import(pathToFileURL(join(import.meta.dirname, "../../dist", path)).href);

/** The libc binding and waitid's constants of this checkout's build. */
async function thisRepoLibc() {
  const { loadLibc } = await thisRepoModule("runtime/index.js");
  return { libc: loadLibc(), wait: await thisRepoModule("libc.js") };
}

async function startReaper(mode) {
  if (mode === "floor") {
    const { libc, wait } = await thisRepoLibc();
    return startFloorReaper(libc, wait);
  }
  if (mode === "netlink-floor") {
    const { libc, wait } = await thisRepoLibc();
    return startNetlinkFloorReaper(libc, wait, await thisRepoModule("netlink/socket.js"), await thisRepoModule("netlink/constants.js"));
  }
  if (mode === "none") {
    // Orphans must still come to this process (and their SIGCHLD with them), but nothing reaps them.
    (await thisRepoLibc()).libc.setChildSubreaper(true);
    return { source: "none", stats: () => ({ reaped: 0, reapedBySource: {} }), stop: async () => {} };
  }
  const { startOrphanReaper } = await import(pathToFileURL(join(repo, "dist/index.js")).href);
  const { default: pino } = await import(pathToFileURL(join(repo, "node_modules/pino/pino.js")).href);
  // Per-reap log lines are at info; the bench keeps them out (tini logs nothing either).
  return startOrphanReaper({ source: mode, subreaper: true, logger: pino({ level: "warn" }) });
}

const reaper = await startReaper(values.reaper);
const child = spawn(command[0], command.slice(1), { stdio: ["ignore", "inherit", "inherit"] });
reaper.leave?.(child.pid);
const exitCode = await new Promise((done) => child.on("exit", (code) => done(code)));
const stats = reaper.stats();
const report = { pid: process.pid, reaper: values.reaper, repo, runtime: "node", source: reaper.source, reaped: stats.reaped, reapedBySource: stats.reapedBySource, children: 0, exitCode };
await reaper.stop();
const line = `${JSON.stringify(report)}\n`;
if (values.report) writeFileSync(values.report, line);
else process.stderr.write(line);
process.exit(exitCode ?? 1);
