import { describe, expect, it } from 'vitest';
import { Api } from './api';
import { LeaderboardPages, leaderboardRows } from './leaderboard';
import type { LeaderboardEntry, LeaderboardView } from './types';

/** A board of `n` racers, best first, with two ties, served in pages by an opaque cursor. */
function board(n: number) {
  const entries: LeaderboardEntry[] = Array.from({ length: n }, (_, i) => ({
    racerId: 1000 + i,
    name: `Racer ${1000 + i}`,
    best: 500 - Math.floor(i / 2) * 2,
    raceId: 1,
    updatedAt: 0,
  }));
  // Competition ranking: 1 + rows strictly better.
  for (const entry of entries) entry.place = 1 + entries.filter((e) => e.best > entry.best).length;
  const calls: string[] = [];
  const fetchImpl = (async (input: RequestInfo | URL) => {
    const url = new URL(String(input));
    calls.push(url.search);
    const limit = Number(url.searchParams.get('limit'));
    const cursor = url.searchParams.get('cursor');
    const start = cursor === null ? 0 : Number(atob(cursor));
    const next = start + limit < n ? btoa(String(start + limit)) : null;
    const view: LeaderboardView = { classId: 2, entries: entries.slice(start, start + limit), next };
    return Response.json(view);
  }) as typeof fetch;
  return { api: new Api('http://h/api', fetchImpl), entries, calls };
}

describe('LeaderboardPages', () => {
  it('walks the whole board forward, every row once and in order, then back', async () => {
    const { api, entries, calls } = board(53);
    const pages = new LeaderboardPages(20);
    const seen: LeaderboardEntry[] = [];
    let index = 0;
    for (;;) {
      const view = await api.leaderboard(2, 20, pages.cursorOf(index) ?? null);
      pages.loaded(index, view);
      seen.push(...view.entries);
      expect(pages.firstPlace).toBe(index * 20 + 1);
      if (!pages.hasNext) break;
      index += 1;
    }
    expect(seen).toEqual(entries);
    expect(pages.page).toBe(2);
    expect(calls[0]).toBe('?classId=2&limit=20');
    expect(calls[1]).toMatch(/^\?classId=2&limit=20&cursor=/);

    // Back one page replays its cursor; the pages after it are reachable again.
    expect(pages.hasPrevious).toBe(true);
    const back = await api.leaderboard(2, 20, pages.cursorOf(1) ?? null);
    pages.loaded(1, back);
    expect(back.entries).toEqual(entries.slice(20, 40));
    expect(pages.hasNext).toBe(true);
    expect(pages.cursorOf(2)).not.toBeUndefined();
    expect(pages.cursorOf(3)).toBeUndefined();

    pages.reset();
    expect([pages.page, pages.hasNext, pages.hasPrevious, pages.cursorOf(0), pages.cursorOf(1)]).toEqual([0, false, false, null, undefined]);
  });

  it('has no next page for a backend without cursors', () => {
    const pages = new LeaderboardPages(20);
    pages.loaded(0, { classId: 1, entries: [] });
    expect(pages.hasNext).toBe(false);
  });
});

describe('leaderboardRows', () => {
  const entries: LeaderboardEntry[] = [
    { racerId: 5, name: 'A', best: 300, raceId: 1, updatedAt: 0 },
    { racerId: 6, name: 'B', best: 290, raceId: 1, updatedAt: 0, place: 22 },
  ];

  it('places rows by the API, else by position', () => {
    const rows = leaderboardRows(entries, 21, 6, null, 'B');
    expect(rows.map((r) => [r.entry.racerId, r.place, r.own, r.gapBefore])).toEqual([
      [5, 21, false, false],
      [6, 22, true, false],
    ]);
  });

  it('adds the own row from the rank when the racer is on another page', () => {
    const rank = { classId: 1, racerId: 42, place: 137, of: 1100, best: 151.5, raceId: 9 };
    const rows = leaderboardRows(entries, 1, 42, rank, 'Racer 42');
    expect(rows).toHaveLength(3);
    expect(rows[2]).toMatchObject({ place: 137, own: true, gapBefore: true, entry: { racerId: 42, best: 151.5, raceId: 9, name: 'Racer 42' } });
    // On this page already: no second row.
    expect(leaderboardRows(entries, 1, 6, { ...rank, racerId: 6, place: 2 }, 'B')).toHaveLength(2);
  });
});
