// Live standings (`alleycat-subscribe/class-<c>`, kind `standings`): parsing, keeping each
// output's text exactly as it was received, and the bike's own rank from the counted bests.
//
// The publisher sends a race at most once a second, in one IoT Core unit (5 KB) whatever its
// size: the top 20 exactly, how many ride, and every racer's best counted in buckets of `step`
// ten-thousandths, from which a bike computes its own rank (`rankOf`). The encoding is
// `alleycat_domain::live::Bests` (crates/alleycat-domain/src/live.rs).

import type { Entry } from './ranking';
import { compareEntries } from './ranking';
import type { LiveBests, LiveStandings } from './types';

/** Racers a live message lists exactly (`LIVE_TOP` of the domain). */
export const LIVE_TOP = 20;

export interface ParsedRealtime {
  message: LiveStandings;
  /** The top racers, best first, with each output's number text as the payload has it ("151.788"). */
  top: (Entry & { raw: string })[];
  /** Non-empty buckets of bests, highest first: [bucket, racers]. */
  buckets: [number, number][];
}

const NUMBER = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * The number texts of the `"top":[[racerId,output],…]` array of a payload, by racer id. The
 * publisher writes compact JSON with plain numbers, so a scan finds them; anything unexpected
 * yields no texts and the caller falls back to the parsed numbers.
 */
export function rawTopTexts(payload: string): Map<number, string> {
  const texts = new Map<number, string>();
  const start = payload.indexOf('"top"');
  if (start < 0) return texts;
  const open = payload.indexOf('[', start);
  const close = payload.indexOf(']]', open);
  if (open < 0 || close < 0) return texts;
  const body = payload.slice(open + 1, close + 1);
  const pair = /\[\s*(\d+)\s*,\s*([^\]\s,]+)\s*\]/g;
  for (let m = pair.exec(body); m !== null; m = pair.exec(body)) {
    if (NUMBER.test(m[2])) texts.set(Number(m[1]), m[2]);
  }
  return texts;
}

/**
 * The buckets of `bests`, highest first, as `[bucket, racers]`; `null` when the text is damaged.
 * `runs` holds pairs of numbers (empty buckets skipped, racers minus one), each in base 32, lowest
 * digit first, one character per digit, 32 added to every digit but the last.
 */
export function decodeBests(bests: LiveBests): [number, number][] | null {
  const numbers: number[] = [];
  let value = 0;
  let scale = 1;
  for (const c of bests.runs) {
    const digit = ALPHABET.indexOf(c);
    if (digit < 0 || scale > 2 ** 50) return null;
    value += (digit & 31) * scale;
    if (digit < 32) {
      numbers.push(value);
      value = 0;
      scale = 1;
    } else {
      scale *= 32;
    }
  }
  if (scale !== 1 || numbers.length % 2 !== 0) return null;
  const buckets: [number, number][] = [];
  let above: number | null = null;
  for (let i = 0; i < numbers.length; i += 2) {
    const bucket: number = above === null ? bests.max - numbers[i] : above - numbers[i] - 1;
    if (bucket < 0) return null;
    buckets.push([bucket, numbers[i + 1] + 1]);
    above = bucket;
  }
  return buckets;
}

/**
 * The rank of a best of `output` among the counted racers: one more than the racers in higher
 * buckets. Exact when nobody else's best shares its bucket (the publisher picks the finest step
 * that fits, 0.0001 for a 1,000-racer race); otherwise the best rank of the tie. The bike's own
 * older, lower best in the counts never ranks above its current one.
 */
export function rankOf(buckets: readonly [number, number][], step: number, output: number): number {
  const own = Math.floor(Math.round(output * 10_000) / Math.max(1, step));
  let above = 0;
  for (const [bucket, racers] of buckets) {
    if (bucket <= own) break;
    above += racers;
  }
  return above + 1;
}

/** Parses a live message; `null` for anything that is not a well-formed `standings` message. */
export function parseRealtime(payload: string): ParsedRealtime | null {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  const bests = v.bests as Record<string, unknown> | null | undefined;
  if (
    v.msg !== 'standings' ||
    typeof v.classId !== 'number' ||
    typeof v.raceId !== 'number' ||
    typeof v.riders !== 'number' ||
    !Array.isArray(v.top) ||
    typeof bests !== 'object' ||
    bests === null ||
    typeof bests.step !== 'number' ||
    typeof bests.max !== 'number' ||
    typeof bests.runs !== 'string'
  ) {
    return null;
  }
  const liveBests: LiveBests = { step: bests.step, max: bests.max, runs: bests.runs };
  const buckets = decodeBests(liveBests);
  if (buckets === null) return null;
  const texts = rawTopTexts(payload);
  const top: (Entry & { raw: string })[] = [];
  for (const entry of v.top as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 2) continue;
    const [racerId, output] = entry as unknown[];
    if (typeof racerId !== 'number' || !Number.isInteger(racerId)) continue;
    if (typeof output !== 'number' || !Number.isFinite(output)) continue;
    const text = texts.get(racerId);
    top.push({ racerId, output, raw: text !== undefined && Number(text) === output ? text : String(output) });
  }
  top.sort(compareEntries);
  return {
    message: {
      msg: 'standings',
      classId: v.classId,
      raceId: v.raceId,
      ts: typeof v.ts === 'number' ? v.ts : 0,
      riders: v.riders,
      top: top.map((e) => [e.racerId, e.output]),
      bests: liveBests,
    },
    top,
    buckets,
  };
}

/** A row of "Here now": a racer, their best, its text, and their rank in the race. */
export interface LiveRow extends Entry {
  raw: string;
  rank: number;
  self: boolean;
}

/**
 * The rows a bike shows for a live message: the top racers with their ranks, and the bike's own
 * racer (`self`, with its best so far, which the bike knows first-hand) where it stands. In the
 * top, the message's entry is shown; below it, one more row with the rank computed from the
 * counted bests. A best newer than the message that beats a top racer is placed among them.
 */
export function liveRows(parsed: ParsedRealtime, self: Entry | null): LiveRow[] {
  const rows: LiveRow[] = parsed.top.map((e, i) => ({ ...e, rank: i + 1, self: self !== null && e.racerId === self.racerId }));
  if (self === null || rows.some((r) => r.self)) return rows;
  const raw = String(self.output);
  const position = rows.findIndex((r) => compareEntries(self, r) < 0);
  if (position >= 0) {
    rows.splice(position, 0, { ...self, raw, rank: position + 1, self: true });
    return rows.slice(0, LIVE_TOP).map((r, i) => ({ ...r, rank: i + 1 }));
  }
  const rank = Math.max(rows.length + 1, rankOf(parsed.buckets, parsed.message.bests.step, self.output));
  return [...rows, { ...self, raw, rank, self: true }];
}
