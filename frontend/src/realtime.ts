// Realtime messages (`alleycat-subscribe/class-<c>`): parsing, keeping each output's text exactly
// as it was received.

import type { RealtimeMessage } from './types';

export interface ParsedRealtime {
  message: RealtimeMessage;
  /** Racer id → the output's number text as it appears in the payload ("151.788"). */
  rawOutputs: Map<string, string>;
}

const NUMBER = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/**
 * The number texts of the flat `"results":{…}` object of a payload. The publisher writes compact
 * JSON with integer-string keys and plain numbers, so a scan finds them; anything unexpected
 * yields no raw texts and the caller falls back to the parsed numbers.
 */
export function rawResultTexts(payload: string): Map<string, string> {
  const texts = new Map<string, string>();
  const start = payload.indexOf('"results"');
  if (start < 0) return texts;
  const open = payload.indexOf('{', start);
  const close = payload.indexOf('}', open);
  if (open < 0 || close < 0) return texts;
  const body = payload.slice(open + 1, close);
  const pair = /"(\d+)"\s*:\s*([^,\s}]+)/g;
  for (let m = pair.exec(body); m !== null; m = pair.exec(body)) {
    if (NUMBER.test(m[2])) texts.set(m[1], m[2]);
  }
  return texts;
}

/** Parses a realtime message; `null` for anything that is not a well-formed `results` message. */
export function parseRealtime(payload: string): ParsedRealtime | null {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  if (
    v.msg !== 'results' ||
    typeof v.classId !== 'number' ||
    typeof v.raceId !== 'number' ||
    typeof v.results !== 'object' ||
    v.results === null ||
    Array.isArray(v.results)
  ) {
    return null;
  }
  const results: Record<string, number> = {};
  for (const [racer, output] of Object.entries(v.results as Record<string, unknown>)) {
    if (typeof output === 'number' && Number.isFinite(output)) results[racer] = output;
  }
  const raw = rawResultTexts(payload);
  const rawOutputs = new Map<string, string>();
  for (const [racer, output] of Object.entries(results)) {
    const text = raw.get(racer);
    rawOutputs.set(racer, text !== undefined && Number(text) === output ? text : String(output));
  }
  return {
    message: {
      msg: 'results',
      classId: v.classId,
      raceId: v.raceId,
      ts: typeof v.ts === 'number' ? v.ts : 0,
      results,
    },
    rawOutputs,
  };
}
