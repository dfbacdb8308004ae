//! Race standings: each racer's best output so far in one race.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::merge::MaxMerge;
use crate::message::Reading;
use crate::output::Output;
use crate::race::RaceKey;

/// Best output per racer in one race: "Here now" while the race runs, "Race results" once over.
///
/// Ordered by racer id so that its JSON, its stored form and its realtime message are
/// deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Standings {
    results: BTreeMap<u32, Output>,
}

impl Standings {
    /// Standings with no racers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one second of a racer's ride; returns whether the racer's best rose.
    pub fn record(&mut self, racer_id: u32, output: Output) -> bool {
        match self.results.entry(racer_id) {
            std::collections::btree_map::Entry::Occupied(mut best) => {
                if output > *best.get() {
                    best.insert(output);
                    true
                } else {
                    false
                }
            }
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(output);
                true
            }
        }
    }

    /// Each racer's best, by racer id.
    pub fn results(&self) -> &BTreeMap<u32, Output> {
        &self.results
    }

    /// A racer's best, if the racer has ridden in this race.
    pub fn best_of(&self, racer_id: u32) -> Option<Output> {
        self.results.get(&racer_id).copied()
    }

    /// Number of racers.
    pub fn len(&self) -> usize {
        self.results.len()
    }

    /// Whether nobody has ridden yet.
    pub fn is_empty(&self) -> bool {
        self.results.is_empty()
    }

    /// Racers ranked by best output (descending), ties by racer id: the order standings are shown.
    pub fn ranked(&self) -> Vec<(u32, Output)> {
        let mut ranked: Vec<_> = self.results.iter().map(|(&r, &o)| (r, o)).collect();
        ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked
    }
}

impl FromIterator<(u32, Output)> for Standings {
    fn from_iter<I: IntoIterator<Item = (u32, Output)>>(iter: I) -> Self {
        let mut standings = Self::new();
        for (racer, output) in iter {
            standings.record(racer, output);
        }
        standings
    }
}

/// Racers a race admits unless configured: comfortably above the 1,000 a race is sized for, and
/// far below what breaks a store (2,000 racers with 7-digit ids make a standings item of about
/// 40 KB, against DynamoDB's 400 KB, and a realtime message of about 36 KB, against IoT Core's
/// 128 KB).
pub const DEFAULT_MAX_RACERS_PER_RACE: usize = 2_000;

impl Standings {
    /// Max-merges `other` in, admitting new racers only while the race has fewer than `cap`:
    /// racers already in keep improving, a racer beyond the cap is refused (returned, by id).
    /// Which racers fill the last places depends on arrival order, so this merge is idempotent
    /// but, at the cap only, not commutative; below the cap it is [`MaxMerge::merge`] exactly.
    pub fn merge_capped(&mut self, other: &Self, cap: usize) -> (bool, Vec<u32>) {
        let mut changed = false;
        let mut refused = Vec::new();
        for (&racer, &output) in &other.results {
            if self.results.len() >= cap && !self.results.contains_key(&racer) {
                refused.push(racer);
            } else {
                changed |= self.record(racer, output);
            }
        }
        (changed, refused)
    }
}

impl MaxMerge for Standings {
    fn merge(&mut self, other: &Self) -> bool {
        let mut changed = false;
        for (&racer, &output) in &other.results {
            changed |= self.record(racer, output);
        }
        changed
    }
}

/// One race's share of a batch: its merged standings and where in the batch it first appears.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaceDelta {
    /// Max-merge of the race's records in this batch.
    pub standings: Standings,
    /// Position (index in the batch) of the race's earliest record: on an ordered stream, a failed
    /// write of this race must make the batch resume from here.
    pub first_position: usize,
    /// Number of the batch's records for this race.
    pub records: usize,
}

/// A batch of readings grouped by race, so that each race costs one write per batch however many
/// of its racers' records arrived.
#[derive(Clone, Debug, Default)]
pub struct StandingsBatch {
    races: FxHashMap<RaceKey, RaceDelta>,
}

impl StandingsBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the reading found at `position` of the batch.
    pub fn add(&mut self, position: usize, reading: &Reading<'_>) {
        self.add_output(position, reading.race(), reading.racer_id, reading.output);
    }

    /// Adds one racer's output for a race, found at `position` of the batch.
    pub fn add_output(&mut self, position: usize, race: RaceKey, racer_id: u32, output: Output) {
        let delta = self.races.entry(race).or_insert_with(|| RaceDelta {
            first_position: position,
            ..RaceDelta::default()
        });
        delta.first_position = delta.first_position.min(position);
        delta.records += 1;
        delta.standings.record(racer_id, output);
    }

    /// Number of races in the batch.
    pub fn len(&self) -> usize {
        self.races.len()
    }

    /// Whether the batch holds no valid record.
    pub fn is_empty(&self) -> bool {
        self.races.is_empty()
    }

    /// The races, ordered by their first position so writes follow the stream's order.
    pub fn into_races(self) -> Vec<(RaceKey, RaceDelta)> {
        let mut races: Vec<_> = self.races.into_iter().collect();
        races.sort_unstable_by_key(|(_, delta)| delta.first_position);
        races
    }
}

#[cfg(test)]
mod cap_tests {
    use super::*;

    #[test]
    fn a_full_race_refuses_newcomers_and_keeps_improving_its_racers() {
        let out = Output::from_ten_thousandths;
        let mut race: Standings = [(1, out(10)), (2, out(20))].into_iter().collect();
        let delta: Standings = [(1, out(30)), (3, out(99)), (4, out(5))]
            .into_iter()
            .collect();
        let (changed, refused) = race.clone().merge_capped(&delta, 10);
        assert!(changed);
        assert!(refused.is_empty());
        let (changed, refused) = race.merge_capped(&delta, 2);
        assert!(changed);
        assert_eq!(refused, vec![3, 4]);
        assert_eq!(race.len(), 2);
        assert_eq!(race.best_of(1), Some(out(30)));
        // Idempotent: the same delta again changes nothing and refuses the same racers.
        assert_eq!(race.merge_capped(&delta, 2), (false, vec![3, 4]));
    }
}
