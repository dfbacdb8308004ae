import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { Api, ApiError } from './api';
import { decodeHistory, fetchHistory, formatTop, gunzip, isGzip, parseHistory, percentileAt, readSample } from './history';

const object = {
  classId: 3,
  topK: 100,
  updatedAt: 1_700_000_000_000,
  seconds: { '1': { '8': 123.45, '2': 130, '5': 123.45 }, '2': { '8': 140.1 }, '300': {} },
};
const gz = (value: unknown) => new Uint8Array(gzipSync(Buffer.from(JSON.stringify(value))));

describe('history decoding', () => {
  it('gunzips with DecompressionStream and ranks each second', async () => {
    const bytes = gz(object);
    expect(isGzip(bytes)).toBe(true);
    expect(JSON.parse(await gunzip(bytes))).toEqual(object);
    const history = await decodeHistory(bytes, 3, 50);
    expect(history.topK).toBe(100);
    expect(history.updatedAt).toBe(1_700_000_000_000);
    expect(history.seconds.get(1)).toEqual([
      { racerId: 2, output: 130 },
      { racerId: 5, output: 123.45 },
      { racerId: 8, output: 123.45 },
    ]);
    expect(history.seconds.get(2)).toEqual([{ racerId: 8, output: 140.1 }]);
    expect(history.seconds.get(300)).toEqual([]);
    expect(history.seconds.has(3)).toBe(false);
  });

  it('reads plain JSON too (an already decoded body)', async () => {
    const history = await decodeHistory(new TextEncoder().encode(JSON.stringify(object)), 3, 100);
    expect(history.seconds.get(1)?.[0]).toEqual({ racerId: 2, output: 130 });
  });

  it('reads the original shape, taking the default K', () => {
    const history = parseHistory({ '1': { '8': 99 }, '2': { '9': 98 } }, 4, 25);
    expect(history.topK).toBe(25);
    expect(history.classId).toBe(4);
    expect(history.seconds.get(2)).toEqual([{ racerId: 9, output: 98 }]);
  });

  it('refuses another class and non-objects', () => {
    expect(() => parseHistory(object, 2, 100)).toThrow(/class 3/);
    expect(() => parseHistory([1, 2], 3, 100)).toThrow();
    expect(() => parseHistory(null, 3, 100)).toThrow();
  });

  it('skips malformed entries', () => {
    const history = parseHistory({ seconds: { '1': { '8': 'x', a: 3, '9': 7 }, x: {}, '0': { '1': 1 } } }, 1, 10);
    expect([...history.seconds.keys()]).toEqual([1]);
    expect(history.seconds.get(1)).toEqual([{ racerId: 9, output: 7 }]);
  });
});

describe('fetchHistory', () => {
  function fakeFetch(routes: Record<string, () => Response>) {
    const calls: string[] = [];
    const fetchImpl = (async (input: RequestInfo | URL) => {
      const url = String(input);
      calls.push(url);
      const route = routes[url];
      if (!route) return new Response('{"error":"no route"}', { status: 404 });
      return route();
    }) as typeof fetch;
    return { fetchImpl, calls };
  }

  it('follows the link and decodes the object', async () => {
    const { fetchImpl, calls } = fakeFetch({
      'http://api/history/3': () =>
        Response.json({ classId: 3, url: 'http://objects/history/class-3.json.gz?sig=1', expiresAt: 1 }),
      'http://objects/history/class-3.json.gz?sig=1': () => new Response(gz(object)),
    });
    const history = await fetchHistory(new Api('http://api', fetchImpl), 3, 100, fetchImpl);
    expect(calls).toEqual(['http://api/history/3', 'http://objects/history/class-3.json.gz?sig=1']);
    expect(history.seconds.get(2)).toEqual([{ racerId: 8, output: 140.1 }]);
  });

  it('takes a missing object for an empty history', async () => {
    const { fetchImpl } = fakeFetch({
      'http://api/history/5': () => Response.json({ classId: 5, url: 'http://objects/missing', expiresAt: 1 }),
    });
    const history = await fetchHistory(new Api('http://api', fetchImpl), 5, 100, fetchImpl);
    expect(history.seconds.size).toBe(0);
    expect(history.classId).toBe(5);
  });

  it('reports other failures as ApiErrors naming the class', async () => {
    const { fetchImpl } = fakeFetch({
      'http://api/history/2': () => Response.json({ classId: 2, url: 'http://objects/bad', expiresAt: 1 }),
      'http://objects/bad': () => new Response('{"error":"Request has expired","code":"AccessDenied"}', { status: 403 }),
    });
    const error = await fetchHistory(new Api('http://api', fetchImpl), 2, 100, fetchImpl).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).message).toMatch(/History of class 2 failed: HTTP 403/);

    const corrupt = fakeFetch({
      'http://api/history/2': () => Response.json({ classId: 2, url: 'http://objects/corrupt', expiresAt: 1 }),
      'http://objects/corrupt': () => new Response(new Uint8Array([0x1f, 0x8b, 1, 2, 3])),
    });
    await expect(fetchHistory(new Api('http://api', corrupt.fetchImpl), 2, 100, corrupt.fetchImpl)).rejects.toThrow(
      /unreadable object/,
    );
  });
});

