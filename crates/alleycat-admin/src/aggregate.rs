//! Every view recomputed in memory from archived lines, with the rules re-applied: plain maps per
//! document, folded by one worker per core and merged once at the end.

use std::collections::{BTreeMap, HashMap};

use alleycat_domain::{
    Claim, ClassHistory, Event, LeaderboardEntry, MaxMerge, Plausibility, RaceKey, RacerFinal,
    Reading, SecondSeries, Standings, check_holder, decode_delivery,
};
use alleycat_ports::{BestsKey, TraceKey};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::scope::Scope;

/// The rules a rebuild applies to each line, and the K of class histories.
#[derive(Clone, Debug)]
pub struct Rules {
    /// Race clock and clock skew: as the deployment is configured.
    pub plausibility: Plausibility,
    /// What is rebuilt.
    pub scope: Scope,
    /// Racers kept per second in class histories.
    pub top_k: u32,
}

impl Rules {
    /// Arrival to judge `reading` by: the `arrivedAt` the transformer archived, or, for lines
    /// archived before it did, the close of the line's race, which passes every rule but the
    /// race window (the only one such a line can still be judged by).
    fn arrival(&self, reading: &Reading<'_>) -> u64 {
        reading
            .arrived_at
            .unwrap_or_else(|| self.plausibility.clock.race_closes_at(reading.race_id))
    }
}

/// What the archive said, line by line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Delivery objects read.
    pub objects: u64,
    /// Compressed bytes read.
    pub bytes: u64,
    /// Objects listed but gone when read (expired).
    pub missing: u64,
    /// Objects corrupt part-way (their lines before the damage count).
    pub unreadable: u64,
    /// Valid readings.
    pub records: u64,
    /// Lines that are not valid readings.
    pub bad_lines: u64,
    /// Readings of classes not rebuilt.
    pub out_of_scope: u64,
    /// Readings of excluded racers.
    pub excluded: u64,
    /// Readings rejected, by rule.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Readings that moved views.
    pub admitted: u64,
}

impl Counts {
    fn merge(&mut self, other: &Self) {
        self.objects += other.objects;
        self.bytes += other.bytes;
        self.missing += other.missing;
        self.unreadable += other.unreadable;
        self.records += other.records;
        self.bad_lines += other.bad_lines;
        self.out_of_scope += other.out_of_scope;
        self.excluded += other.excluded;
        self.admitted += other.admitted;
        for (rule, n) in &other.rejected {
            *self.rejected.entry(rule).or_default() += n;
        }
    }
}

/// Every view rebuilt so far, and every document the archive names (admitted or not: a document
/// only a rejected or excluded line made is one to remove).
#[derive(Clone, Debug, Default)]
pub struct Aggregate {
    /// Standings of races in the window.
    pub standings: FxHashMap<RaceKey, Standings>,
    /// Finals of races in the window, by race and racer.
    pub finals: FxHashMap<(RaceKey, u32), RacerFinal>,
    /// Leaderboard rows, by class and racer (all time).
    pub records: FxHashMap<(u8, u32), LeaderboardEntry>,
    /// Racer bests (all time).
    pub bests: FxHashMap<BestsKey, SecondSeries>,
    /// Racer traces of races in the window.
    pub traces: FxHashMap<TraceKey, SecondSeries>,
    /// Class histories (all time).
    pub histories: BTreeMap<u8, ClassHistory>,
    /// Races in the window that any line of a class in scope names.
    pub races: FxHashSet<RaceKey>,
    /// Bests any line of a class in scope names.
    pub bests_named: FxHashSet<BestsKey>,
    /// Traces of races in the window any line of a class in scope names.
    pub traces_named: FxHashSet<TraceKey>,
    /// The earliest race of each class in the archive: what the archive reaches back to.
    pub first_race: BTreeMap<u8, u64>,
    /// Lines published by identities, waiting for their racers' claims.
    pub pending: Vec<Reading<'static>>,
    /// What was read.
    pub counts: Counts,
}

/// The final a racer keeps when the archive holds several for one race: the latest sent, as the
/// leaderboard writer's last write of a replayed stream leaves it (ties by output, then name).
fn later_final(a: &RacerFinal, b: &RacerFinal) -> bool {
    (b.finished_at, b.output, &b.name) > (a.finished_at, a.output, &a.name)
}

impl Aggregate {
    /// Reads one gzip NDJSON delivery object in. A corrupt object counts its lines before the
    /// damage (S3 objects never change, so nothing better will come of reading it again).
    pub fn add_object(&mut self, bytes: &[u8], rules: &Rules) {
        self.counts.objects += 1;
        self.counts.bytes += bytes.len() as u64;
        let result = decode_delivery(bytes, rules.plausibility.clock, |reading| {
            self.add_line(reading, rules);
        });
        let stats = match &result {
            Ok(stats) => stats,
            Err(error) => {
                self.counts.unreadable += 1;
                &error.stats
            }
        };
        self.counts.records += stats.records;
        self.counts.bad_lines += stats.skipped;
    }

