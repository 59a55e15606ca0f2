import type { Libc } from "../../src/libc.ts";
/** Undefined where the kernel keeps a reaped process's wait status on its pidfd (Linux 6.15), else why not. */
export function whyNoPidfdExitStatus(libc: Libc): Promise<string | undefined>;
