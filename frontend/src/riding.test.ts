import { describe, expect, it } from 'vitest';
import { rideKey, ridingNow } from './riding';
import type { RaceView } from './types';

const race = (raceId: number, over: boolean, racers: number[]): RaceView => ({
  classId: 1,
  raceId,
  updatedAt: 0,
  over,
  standings: racers.map((racerId, i) => ({ rank: i + 1, racerId, output: 100 - i })),
});

describe('ridingNow', () => {
  it('lists the page racers of the open races, by id, with their races', () => {
    const races = [race(10, false, [150, 42, 7, 101, 100]), race(9, false, [42, 3]), race(8, true, [5])];
    expect(ridingNow(races, 100, new Set())).toEqual([
      { racerId: 3, raceIds: [9] },
      { racerId: 7, raceIds: [10] },
      { racerId: 42, raceIds: [10, 9] },
      { racerId: 100, raceIds: [10] },
    ]);
  });

  it('leaves out the page own rides', () => {
    const races = [race(10, false, [42, 7])];
    expect(ridingNow(races, 100, new Set([rideKey(1, 10, 42)]))).toEqual([{ racerId: 7, raceIds: [10] }]);
    // The same racer in another race of the class is someone else.
    expect(ridingNow(races, 100, new Set([rideKey(1, 11, 42), rideKey(2, 10, 7)]))).toHaveLength(2);
  });
});
