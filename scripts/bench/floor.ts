/**
 * The floor under a reaper written for Bun and woken by SIGCHLD: what a Bun
 * process pays per SIGCHLD before it reaps anything (an empty listener), and
 * per reap with the cheapest peeking reaper, a waitid(P_ALL) loop in the
 * listener (unsafe: no provenance). 1000 orphans exit over about 10 s; CPU and
 * events are counted over a 10 s window while they exit.
 *
 *   bun scripts/bench/floor.ts [--rounds N]
 */
import { P_ALL, WEXITED, WNOHANG, __WNOTHREAD } from "../../src/libc.ts";
import { loadLibc } from "../../src/runtime/index.ts";

const ORPHANS = 1000;
const WINDOW_MS = 10_000;
const MAKE_ORPHANS = `i=0; while [ $i -lt ${ORPHANS} ]; do ( (sleep $((i % 10)).$((i % 97))) >/dev/null 2>&1 & ); i=$((i+1)); done`;
type Mode = "listener" | "waitid-loop";

/** This process as the reaper: counts SIGCHLDs, and in waitid-loop mode reaps on each. */
async function bunArm(mode: Mode): Promise<{ events: number; cpuMs: number }> {
  const libc = loadLibc();
  libc.setChildSubreaper(true);
  let events = 0;
  const onSigchld = () => {
    if (mode === "listener") return void (events += 1);
    for (;;) {
      try {
        if (libc.waitid(P_ALL, 0, WEXITED | WNOHANG | __WNOTHREAD).pid === 0) break;
        events += 1;
      } catch {
        break; // ECHILD: no children left
      }
    }
  };
  process.on("SIGCHLD", onSigchld);
  await Bun.spawn(["sh", "-c", MAKE_ORPHANS]).exited;
  events = 0;
  const before = process.cpuUsage();
  await Bun.sleep(WINDOW_MS);
  const used = process.cpuUsage(before);
  process.off("SIGCHLD", onSigchld);
  await Bun.sleep(1_000); // the last orphans end; the next arm starts clean
  return { events, cpuMs: (used.user + used.system) / 1000 };
}

const rounds = Number(process.argv[process.argv.indexOf("--rounds") + 1] ?? 1) || 1;
for (let round = 1; round <= rounds; round++) {
  for (const mode of ["listener", "waitid-loop"] as const) {
    const { events, cpuMs } = await bunArm(mode);
    console.log(JSON.stringify({ round, mode, events, cpuMs: Math.round(cpuMs), cpuUsPerEvent: Math.round((cpuMs * 1000) / Math.max(1, events)) }));
  }
}
process.exit(0);