/** The wire's `members` of a sample whose bests at second 1, 2, … are `seconds` (in any order). */
function members(seconds: number[][]): [number, (number | null)[]][] {
  const count = Math.max(0, ...seconds.map((list) => list.length));
  return Array.from({ length: count }, (_, racer) => [racer + 1, seconds.map((list) => list[racer] ?? null)]);
}

describe('the sample and the percentile', () => {
  // Seconds 1 and 2 sampled; second 3 has nobody.
  const sample = { size: 512, racers: 40_000, members: members([[300, 250, 250, 120, 90], [410], []]) };

  it('reads the sample of an object, and none from older objects', () => {
    const history = parseHistory({ ...object, sample }, 3, 100);
    expect(history.exists).toBe(true);
    expect(history.sample?.racers).toBe(40_000);
    expect(history.sample?.size).toBe(512);
    expect(history.sample?.at(1)).toEqual([300, 250, 250, 120, 90]);
    expect(history.sample?.at(4)).toEqual([]);
    expect(parseHistory(object, 3, 100).sample).toBeNull();
    expect(parseHistory({ '1': { '8': 99 } }, 3, 100).sample).toBeNull();
    expect(readSample({ size: 1, racers: 'many', members: [] })).toBeNull();
    expect(readSample([1, 2])).toBeNull();
  });

  it('counts the sampled bests strictly above the output, at whole units', () => {
    const s = readSample(sample);
    // 250.9 → 250: above it only 300.
    expect(percentileAt(s, 1, 250.9)).toEqual({ second: 1, output: 250.9, top: (100 * 2) / 6, greater: 1, of: 5, racers: 40_000 });
    // Best of all: top 100 × 1/6.
    expect(percentileAt(s, 1, 301)?.greater).toBe(0);
    // Worst of all: every sampled best above.
    expect(percentileAt(s, 1, 10)).toMatchObject({ greater: 5, top: 100 });
    // Nobody sampled at that second, or no sample at all: no percentile.
    expect(percentileAt(s, 3, 100)).toBeNull();
    expect(percentileAt(s, 9, 100)).toBeNull();
    expect(percentileAt(null, 1, 100)).toBeNull();
  });

  it('agrees with a brute-force count on random samples', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    for (let round = 0; round < 200; round++) {
      const bests = Array.from({ length: 1 + Math.floor(random() * 300) }, () => Math.floor(random() * 400));
      // Unsorted on purpose: the reader sorts what the object says is sorted.
      const s = readSample({ size: 512, racers: bests.length, members: members([bests]) });
      const output = random() * 420;
      const greater = bests.filter((b) => b > Math.floor(output)).length;
      expect(percentileAt(s, 1, output)).toEqual({
        second: 1,
        output,
        top: (100 * (greater + 1)) / (bests.length + 1),
        greater,
        of: bests.length,
        racers: bests.length,
      });
    }
  });

  it('formats "top x %" rounded up', () => {
    expect(formatTop(2.1)).toBe('3');
    expect(formatTop(3)).toBe('3');
    expect(formatTop(100)).toBe('100');
    expect(formatTop(0.43)).toBe('0.5');
    expect(formatTop(0.001)).toBe('0.1');
  });
});

describe('a class without a history object', () => {
  it('is said by the API (url null): nothing is fetched, and the history is empty', async () => {
    const calls: string[] = [];
    const fetchImpl = (async (input: RequestInfo | URL) => {
      calls.push(String(input));
      return Response.json({ classId: 4, url: null, expiresAt: null });
    }) as typeof fetch;
    const history = await fetchHistory(new Api('http://api', fetchImpl), 4, 100, fetchImpl);
    expect(calls).toEqual(['http://api/history/4']);
    expect(history).toMatchObject({ classId: 4, exists: false, sample: null });
    expect(history.seconds.size).toBe(0);
  });
});
