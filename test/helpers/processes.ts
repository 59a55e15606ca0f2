/**
 * Test helpers over real processes: orphan storms made with sh, polling for a
 * condition, and reading another process's children from /proc.
 */
import { readdirSync, readFileSync } from "node:fs";

/** A shell that leaves `count` orphans behind: each `( ... & )` subshell exits, its sleep is reparented. */
export function orphanStormScript(count: number, sleepSeconds = 0.05): string {
  return `i=0; while [ $i -lt ${count} ]; do (sleep ${sleepSeconds} &); i=$((i+1)); done`;
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(20);
  }
}

/** The children of `pid` with their state letter (Z = zombie), read from /proc. */
export function childStates(pid: number): { pid: number; state: string }[] {
  const children: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8");
    children.push(...text.split(" ").filter(Boolean).map(Number));
  }
  return children.flatMap((child) => {
    try {
      const stat = readFileSync(`/proc/${child}/stat`, "utf8");
      return [{ pid: child, state: stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) }];
    } catch {
      return []; // reaped meanwhile
    }
  });
}
