import { expect, test } from "bun:test";
import pino from "pino";
import { Registry } from "prom-client";
import { startOrphanReaper } from "../../src/index.ts";
import { METRIC_NAMES, percentile, summarizeLifetimes } from "../../src/metrics.ts";
import { makeOrphans } from "../helpers/orphans.ts";
import { scaled, waitUntil } from "../helpers/time.ts";

const ORPHANS = 40;

test("percentile uses the nearest rank", () => {
  const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
  expect(percentile(sorted, 0.5)).toBe(50);
  expect(percentile(sorted, 0.99)).toBe(99);
  expect(percentile([], 0.5)).toBe(0);
  expect(summarizeLifetimes([3, 1, 2])).toEqual({ count: 3, p50Ms: 2, p99Ms: 3, maxMs: 3 });
});

test("the prom-client registry shows the counters, the histogram and the gauge after a storm", async () => {
  const registry = new Registry();
  const reaper = await startOrphanReaper({ metricsRegistry: registry, logger: pino({ level: "silent" }) });
  try {
    await makeOrphans(ORPHANS, 0);
    expect(await waitUntil(() => reaper.stats().reaped >= ORPHANS, 20_000)).toBe(true);
    const text = await registry.metrics();
    const reapedBySource = reaper.stats().reapedBySource;
    for (const [source, count] of Object.entries(reapedBySource)) {
      expect(text).toContain(`${METRIC_NAMES.reaped}{source="${source}"} ${count}`);
    }
    expect(Object.values(reapedBySource).reduce((a, b) => a + b)).toBe(ORPHANS);
    expect(text).toContain(`${METRIC_NAMES.overruns} 0`);
    expect(text).toContain(`${METRIC_NAMES.malformed} 0`);
    expect(text).toMatch(new RegExp(`${METRIC_NAMES.lifetime}_count\\{source="(netlink|sigchld)"\\} \\d+`));
    expect(text).toContain(`${METRIC_NAMES.zombies} 0`);
    const lifetimes = Object.values(reaper.stats().lifetimes);
    expect(lifetimes.reduce((sum, summary) => sum + summary.count, 0)).toBe(ORPHANS);
  } finally {
    await reaper.stop();
  }
  expect(await registry.metrics()).not.toContain(METRIC_NAMES.reaped);
}, scaled(40_000));

test("a registry that holds one of our names already: a warning, and the registry left as it was", async () => {
  const registry = new Registry();
  const { Gauge } = await import("prom-client");
  new Gauge({ name: METRIC_NAMES.zombies, help: "the daemon's own", registers: [registry] });
  const before = registry.getMetricsAsArray().map((metric) => metric.name);
  const warnings: string[] = [];
  const logger = pino({ level: "warn" }, { write: (line: string) => void warnings.push(JSON.parse(line).msg) });
  const reaper = await startOrphanReaper({ metricsRegistry: registry, logger });
  try {
    expect(warnings.some((msg) => msg.startsWith("metricsRegistry was given but the metrics cannot be exported"))).toBe(true);
    expect(registry.getMetricsAsArray().map((metric) => metric.name)).toEqual(before);
  } finally {
    await reaper.stop();
  }
  expect(registry.getMetricsAsArray().map((metric) => metric.name)).toEqual(before);
});