    /// Judges one valid archived reading: scope, exclusion, plausibility, then (for an
    /// identity's line) the holder rule, which waits for the claims.
    pub fn add_line(&mut self, reading: &Reading<'_>, rules: &Rules) {
        let scope = &rules.scope;
        if !scope.has_class(reading.class_id) {
            self.counts.out_of_scope += 1;
            return;
        }
        self.name_documents(reading, rules);
        if scope.excludes(reading.racer_id) {
            self.counts.excluded += 1;
            return;
        }
        if let Err(rejection) = rules.plausibility.check(reading, rules.arrival(reading)) {
            *self.counts.rejected.entry(rejection.rule()).or_default() += 1;
            return;
        }
        if reading.identity_id.is_some() {
            self.pending.push(reading.clone().into_owned());
        } else {
            self.fold(reading, rules);
        }
    }

    fn name_documents(&mut self, reading: &Reading<'_>, rules: &Rules) {
        let race = reading.race();
        self.first_race
            .entry(race.class_id)
            .and_modify(|first| *first = (*first).min(race.race_id))
            .or_insert(race.race_id);
        self.bests_named.insert(BestsKey {
            racer_id: reading.racer_id,
            class_id: reading.class_id,
        });
        if rules.scope.has_race(race.race_id, rules.plausibility.clock) {
            self.races.insert(race);
            self.traces_named.insert(TraceKey {
                racer_id: reading.racer_id,
                race,
            });
        }
    }

    /// Folds an admitted reading into every view it moves.
    fn fold(&mut self, reading: &Reading<'_>, rules: &Rules) {
        self.counts.admitted += 1;
        let race = reading.race();
        let (second, output) = (reading.second, reading.output);
        let history = self
            .histories
            .entry(race.class_id)
            .or_insert_with(|| ClassHistory::new(race.class_id, rules.top_k));
        history.record(second, reading.racer_id, output);
        // Device time, as the history merger stamps it, so a rebuilt history equals a merged one.
        history.touch(reading.device_timestamp);
        self.bests
            .entry(BestsKey {
                racer_id: reading.racer_id,
                class_id: race.class_id,
            })
            .or_default()
            .record(second, output);
        let in_window = rules.scope.has_race(race.race_id, rules.plausibility.clock);
        if reading.event == Event::Final
            && let Some(result) = RacerFinal::from_reading(reading)
        {
            self.offer_record(race.class_id, result.to_leaderboard_entry());
            if in_window {
                self.offer_final(result);
            }
        }
        if in_window {
            self.standings
                .entry(race)
                .or_default()
                .record(reading.racer_id, output);
            self.traces
                .entry(TraceKey {
                    racer_id: reading.racer_id,
                    race,
                })
                .or_default()
                .record(second, output);
        }
    }

    fn offer_record(&mut self, class_id: u8, entry: LeaderboardEntry) {
        match self.records.entry((class_id, entry.racer_id)) {
            std::collections::hash_map::Entry::Occupied(mut row) => {
                row.get_mut().merge(&entry);
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(entry);
            }
        }
    }

    fn offer_final(&mut self, result: RacerFinal) {
        let race = RaceKey {
            class_id: result.class_id,
            race_id: result.race_id,
        };
        match self.finals.entry((race, result.racer_id)) {
            std::collections::hash_map::Entry::Occupied(mut kept) => {
                if later_final(kept.get(), &result) {
                    kept.insert(result);
                }
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(result);
            }
        }
    }

    /// The racers whose claims the pending lines need.
    pub fn pending_racers(&self) -> Vec<u32> {
        let mut racers: Vec<u32> = self.pending.iter().map(|r| r.racer_id).collect();
        racers.sort_unstable();
        racers.dedup();
        racers
    }

    /// Applies the holder rule to the pending lines with the racers' current claims.
    pub fn admit_pending(&mut self, claims: &HashMap<u32, Claim>, rules: &Rules) {
        for reading in std::mem::take(&mut self.pending) {
            match check_holder(&reading, claims.get(&reading.racer_id)) {
                Ok(()) => self.fold(&reading, rules),
                Err(rejection) => {
                    *self.counts.rejected.entry(rejection.rule()).or_default() += 1;
                }
            }
        }
    }

    /// Merges another worker's aggregate in.
    pub fn merge(&mut self, other: Self) {
        merge_maps(&mut self.standings, other.standings);
        merge_maps(&mut self.bests, other.bests);
        merge_maps(&mut self.traces, other.traces);
        for ((class_id, _), entry) in other.records {
            self.offer_record(class_id, entry);
        }
        for (_, result) in other.finals {
            self.offer_final(result);
        }
        for (class_id, history) in other.histories {
            match self.histories.entry(class_id) {
                std::collections::btree_map::Entry::Occupied(mut mine) => {
                    mine.get_mut().merge(&history);
                }
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(history);
                }
            }
        }
        self.races.extend(other.races);
        self.bests_named.extend(other.bests_named);
        self.traces_named.extend(other.traces_named);
        for (class_id, race_id) in other.first_race {
            self.first_race
                .entry(class_id)
                .and_modify(|first| *first = (*first).min(race_id))
                .or_insert(race_id);
        }
        self.pending.extend(other.pending);
        self.counts.merge(&other.counts);
    }
}

fn merge_maps<K: Eq + std::hash::Hash, V: MaxMerge>(
    into: &mut FxHashMap<K, V>,
    from: FxHashMap<K, V>,
) {
    for (key, value) in from {
        match into.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut mine) => {
                mine.get_mut().merge(&value);
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(value);
            }
        }
    }
}

#[cfg(test)]
mod tests;
