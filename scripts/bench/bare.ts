/** A bare Bun process for the idle-wakeup baseline: runs the command, nothing else. */
await Bun.spawn(process.argv.slice(2), { stdio: ["ignore", "inherit", "inherit"] }).exited;
export {};
