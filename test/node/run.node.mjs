/**
 * `orphan-reaper run` under Node (dist/, the package's bin), beyond signals
 * (run-signals.node.mjs): a log it cannot write; the command's words;
 * signals that come while it ends.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { scaled } from "./helpers.mjs";
import { isLive, NodeInit, waitUntil } from "./init-harness.mjs";

const BROKEN_STDERR = fileURLToPath(new URL("../fixtures/broken-stderr.py", import.meta.url));

for (const format of ["human", "json"]) {
  test(`a log line that cannot be written (EPIPE) is dropped: run still ends the descendants and exits with the child's code (${format}, -v)`, { timeout: scaled(60_000) }, async () => {
    // The second sleep ignores SIGTERM: run logs at warn, then must SIGKILL it. The shell exits when told.
    const script = "sleep 30 & first=$!; trap '' TERM; sleep 30 & echo $first $!; read _; exit 3";
    const init = new NodeInit({ flags: ["-v", "--log-format", format, "--grace-ms", "300"], command: ["sh", "-c", script], prefix: ["python3", BROKEN_STDERR] });
    let pids = [];
    try {
      assert.equal(await waitUntil(() => init.lines.length > 0, 20_000), true);
      pids = init.lines[0].split(" ").map(Number);
      init.process.stdin.end("go\n");
      assert.equal(await init.exitedWithin(), 3);
      assert.equal(pids.length, 2);
      assert.equal(await waitUntil(() => pids.every((pid) => !isLive(pid)), 10_000), true);
    } finally {
      init.end();
      for (const pid of pids) if (isLive(pid)) process.kill(pid, "SIGKILL");
    }
  });
}

test("the command's words reach it as given: after the options' --, a -- is the command's name (127, as tini)", { timeout: scaled(60_000) }, async () => {
  for (const [command, code, output] of [[["--", "echo", "hi"], 127, []], [["sh", "-c", 'echo "$@"', "sh", "--", "--bun", "x"], 0, ["-- --bun x"]]]) {
    const init = new NodeInit({ command });
    try {
      assert.equal(await init.exitedWithin(), code);
      assert.deepEqual(init.lines.filter(Boolean), output);
    } finally {
      init.end();
    }
  }
});

test("signals that come while run ends do not end it: the child's code comes back (10 rounds)", { timeout: scaled(60_000) }, async () => {
  // The child ignores SIGINT (forwarded to it); run gets one every millisecond until it has exited.
  for (let round = 0; round < 10; round++) {
    const init = new NodeInit({ command: ["sh", "-c", "trap '' INT; echo ready; read _; exit 5"] });
    let sender;
    try {
      assert.equal(await waitUntil(() => init.lines.includes("ready"), 20_000), true);
      sender = setInterval(() => init.process.exitCode === null && init.process.signalCode === null && init.process.kill("SIGINT"), 1);
      init.process.stdin.end("go\n");
      assert.deepEqual({ round, code: await init.exitedWithin(), signal: init.process.signalCode }, { round, code: 5, signal: null });
    } finally {
      clearInterval(sender);
      init.end();
    }
  }
});
