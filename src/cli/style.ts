/**
 * Terminal styling for the CLI and the demo: ANSI colours and a redrawn
 * status line on a TTY, plain text when piped or when NO_COLOR is set.
 */
const CODES = { red: 31, green: 32, yellow: 33, cyan: 36, dim: 2, bold: 1 } as const;

export type Color = keyof typeof CODES;

export function colorsWanted(stream: NodeJS.WriteStream): boolean {
  return Boolean(stream.isTTY) && !process.env.NO_COLOR;
}

export function painter(enabled: boolean): (color: Color, text: string) => string {
  return (color, text) => (enabled ? `\x1b[${CODES[color]}m${text}\x1b[0m` : text);
}

/** Visible width: ANSI escapes take no columns. */
export function visibleLength(text: string): number {
  return text.replace(/\x1b\[[\d;]*m/g, "").length;
}

/** Renders rows as aligned columns; the first row is the header. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, visibleLength(cell))));
  return rows
    .map((row) => row.map((cell, i) => cell + " ".repeat((widths[i] ?? 0) - visibleLength(cell))).join("  ").trimEnd())
    .join("\n");
}

/** Rewrites the current terminal line in place (TTY only). */
export function redrawLine(stream: NodeJS.WriteStream, text: string): void {
  stream.write(`\r\x1b[2K${text}`);
}
