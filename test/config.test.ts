/**
 * readReaperConfig on real files: it returns, with the reason, whatever the
 * path is (a FIFO with no writer, an endless device, a huge file, a
 * directory), and with startOrphanReaper makes one "off" line with the cause.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readReaperConfig, startOrphanReaper } from "../src/index.ts";
import { CONFIG_MAX_BYTES } from "../src/config.ts";
import { capturingLogger } from "./helpers/logs.ts";
import { hasCommand } from "./helpers/processes.ts";

const dir = mkdtempSync(join(tmpdir(), "orphan-reaper-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configWith(text: string): string {
  const path = join(dir, `${Math.random()}.json`);
  writeFileSync(path, text);
  return path;
}

describe("readReaperConfig: contents", () => {
  const cases: [string, string | undefined, boolean, RegExp, boolean][] = [
    ["missing file", undefined, false, /^no config file: /, false],
    ["malformed JSON", "{ daemon: ", false, /not valid JSON/, true],
    ["no daemon section", "{}", false, /is not set/, false],
    ["a string instead of a boolean", '{"daemon":{"reapOrphanedSubprocesses":"yes"}}', false, /not a boolean/, true],
    ["false", '{"daemon":{"reapOrphanedSubprocesses":false}}', false, /is false/, false],
    ["true", '{"daemon":{"reapOrphanedSubprocesses":true}}', true, /is true/, false],
  ];
  for (const [name, text, enabled, reason, failed] of cases) {
    test(`${name}: ${enabled ? "on" : "off"}`, () => {
      const path = text === undefined ? join(dir, "absent.json") : configWith(text);
      const config = readReaperConfig(path);
      expect(config).toMatchObject({ enabled, failed });
      expect(config.reason).toMatch(reason);
      expect(config.reason).toContain(path);
    });
  }
});

describe("readReaperConfig: paths that are not a small regular file return at once with the reason", () => {
  const mkfifoMissing = !hasCommand("mkfifo");
  if (mkfifoMissing) console.warn("skipping the FIFO test: mkfifo is not installed");
  test.skipIf(mkfifoMissing)("a FIFO with no writer (open(2) would block forever without O_NONBLOCK)", () => {
    const fifo = join(dir, "fifo.json");
    expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
    expect(readReaperConfig(fifo)).toEqual({ enabled: false, failed: true, reason: `config is not a regular file (a FIFO): ${fifo}` });
  });

  test("/dev/zero (endless)", () => {
    expect(readReaperConfig("/dev/zero")).toEqual({
      enabled: false, failed: true, reason: "config is not a regular file (a character device): /dev/zero",
    });
  });

  test("a directory", () => {
    const sub = join(dir, "config.d");
    mkdirSync(sub);
    expect(readReaperConfig(sub)).toEqual({ enabled: false, failed: true, reason: `config is not a regular file (a directory): ${sub}` });
  });

  test("a 2 MiB file, even one that is valid JSON", () => {
    const padding = " ".repeat(2 * 1024 * 1024);
    const path = configWith(`{"daemon":{"reapOrphanedSubprocesses":true}}${padding}`);
    expect(readReaperConfig(path)).toEqual({ enabled: false, failed: true, reason: `config is larger than ${CONFIG_MAX_BYTES} bytes: ${path}` });
  });

  test("a file of exactly the limit is read", () => {
    const text = '{"daemon":{"reapOrphanedSubprocesses":true}}';
    const path = configWith(text + " ".repeat(CONFIG_MAX_BYTES - text.length));
    expect(readReaperConfig(path).enabled).toBe(true);
  });
});

describe("readReaperConfig + startOrphanReaper", () => {
  test("no config file: one off line, at info, carrying the real cause", async () => {
    const { logger, lines } = capturingLogger();
    const path = join(dir, "absent.json");
    const reaper = await startOrphanReaper({ enabled: readReaperConfig(path), logger });
    expect(reaper.source).toBe("off");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30, component: "orphan-reaper", source: "off", reason: `no config file: ${path}` });
    expect(reaper.stats().notChosen.off).toBe(`no config file: ${path}`);
  });

  test("an unusable config file: one off line, at warn", async () => {
    const { logger, lines } = capturingLogger();
    const reaper = await startOrphanReaper({ enabled: readReaperConfig("/dev/zero"), logger });
    expect(reaper.source).toBe("off");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, msg: "orphan reaper off: config is not a regular file (a character device): /dev/zero" });
  });
});
