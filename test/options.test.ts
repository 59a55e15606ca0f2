import { describe, expect, test } from "bun:test";
import { startOrphanReaper } from "../src/index.ts";
import { DEFAULT_OPTIONS, normalizeOptions } from "../src/options.ts";

describe("options", () => {
  test("defaults are applied in one place", () => {
    expect(normalizeOptions()).toEqual({ ...DEFAULT_OPTIONS });
    expect(normalizeOptions({ graceMs: 5, source: "sweep" })).toMatchObject({ graceMs: 5, source: "sweep", sweepIntervalMs: 10_000 });
  });

  test("enabled takes a boolean or readReaperConfig's result, whose reason is kept for the off line", () => {
    expect(normalizeOptions({ enabled: false }).enabled).toEqual({ enabled: false, reason: "disabled by the enabled option", failed: false });
    const config = { enabled: false, reason: "no config file: /etc/x.json", failed: false };
    expect(normalizeOptions({ enabled: config }).enabled).toEqual(config);
    expect(() => normalizeOptions({ enabled: { enabled: "yes" } as never })).toThrow(/option "enabled" must be a boolean or what readReaperConfig returns/);
  });

  const invalid: [string, Record<string, unknown>, RegExp?][] = [
    ["sweepIntervalMs", { sweepIntervalMs: -1 }],
    ["sweepIntervalMs", { sweepIntervalMs: 0 }],
    ["sweepIntervalMs", { sweepIntervalMs: 2 ** 31 }, /from 1 to 2147483647, got 2147483648/],
    ["sweepIntervalMs", { sweepIntervalMs: Number.NaN }, /got NaN$/],
    ["sweepIntervalMs", { sweepIntervalMs: Number.POSITIVE_INFINITY }, /got Infinity$/],
    ["sweepMaxIntervalMs", { sweepIntervalMs: 5_000, sweepMaxIntervalMs: 1_000 }],
    ["sweepMaxIntervalMs", { sweepMaxIntervalMs: 9_999 }],
    ["sweepMaxIntervalMs", { sweepMaxIntervalMs: 2 ** 31 }],
    ["graceMs", { graceMs: 1.5 }],
    ["graceMs", { graceMs: "100" }],
    ["graceMs", { graceMs: 1e12 }, /from 0 to 2147483647, got 1000000000000/],
    ["graceMs", { graceMs: Number.NEGATIVE_INFINITY }, /got -Infinity$/],
    ["netlinkProbeTimeoutMs", { netlinkProbeTimeoutMs: 2 ** 31 }],
    ["netlinkProbeTimeoutMs", { netlinkProbeTimeoutMs: 60_001 }],
    ["netlinkReceiveBufferBytes", { netlinkReceiveBufferBytes: 2 ** 31 }, /from 1024 to 2147483647/],
    ["source", { source: "polling" }],
    ["disableSources", { disableSources: ["bogus"] }],
    ["disableSources", { disableSources: "sweep" }],
    ["disableSources", { disableSources: ["sweep"] }, /free of "sweep" \(the sweep is the safety net/],
    ["disableSources", { source: "netlink", disableSources: ["netlink"] }, /the source the source option asks for/],
    ["enabled", { enabled: "yes" }],
    ["subreaper", { subreaper: 1 }],
    ["onReap", { onReap: "log" }],
    ["shouldReap", { shouldReap: true }],
    ["reapLogLevel", { reapLogLevel: "trace" }],
    ["logger", { logger: console }],
  ];
  for (const [name, options, message] of invalid) {
    test(`rejects ${JSON.stringify(options)} naming "${name}"`, async () => {
      expect(() => normalizeOptions(options)).toThrow(new RegExp(`option "${name}" must be`));
      if (message) expect(() => normalizeOptions(options)).toThrow(message);
      await expect(startOrphanReaper(options)).rejects.toThrow(TypeError);
    });
  }

  test("the largest values that fit a timer or a C int are accepted", () => {
    const largest = { graceMs: 2 ** 31 - 1, sweepIntervalMs: 2 ** 31 - 1, sweepMaxIntervalMs: 2 ** 31 - 1, netlinkReceiveBufferBytes: 2 ** 31 - 1 };
    expect(normalizeOptions(largest)).toMatchObject(largest);
  });

  test("an unknown option is rejected naming it, with the near miss when there is one", async () => {
    expect(() => normalizeOptions({ graceMS: 100 } as never)).toThrow('unknown option "graceMS" (did you mean "graceMs"?)');
    expect(() => normalizeOptions({ interval: 100 } as never)).toThrow(/unknown option "interval" \(known options: enabled, graceMs/);
    await expect(startOrphanReaper({ sweepintervalms: 5 } as never)).rejects.toThrow(TypeError);
  });
});
