/**
 * ORPHAN_REAPER_TEST_SCALE, parsed once for both halves of the suite (plain
 * JavaScript: Node 20 cannot load the Bun side's TypeScript). A multiplier
 * for slow or busy machines, as pino's test helpers have: a positive number,
 * 1 when unset or blank; anything else is an error, not a silent 1.
 */
export function parseTestScale(text) {
  if (text === undefined || text.trim() === "") return 1;
  const scale = Number(text);
  if (!Number.isFinite(scale) || scale <= 0) {
    throw new Error(`ORPHAN_REAPER_TEST_SCALE must be a positive number, not ${JSON.stringify(text)}`);
  }
  return scale;
}

export const TEST_SCALE = parseTestScale(process.env.ORPHAN_REAPER_TEST_SCALE);

/** `ms` stretched by the scale, rounded up. */
export const scaled = (ms) => Math.ceil(ms * TEST_SCALE);
