// Paging through the class leaderboard with the API's opaque cursors: each page's `next` names
// the following page (`null` on the last), so going forward follows it and going back replays a
// cursor seen before. Places come from the API (`place`), or from the row's position for a
// backend that does not send them.

import type { LeaderboardEntry, LeaderboardView, RacerRank } from './types';

export class LeaderboardPages {
  /** The cursor of each page reached so far: index 0 is the first page (no cursor). */
  private cursors: (string | null)[] = [null];
  /** The page shown, 0-based. */
  page = 0;
  /** The cursor of the page after the shown one, `null` if it is the last. */
  next: string | null = null;

  constructor(readonly pageSize: number) {}

  /** Back to the first page (a class change, or the board changed under the cursors). */
  reset(): void {
    this.cursors = [null];
    this.page = 0;
    this.next = null;
  }

  /** The cursor that loads page `index`, or `undefined` if that page is not reachable yet. */
  cursorOf(index: number): string | null | undefined {
    return index >= 0 ? this.cursors[index] : undefined;
  }

  /** Page `index` arrived as `view`: it is the shown page, and its `next` the way forward. */
  loaded(index: number, view: LeaderboardView): void {
    this.page = index;
    // An older backend sends no cursor: a full page may then have more behind it, unreachable.
    this.next = typeof view.next === 'string' ? view.next : null;
    this.cursors.length = index + 1;
    if (this.next !== null) this.cursors.push(this.next);
  }

  get hasNext(): boolean {
    return this.next !== null;
  }

  get hasPrevious(): boolean {
    return this.page > 0;
  }

  /** The place of the shown page's first row, by position (for rows without `place`). */
  get firstPlace(): number {
    return this.page * this.pageSize + 1;
  }
}

/**
 * The rows to show: the page's, each with its place, and the racer's own row after them (from
 * their rank) when they are on the board but not on this page.
 */
export function leaderboardRows(
  entries: readonly LeaderboardEntry[],
  firstPlace: number,
  racerId: number,
  rank: RacerRank | null,
  name: string,
): { entry: LeaderboardEntry; place: number; own: boolean; gapBefore: boolean }[] {
  const rows = entries.map((entry, i) => ({
    entry,
    place: entry.place ?? firstPlace + i,
    own: entry.racerId === racerId,
    gapBefore: false,
  }));
  if (rank !== null && rank.racerId === racerId && !rows.some((r) => r.own)) {
    const entry: LeaderboardEntry = {
      place: rank.place,
      racerId,
      name,
      best: rank.best,
      raceId: rank.raceId,
      updatedAt: 0,
    };
    rows.push({ entry, place: rank.place, own: true, gapBefore: true });
  }
  return rows;
}
