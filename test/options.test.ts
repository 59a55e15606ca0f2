import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readReaperConfig, startOrphanReaper } from "../src/index.ts";
import { DEFAULT_OPTIONS, normalizeOptions } from "../src/options.ts";
import { capturingLogger } from "./helpers/logs.ts";

describe("options", () => {
  test("defaults are applied in one place", () => {
    expect(normalizeOptions()).toEqual({ ...DEFAULT_OPTIONS });
    expect(normalizeOptions({ graceMs: 5, source: "sweep" })).toMatchObject({ graceMs: 5, source: "sweep", sweepIntervalMs: 10_000 });
  });
  const invalid: [string, Record<string, unknown>][] = [
    ["sweepIntervalMs", { sweepIntervalMs: -1 }],
    ["sweepIntervalMs", { sweepIntervalMs: 0 }],
    ["sweepMaxIntervalMs", { sweepIntervalMs: 5_000, sweepMaxIntervalMs: 1_000 }],
    ["sweepMaxIntervalMs", { sweepMaxIntervalMs: 9_999 }],
    ["graceMs", { graceMs: 1.5 }],
    ["graceMs", { graceMs: "100" }],
    ["source", { source: "polling" }],
    ["disableSources", { disableSources: ["bogus"] }],
    ["disableSources", { disableSources: "sweep" }],
    ["enabled", { enabled: "yes" }],
    ["subreaper", { subreaper: 1 }],
    ["onReap", { onReap: "log" }],
    ["shouldReap", { shouldReap: true }],
    ["reapLogLevel", { reapLogLevel: "trace" }],
    ["logger", { logger: console }],
  ];
  for (const [name, options] of invalid) {
    test(`rejects ${JSON.stringify(options)} naming "${name}"`, async () => {
      expect(() => normalizeOptions(options)).toThrow(new RegExp(`option "${name}" must be`));
      await expect(startOrphanReaper(options)).rejects.toThrow(TypeError);
    });
  }
});

describe("readReaperConfig", () => {
  const dir = mkdtempSync(join(tmpdir(), "orphan-reaper-config-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const configWith = (text: string) => {
    const path = join(dir, `${Math.random()}.json`);
    writeFileSync(path, text);
    return path;
  };
  const cases: [string, string | undefined, boolean, RegExp][] = [
    ["missing file", undefined, false, /cannot read config \(ENOENT\)/],
    ["malformed JSON", "{ daemon: ", false, /not valid JSON/],
    ["no daemon section", "{}", false, /is not set/],
    ["a string instead of a boolean", '{"daemon":{"reapOrphanedSubprocesses":"yes"}}', false, /not a boolean/],
    ["false", '{"daemon":{"reapOrphanedSubprocesses":false}}', false, /is false/],
    ["true", '{"daemon":{"reapOrphanedSubprocesses":true}}', true, /is true/],
  ];
  for (const [name, text, enabled, reason] of cases) {
    test(`${name}: ${enabled ? "on" : "off, with one log line"}`, () => {
      const { logger, lines } = capturingLogger();
      const path = text === undefined ? join(dir, "absent.json") : configWith(text);
      const config = readReaperConfig(path, logger);
      expect(config.enabled).toBe(enabled);
      expect(config.reason).toMatch(reason);
      expect(lines.length).toBe(enabled ? 0 : 1);
      if (!enabled) expect(lines[0]).toMatchObject({ component: "orphan-reaper", path });
    });
  }
});
