import { describe, expect, test } from "bun:test";
import { DEFAULT_GRACE_MS, parseRunArgs, parseSignal, UsageError } from "../../src/cli/run-args.ts";

describe("run's arguments", () => {
  test("`--` is optional; options end at the command's name (tini's getopt would take a later -g as its own)", () => {
    expect(parseRunArgs(["sleep", "-g", "1"], {})).toMatchObject({ command: ["sleep", "-g", "1"], group: false });
    expect(parseRunArgs(["-g", "--", "-weird-name"], {})).toMatchObject({ command: ["-weird-name"], group: true });
    expect(parseRunArgs(["-g", "sh", "--", "x"], {})).toMatchObject({ command: ["sh", "--", "x"] });
  });

  test("short flags combine and take attached values, as with getopt", () => {
    expect(parseRunArgs(["-gsv", "-e143", "-pTERM", "true"], {})).toMatchObject({
      group: true, logLevel: "info", zeroExitCodes: [143], parentDeathSignal: 15, command: ["true"],
    });
    expect(parseRunArgs(["-ge", "2", "true"], {})).toMatchObject({ group: true, zeroExitCodes: [2] });
  });

  test("defaults", () => {
    expect(parseRunArgs(["true"], {})).toEqual({
      command: ["true"], group: false, graceMs: DEFAULT_GRACE_MS, zeroExitCodes: [], parentDeathSignal: undefined,
      logLevel: "warn", logFormat: undefined,
    });
  });

  test("-e is repeatable, -p takes a name or a number, --grace-ms=N", () => {
    const options = parseRunArgs(["-e", "143", "--expect-exit=130", "-p", "term", "--grace-ms=300", "-s", "true"], {});
    expect(options).toMatchObject({ zeroExitCodes: [143, 130], parentDeathSignal: 15, graceMs: 300 });
    expect(parseRunArgs(["-p", "SIGKILL", "true"], {}).parentDeathSignal).toBe(9);
    expect(parseRunArgs(["-p", "10", "true"], {}).parentDeathSignal).toBe(10);
  });

  test("every option has an ORPHAN_REAPER_* variable; a flag wins over it", () => {
    const env = {
      ORPHAN_REAPER_GROUP: "1", ORPHAN_REAPER_GRACE_MS: "250", ORPHAN_REAPER_EXPECT_EXIT: "143, 130",
      ORPHAN_REAPER_PARENT_DEATH_SIGNAL: "SIGTERM", ORPHAN_REAPER_LOG_LEVEL: "debug", ORPHAN_REAPER_LOG_FORMAT: "json",
      ORPHAN_REAPER_SUBREAPER: "1",
    };
    expect(parseRunArgs(["true"], env)).toMatchObject({
      group: true, graceMs: 250, zeroExitCodes: [143, 130], parentDeathSignal: 15, logLevel: "debug", logFormat: "json",
    });
    expect(parseRunArgs(["--grace-ms", "10", "-e", "1", "--log-format", "human", "true"], env)).toMatchObject({
      graceMs: 10, zeroExitCodes: [1], logFormat: "human",
    });
    expect(parseRunArgs(["true"], { ORPHAN_REAPER_GROUP: "0" }).group).toBe(false);
  });

  test("-v shows info lines unless the level asked for shows more", () => {
    expect(parseRunArgs(["-v", "true"], {}).logLevel).toBe("info");
    expect(parseRunArgs(["-v", "true"], { ORPHAN_REAPER_LOG_LEVEL: "debug" }).logLevel).toBe("debug");
    expect(parseRunArgs(["-v", "true"], { ORPHAN_REAPER_LOG_LEVEL: "error" }).logLevel).toBe("info");
  });

  test("usage errors name the option or variable", () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [[], {}, /needs a command/],
      [["-x", "true"], {}, /unknown option -x/],
      [["--grace-ms"], {}, /--grace-ms needs a value/],
      [["--grace-ms", "1.5", "true"], {}, /--grace-ms must be a whole number/],
      [["-e", "256", "true"], {}, /--expect-exit must be a whole number up to 255/],
      [["-p", "SIGNOPE", "true"], {}, /unknown signal "SIGNOPE"/],
      [["-gx", "true"], {}, /unknown option -x/],
      [["--group=1", "true"], {}, /--group takes no value/],
      [["true"], { ORPHAN_REAPER_GROUP: "maybe" }, /ORPHAN_REAPER_GROUP must be 1 or 0/],
      [["true"], { ORPHAN_REAPER_LOG_FORMAT: "xml" }, /ORPHAN_REAPER_LOG_FORMAT must be one of json, human/],
    ];
    for (const [args, env, message] of cases) expect(() => parseRunArgs(args, env)).toThrow(message);
    expect(() => parseRunArgs([], {})).toThrow(UsageError);
  });

  test("signals by name, short name or number", () => {
    expect(parseSignal("SIGHUP", "-p")).toBe(1);
    expect(parseSignal("hup", "-p")).toBe(1);
    expect(parseSignal("15", "-p")).toBe(15);
    expect(() => parseSignal("65", "-p")).toThrow(/up to 64/);
  });
});
