import { Writable } from "node:stream";
import pino from "pino";

/** A pino logger whose lines land in `lines` as objects (pino's own test pattern). */
export function capturingLogger(level: pino.Level = "debug"): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level }, sink), lines };
}
