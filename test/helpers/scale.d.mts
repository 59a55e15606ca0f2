/** Parses ORPHAN_REAPER_TEST_SCALE: a positive finite number, 1 when unset. */
export function parseTestScale(text: string | undefined): number;
export const TEST_SCALE: number;
/** `ms` stretched by the scale. */
export function scaled(ms: number): number;
