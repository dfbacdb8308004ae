// Which of the page's racers are riding now in a class: those in the standings of the class's
// races that are still open (not `over`), less this page's own rides. Riding one of them would
// merge two people into one racer (one standings row, one final, one leaderboard row), so the
// page lists them and says so before a ride.

import type { RaceView } from './types';

/** A page racer riding now, and the open races they ride in. */
export interface RidingRacer {
  racerId: number;
  raceIds: number[];
}

/** The key of a ride this page made: it is not "someone else riding". */
export function rideKey(classId: number, raceId: number, racerId: number): string {
  return `${classId}:${raceId}:${racerId}`;
}

/**
 * The racers 1–`rosterSize` in the standings of the open races among `races`, by racer id, with
 * this page's own rides (`own`, keys of [`rideKey`]) left out.
 */
export function ridingNow(races: readonly RaceView[], rosterSize: number, own: ReadonlySet<string>): RidingRacer[] {
  const riding = new Map<number, number[]>();
  for (const race of races) {
    if (race.over) continue;
    for (const { racerId } of race.standings) {
      if (racerId < 1 || racerId > rosterSize || own.has(rideKey(race.classId, race.raceId, racerId))) continue;
      const raceIds = riding.get(racerId) ?? [];
      if (!raceIds.includes(race.raceId)) raceIds.push(race.raceId);
      riding.set(racerId, raceIds);
    }
  }
  return [...riding.entries()].sort(([a], [b]) => a - b).map(([racerId, raceIds]) => ({ racerId, raceIds }));
}
