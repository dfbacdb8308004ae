// Rankings: placing the live racer among the all-time top-K of a second, personal-record
// detection, and which rows of a long ranking to show.

/** One racer's output in a ranking. */
export interface Entry {
  racerId: number;
  output: number;
}

/** The backend's rank order: higher output first, equal outputs by lower racer id. */
export function compareEntries(a: Entry, b: Entry): number {
  return b.output - a.output || a.racerId - b.racerId;
}

export interface PlacedRow extends Entry {
  /** 1-based rank; `null` when the racer is outside the top K (shown as "> K"). */
  rank: number | null;
  self: boolean;
}

export interface Placement {
  rows: PlacedRow[];
  /** Index of the live racer's row in `rows`, -1 when there is no live racer. */
  selfIndex: number;
  /** Whether the live racer is outside the top K. */
  beyondTopK: boolean;
}

/**
 * Places the live racer (`self`, their output right now) among a second's all-time top K
 * (`top`, any order). The live racer's own entry in the history (their past best at this second)
 * is replaced by the live output, so they appear once. With `k` > 0 at most `k` ranked rows are
 * kept: when the live racer enters, the last one drops out; when they do not, they are appended
 * with rank `null`. `k` = 0 keeps everyone.
 */
export function placeInTopK(top: readonly Entry[], self: Entry | null, k: number): Placement {
  const others = top
    .filter((e) => self === null || e.racerId !== self.racerId)
    .slice()
    .sort(compareEntries);
  const limited = k > 0 ? others.slice(0, k) : others;
  if (self === null) {
    return {
      rows: limited.map((e, i) => ({ ...e, rank: i + 1, self: false })),
      selfIndex: -1,
      beyondTopK: false,
    };
  }
  let position = 0;
  while (position < limited.length && compareEntries(limited[position], self) < 0) position++;
  if (k > 0 && position >= k) {
    const rows: PlacedRow[] = limited.map((e, i) => ({ ...e, rank: i + 1, self: false }));
    rows.push({ racerId: self.racerId, output: self.output, rank: null, self: true });
    return { rows, selfIndex: rows.length - 1, beyondTopK: true };
  }
  const merged: Entry[] = [...limited.slice(0, position), self, ...limited.slice(position)];
  const kept = k > 0 ? merged.slice(0, k) : merged;
  return {
    rows: kept.map((e, i) => ({
      racerId: e.racerId,
      output: e.output,
      rank: i + 1,
      self: i === position,
    })),
    selfIndex: position,
    beyondTopK: false,
  };
}

/** The racer's personal record at `second` (from 1), if they have one. */
export function recordAt(bests: readonly (number | null)[] | null, second: number): number | null {
  if (bests === null || second < 1) return null;
  const value = bests[second - 1];
  return typeof value === 'number' ? value : null;
}

/**
 * Whether `output` beats the racer's own record at `second`: strictly greater than a record that
 * exists. A second never ridden before has no record to beat.
 */
export function beatsRecord(bests: readonly (number | null)[] | null, second: number, output: number): boolean {
  const record = recordAt(bests, second);
  return record !== null && output > record;
}

export interface ShownRow<T> {
  row: T;
  /** Index in the full ranking. */
  index: number;
  /** Whether rows were left out just before this one. */
  gapBefore: boolean;
}

/**
 * The rows of a long ranking worth showing on a small screen: the first `top`, and `around` rows
 * either side of the live racer (`selfIndex`, -1 for none). Everything when it all fits.
 */
export function windowRows<T>(rows: readonly T[], selfIndex: number, top: number, around: number): ShownRow<T>[] {
  const budget = top + 2 * around + 1;
  const keep = new Set<number>();
  if (rows.length <= budget) {
    rows.forEach((_, i) => keep.add(i));
  } else if (selfIndex < 0) {
    for (let i = 0; i < budget; i++) keep.add(i);
  } else {
    for (let i = 0; i < top; i++) keep.add(i);
    const from = Math.max(0, Math.min(selfIndex - around, rows.length - 2 * around - 1));
    for (let i = from; i <= from + 2 * around && i < rows.length; i++) keep.add(i);
  }
  const shown: ShownRow<T>[] = [];
  let previous = -1;
  for (let i = 0; i < rows.length; i++) {
    if (!keep.has(i)) continue;
    shown.push({ row: rows[i], index: i, gapBefore: i !== previous + 1 });
    previous = i;
  }
  return shown;
}
