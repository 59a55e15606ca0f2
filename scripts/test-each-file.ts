/**
 * Runs every test file in a process of its own. The tests change
 * process-wide kernel state (child subreaper flag, adopted orphans, SIGCHLD
 * listeners, netlink sockets), which bun test would otherwise share between
 * files. Prints bun's own output, then one closing line with the totals.
 */
export {};

const files = [...new Bun.Glob("test/**/*.test.ts").scanSync(".")].sort();
const totals = { passed: 0, failed: 0, skipped: 0 };
const failedFiles: string[] = [];

for (const file of files) {
  const run = Bun.spawn([process.execPath, "test", file], { stdout: "pipe", stderr: "pipe", env: process.env });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(run.stdout).text(), new Response(run.stderr).text(), run.exited]);
  process.stdout.write(stdout);
  process.stderr.write(stderr);
  const count = (word: string) => Number(new RegExp(`^\\s*(\\d+) ${word}$`, "m").exec(stderr + stdout)?.[1] ?? 0);
  totals.passed += count("pass");
  totals.failed += count("fail");
  totals.skipped += count("skip");
  if (exitCode !== 0) failedFiles.push(`${file} (exit ${exitCode})`);
}

if (failedFiles.length > 0) console.log(`\nfailed files:\n  ${failedFiles.join("\n  ")}`);
console.log(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(failedFiles.length > 0 || totals.failed > 0 || totals.passed === 0 ? 1 : 0);
