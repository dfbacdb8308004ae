import { describe, expect, it } from 'vitest';
import { decodeBests, liveRows, parseRealtime, rankOf, rawTopTexts } from './realtime';

// The domain's own wire-shape test (crates/alleycat-domain/src/live/tests.rs) builds this message
// from racers 8 (151.788), 12 (140.25), 4 and 31 (98.5 each): the same bytes are read here.
const PAYLOAD =
  '{"msg":"standings","classId":2,"raceId":5400172,"ts":7,"riders":4,' +
  '"top":[[8,151.788],[12,140.25],[4,98.5],[31,98.5]],' +
  '"bests":{"step":1,"max":1517880,"runs":"AAz1wDA723MB"}}';

describe('live messages', () => {
  it('parses the publisher\u2019s message, its top with each output\u2019s text, and its counted bests', () => {
    const parsed = parseRealtime(PAYLOAD);
    expect(parsed).not.toBeNull();
    expect(parsed!.message).toMatchObject({ msg: 'standings', classId: 2, raceId: 5400172, ts: 7, riders: 4 });
    expect(parsed!.top).toEqual([
      { racerId: 8, output: 151.788, raw: '151.788' },
      { racerId: 12, output: 140.25, raw: '140.25' },
      { racerId: 4, output: 98.5, raw: '98.5' },
      { racerId: 31, output: 98.5, raw: '98.5' },
    ]);
    expect(parsed!.buckets).toEqual([
      [1517880, 1],
      [1402500, 1],
      [985000, 2],
    ]);
  });

  it('keeps number texts as sent, and falls back to the number when they cannot be found', () => {
    expect(rawTopTexts('{"top":[[8,150.0],[9, 1.5e2 ]]}')).toEqual(
      new Map([
        [8, '150.0'],
        [9, '1.5e2'],
      ]),
    );
    const parsed = parseRealtime(PAYLOAD.replace('"top":', '"top" :'));
    expect(parsed!.top[0].raw).toBe('151.788');
  });

  it('ranks an output by the racers in higher buckets; ties share the better rank', () => {
    const { buckets } = parseRealtime(PAYLOAD)!;
    expect(rankOf(buckets, 1, 151.788)).toBe(1);
    expect(rankOf(buckets, 1, 200)).toBe(1);
    expect(rankOf(buckets, 1, 140.25)).toBe(2);
    expect(rankOf(buckets, 1, 98.5)).toBe(3);
    expect(rankOf(buckets, 1, 98.4999)).toBe(5);
    // Coarse buckets: 1 W wide, so 140.25 and 140.9 tie.
    expect(rankOf([[151, 1], [140, 2]], 10_000, 140.25)).toBe(2);
  });

  it('decodes multi-digit numbers and refuses damaged runs', () => {
    // 1,000 empty buckets is 8 + 31 x 32: digits 8 + 32 ('o') then 31 ('f').
    expect(decodeBests({ step: 1, max: 5000, runs: 'AAofB' })).toEqual([
      [5000, 1],
      [3999, 2],
    ]);
    expect(decodeBests({ step: 1, max: 5, runs: 'A!' })).toBeNull();
    expect(decodeBests({ step: 1, max: 5, runs: 'A' })).toBeNull();
    expect(decodeBests({ step: 1, max: 5, runs: 'Ag' })).toBeNull();
    expect(decodeBests({ step: 1, max: 5, runs: 'GA' })).toBeNull();
    expect(decodeBests({ step: 1, max: 0, runs: '' })).toEqual([]);
  });

  it('ignores other kinds, the old whole-standings kind and malformed messages', () => {
    expect(parseRealtime('not json')).toBeNull();
    expect(parseRealtime('[]')).toBeNull();
    expect(parseRealtime('{"msg":"results","classId":1,"raceId":2,"ts":3,"results":{"8":1.25}}')).toBeNull();
    expect(parseRealtime(PAYLOAD.replace('"standings"', '"other"'))).toBeNull();
    expect(parseRealtime(PAYLOAD.replace('"classId":2', '"classId":"2"'))).toBeNull();
    expect(parseRealtime(PAYLOAD.replace('"riders":4,', ''))).toBeNull();
    expect(parseRealtime(PAYLOAD.replace('AAz1wDA723MB', 'AAz1w'))).toBeNull();
  });
});

/** The publisher's encoding of buckets (highest first), written plainly for the tests. */
function encode(buckets: [number, number][]): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const number = (n: number): string => {
    let text = '';
    while (n >= 32) {
      text += alphabet[(n % 32) + 32];
      n = Math.floor(n / 32);
    }
    return text + alphabet[n];
  };
  return buckets
    .map(([bucket, racers], i) => number(i === 0 ? 0 : buckets[i - 1][0] - bucket - 1) + number(racers - 1))
    .join('');
}

describe('liveRows', () => {
  const parsed = parseRealtime(PAYLOAD)!;

  it('shows the top, marking the rider when listed', () => {
    const rows = liveRows(parsed, { racerId: 12, output: 140.25 });
    expect(rows.map((r) => [r.rank, r.racerId, r.self])).toEqual([
      [1, 8, false],
      [2, 12, true],
      [3, 4, false],
      [4, 31, false],
    ]);
    expect(liveRows(parsed, null).every((r) => !r.self)).toBe(true);
  });

  it('places a rider below the top at the rank the counts give', () => {
    const top = Array.from({ length: 20 }, (_, i) => `[${100 + i},${200 - i}]`).join(',');
    // Racers 100-119 at 200..181, one per 1 W bucket; then 10 racers each at 175, 170 and 160.
    const buckets: [number, number][] = [
      ...Array.from({ length: 20 }, (_, i): [number, number] => [200 - i, 1]),
      [175, 10],
      [170, 10],
      [160, 10],
    ];
    const payload =
      `{"msg":"standings","classId":1,"raceId":1,"ts":1,"riders":50,"top":[${top}],` +
      `"bests":{"step":10000,"max":200,"runs":"${encode(buckets)}"}}`;
    const live = parseRealtime(payload)!;
    expect(live.buckets).toEqual(buckets);
    const rows = liveRows(live, { racerId: 7, output: 170.5 });
    expect(rows).toHaveLength(21);
    expect(rows[20]).toEqual({ racerId: 7, output: 170.5, raw: '170.5', rank: 31, self: true });
    expect(rows.slice(0, 20).map((r) => r.rank)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('places a rider whose best beats a listed racer among the top', () => {
    const rows = liveRows(parsed, { racerId: 99, output: 145 });
    expect(rows.map((r) => [r.rank, r.racerId, r.self])).toEqual([
      [1, 8, false],
      [2, 99, true],
      [3, 12, false],
      [4, 4, false],
      [5, 31, false],
    ]);
  });
});
