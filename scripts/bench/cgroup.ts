/**
 * A CPU-limited cgroup of the bench's own, for the rows that model a small
 * container: created before the scenario, removed after it. cgroup v2 when
 * the unified hierarchy has the cpu controller (`cpu.max`), else v1's cpu
 * hierarchy (`cpu.cfs_quota_us` / `cpu.cfs_period_us`). Nothing else on the
 * machine is changed; on v2 the root's subtree_control must already offer cpu.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const V2_ROOT = "/sys/fs/cgroup";
const V1_CPU_ROOT = "/sys/fs/cgroup/cpu";

export interface CpuLimit {
  /** CPU time allowed per period: quotaUs / periodUs CPUs. */
  readonly quotaUs: number;
  readonly periodUs: number;
}

export interface CpuCgroup {
  readonly dir: string;
  /** Which knob limits it, as written: e.g. `cpu.max = "50000 100000"`. */
  readonly describe: string;
  /** `argv` started inside the cgroup (the shell moves itself in, then execs). */
  wrap(argv: readonly string[]): string[];
  create(): void;
  /** Ends what is left inside (only processes this bench started can be there), then removes the directory. */
  remove(): void;
}

function hasV2Cpu(): boolean {
  try {
    return readFileSync(join(V2_ROOT, "cgroup.subtree_control"), "utf8").split(/\s+/).includes("cpu");
  } catch {
    return false;
  }
}

/** The cgroup `name` limited to `limit`, or why this machine offers none. */
export function cpuCgroup(name: string, limit: CpuLimit): CpuCgroup | string {
  const v2 = hasV2Cpu();
  if (!v2 && !existsSync(join(V1_CPU_ROOT, "cpu.cfs_quota_us"))) {
    return `no cgroup cpu controller: neither ${V2_ROOT}/cgroup.subtree_control lists cpu nor ${V1_CPU_ROOT}/cpu.cfs_quota_us exists`;
  }
  const dir = join(v2 ? V2_ROOT : V1_CPU_ROOT, name);
  const knobs: [string, string][] = v2
    ? [["cpu.max", `${limit.quotaUs} ${limit.periodUs}`]]
    : [["cpu.cfs_period_us", String(limit.periodUs)], ["cpu.cfs_quota_us", String(limit.quotaUs)]];
  const procs = join(dir, "cgroup.procs");
  return {
    dir,
    describe: knobs.map(([file, value]) => `${file} = "${value}"`).join(", ") + ` (cgroup ${v2 ? "v2" : "v1"})`,
    wrap: (argv) => ["sh", "-c", 'echo $$ > "$0" && exec "$@"', procs, ...argv],
    create() {
      mkdirSync(dir, { recursive: true });
      for (const [file, value] of knobs) writeFileSync(join(dir, file), value);
    },
    remove() {
      if (!existsSync(dir)) return;
      for (const pid of readFileSync(procs, "utf8").split("\n").filter(Boolean)) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // it ended meanwhile
        }
      }
      // A killed task leaves the cgroup once the kernel has torn it down: EBUSY until then.
      for (let attempt = 0; ; attempt += 1) {
        try {
          rmdirSync(dir);
          return;
        } catch (err) {
          if (attempt >= 50) throw err;
          Bun.sleepSync(100);
        }
      }
    },
  };
}
