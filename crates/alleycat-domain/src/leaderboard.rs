//! Final results and the all-time class leaderboard.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::merge::MaxMerge;
use crate::message::{Event, Reading};
use crate::output::Output;

/// A racer's result in one race: the output of their `final` second.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RacerFinal {
    /// Class raced.
    pub class_id: u8,
    /// The race.
    pub race_id: u64,
    /// The racer.
    pub racer_id: u32,
    /// The racer's name as the device sent it.
    pub name: String,
    /// Output of the final second.
    pub output: Output,
    /// Device time of the final second, epoch milliseconds. Taken from the message, not the
    /// clock, so replaying a record writes the identical item.
    pub finished_at: u64,
}

impl RacerFinal {
    /// The final result a `final` reading carries; `None` for ordinary seconds.
    pub fn from_reading(reading: &Reading<'_>) -> Option<Self> {
        (reading.event == Event::Final).then(|| Self {
            class_id: reading.class_id,
            race_id: reading.race_id,
            racer_id: reading.racer_id,
            name: reading.name.clone().into_owned(),
            output: reading.output,
            finished_at: reading.device_timestamp,
        })
    }

    /// The leaderboard row this result would set.
    pub fn to_leaderboard_entry(&self) -> LeaderboardEntry {
        LeaderboardEntry {
            racer_id: self.racer_id,
            name: self.name.clone(),
            best: self.output,
            race_id: self.race_id,
            updated_at: self.finished_at,
        }
    }
}

/// A racer's row on a class leaderboard: best final output over all races, and the race that set
/// it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderboardEntry {
    /// The racer.
    pub racer_id: u32,
    /// Name sent with the record-setting result.
    pub name: String,
    /// Best final output.
    pub best: Output,
    /// The race that set it.
    pub race_id: u64,
    /// Device time of the record-setting final, epoch milliseconds.
    pub updated_at: u64,
}

impl LeaderboardEntry {
    /// Record order: a higher best wins; on equal bests the earlier race keeps the record (it set
    /// it first), so the winner does not depend on the order results arrive in.
    pub fn record_order(&self, other: &Self) -> Ordering {
        self.best
            .cmp(&other.best)
            .then_with(|| other.race_id.cmp(&self.race_id))
            .then_with(|| other.updated_at.cmp(&self.updated_at))
            .then_with(|| other.name.cmp(&self.name))
    }

    /// The "only if greater" decision: whether this row should replace `current`. A row that does
    /// not beat the stored one is the normal "no new record", not an error.
    pub fn beats(&self, current: Option<&Self>) -> bool {
        current.is_none_or(|current| self.record_order(current) == Ordering::Greater)
    }
}

impl MaxMerge for LeaderboardEntry {
    fn merge(&mut self, other: &Self) -> bool {
        if other.beats(Some(self)) {
            self.clone_from(other);
            true
        } else {
            false
        }
    }
}

/// Sorts leaderboard rows for display: best first, ties by the record order, then racer id.
pub fn rank_leaderboard(entries: &mut [LeaderboardEntry]) {
    entries.sort_unstable_by(|a, b| b.record_order(a).then(a.racer_id.cmp(&b.racer_id)));
}
