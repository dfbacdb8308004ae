import { describe, expect, it } from 'vitest';
import { beatsRecord, compareEntries, placeInTopK, recordAt, windowRows, type Entry } from './ranking';

const e = (racerId: number, output: number): Entry => ({ racerId, output });
const summary = (p: ReturnType<typeof placeInTopK>) => p.rows.map((r) => [r.rank, r.racerId, r.output, r.self]);

describe('placeInTopK', () => {
  const top = [e(1, 300), e(2, 250), e(3, 200), e(4, 150)];

  it('puts the live racer first in an empty history', () => {
    const p = placeInTopK([], e(9, 120.5), 100);
    expect(summary(p)).toEqual([[1, 9, 120.5, true]]);
    expect(p.selfIndex).toBe(0);
    expect(p.beyondTopK).toBe(false);
  });

  it('places the live racer by output', () => {
    const p = placeInTopK(top, e(9, 210), 100);
    expect(summary(p)).toEqual([
      [1, 1, 300, false],
      [2, 2, 250, false],
      [3, 9, 210, true],
      [4, 3, 200, false],
      [5, 4, 150, false],
    ]);
    expect(p.selfIndex).toBe(2);
  });

  it('sorts an unsorted history first', () => {
    const p = placeInTopK([e(4, 150), e(1, 300), e(3, 200), e(2, 250)], e(9, 400), 100);
    expect(p.rows.map((r) => r.racerId)).toEqual([9, 1, 2, 3, 4]);
  });

  it('breaks ties by lower racer id, as the backend does', () => {
    expect(placeInTopK(top, e(0, 200), 100).rows.map((r) => r.racerId)).toEqual([1, 2, 0, 3, 4]);
    expect(placeInTopK(top, e(7, 200), 100).rows.map((r) => r.racerId)).toEqual([1, 2, 3, 7, 4]);
    expect(placeInTopK([e(5, 100), e(2, 100)], null, 10).rows.map((r) => r.racerId)).toEqual([2, 5]);
  });

  it('replaces the live racer\u2019s own history entry, so they appear once', () => {
    const p = placeInTopK(top, e(2, 100), 100);
    expect(p.rows.filter((r) => r.racerId === 2)).toHaveLength(1);
    expect(summary(p)).toEqual([
      [1, 1, 300, false],
      [2, 3, 200, false],
      [3, 4, 150, false],
      [4, 2, 100, true],
    ]);
  });

  it('keeps K rows when the live racer enters a full top K', () => {
    const p = placeInTopK(top, e(9, 260), 4);
    expect(summary(p)).toEqual([
      [1, 1, 300, false],
      [2, 9, 260, true],
      [3, 2, 250, false],
      [4, 3, 200, false],
    ]);
    expect(p.beyondTopK).toBe(false);
  });

  it('appends the live racer unranked below a full top K', () => {
    const p = placeInTopK(top, e(9, 100), 4);
    expect(summary(p)).toEqual([
      [1, 1, 300, false],
      [2, 2, 250, false],
      [3, 3, 200, false],
      [4, 4, 150, false],
      [null, 9, 100, true],
    ]);
    expect(p.beyondTopK).toBe(true);
    expect(p.selfIndex).toBe(4);
    // equal to the K-th with a higher id is still outside
    expect(placeInTopK(top, e(9, 150), 4).beyondTopK).toBe(true);
    // equal to the K-th with a lower id takes the place
    expect(summary(placeInTopK(top, e(0, 150), 4)).at(-1)).toEqual([4, 0, 150, true]);
  });

  it('ranks the live racer within a top K that is not full', () => {
    const p = placeInTopK(top, e(9, 1), 5);
    expect(summary(p).at(-1)).toEqual([5, 9, 1, true]);
    expect(p.beyondTopK).toBe(false);
  });

  it('keeps everyone with K = 0, and trims a longer history to K', () => {
    const many = Array.from({ length: 150 }, (_, i) => e(i + 1, 1000 - i));
    expect(placeInTopK(many, e(999, 0.5), 0).rows).toHaveLength(151);
    expect(placeInTopK(many, null, 100).rows).toHaveLength(100);
    expect(placeInTopK(many, e(999, 2000), 100).rows).toHaveLength(100);
  });

  it('ranks the history alone without a live racer', () => {
    const p = placeInTopK(top, null, 100);
    expect(p.selfIndex).toBe(-1);
    expect(p.rows.map((r) => r.rank)).toEqual([1, 2, 3, 4]);
    expect(p.rows.every((r) => !r.self)).toBe(true);
  });
});

describe('personal records', () => {
  const bests = [100, null, 150.5];

  it('reads the record of a second', () => {
    expect(recordAt(bests, 1)).toBe(100);
    expect(recordAt(bests, 2)).toBeNull();
    expect(recordAt(bests, 3)).toBe(150.5);
    expect(recordAt(bests, 4)).toBeNull();
    expect(recordAt(bests, 0)).toBeNull();
    expect(recordAt(null, 1)).toBeNull();
  });

  it('is beaten only by a strictly greater output', () => {
    expect(beatsRecord(bests, 1, 100.0001)).toBe(true);
    expect(beatsRecord(bests, 1, 100)).toBe(false);
    expect(beatsRecord(bests, 1, 99)).toBe(false);
    expect(beatsRecord(bests, 3, 151)).toBe(true);
  });

  it('has nothing to beat where never ridden', () => {
    expect(beatsRecord(bests, 2, 500)).toBe(false);
    expect(beatsRecord(bests, 10, 500)).toBe(false);
    expect(beatsRecord(null, 1, 500)).toBe(false);
  });
});

describe('compareEntries', () => {
  it('orders like compareEntries', () => {
    expect(compareEntries(e(1, 10), e(2, 10))).toBeLessThan(0);
    expect(compareEntries(e(1, 10), e(2, 11))).toBeGreaterThan(0);
  });
});

describe('windowRows', () => {
  const rows = Array.from({ length: 40 }, (_, i) => i);

  it('shows everything that fits', () => {
    expect(windowRows(rows.slice(0, 9), 8, 3, 3).map((s) => s.row)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('shows the top and the rows around the live racer, marking the gap', () => {
    const shown = windowRows(rows, 20, 3, 2);
    expect(shown.map((s) => s.row)).toEqual([0, 1, 2, 18, 19, 20, 21, 22]);
    expect(shown.map((s) => s.gapBefore)).toEqual([false, false, false, true, false, false, false, false]);
  });

  it('keeps the window full at the end and without a live racer', () => {
    expect(windowRows(rows, 39, 3, 2).map((s) => s.row)).toEqual([0, 1, 2, 35, 36, 37, 38, 39]);
    expect(windowRows(rows, -1, 3, 2).map((s) => s.row)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(windowRows(rows, 4, 3, 2).map((s) => s.row)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });
});
