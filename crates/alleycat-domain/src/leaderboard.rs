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

impl LeaderboardEntry {
    /// Leaderboard order between rows of different racers: `Less` when `self` is listed first.
    /// Best first; ties by the record order (the earlier race, then the earlier final, then the
    /// name), then racer id: a total order, so pages of a leaderboard can resume after any row.
    pub fn rank_cmp(&self, other: &Self) -> Ordering {
        other
            .record_order(self)
            .then(self.racer_id.cmp(&other.racer_id))
    }
}

/// Sorts leaderboard rows for display: best first, ties by the record order, then racer id
/// ([`LeaderboardEntry::rank_cmp`]).
pub fn rank_leaderboard(entries: &mut [LeaderboardEntry]) {
    entries.sort_unstable_by(LeaderboardEntry::rank_cmp);
}

/// Width of a rank-count bucket, in ten-thousandths: half an output unit. Outputs lie between
/// 22.75 and 470.25, so a class has at most 896 buckets (about 9 KB as a DynamoDB item, 2–3 KB
/// in practice), and a 40,000-racer class puts a few hundred racers in its fullest bucket.
pub const RANK_BUCKET_WIDTH: u32 = 5_000;

/// The rank-count bucket of a best: `floor(best / RANK_BUCKET_WIDTH)`.
pub fn rank_bucket(best: Output) -> u32 {
    best.ten_thousandths() / RANK_BUCKET_WIDTH
}

/// The bests a bucket holds, as an inclusive range of ten-thousandths.
pub fn bucket_range(bucket: u32) -> (Output, Output) {
    let low = bucket.saturating_mul(RANK_BUCKET_WIDTH);
    let high = low.saturating_add(RANK_BUCKET_WIDTH - 1);
    (
        Output::from_ten_thousandths(low),
        Output::from_ten_thousandths(high),
    )
}

/// How the per-bucket counts change when rows move from their old best (`None`: a new row) to
/// their new one: net deltas, buckets that do not change left out.
pub fn count_deltas<'a>(
    moves: impl IntoIterator<Item = (Option<Output>, Output)> + 'a,
) -> std::collections::BTreeMap<u32, i64> {
    let mut deltas = std::collections::BTreeMap::new();
    for (old, new) in moves {
        if let Some(old) = old {
            *deltas.entry(rank_bucket(old)).or_insert(0) -= 1;
        }
        *deltas.entry(rank_bucket(new)).or_insert(0) += 1;
    }
    deltas.retain(|_, delta| *delta != 0);
    deltas
}

/// A racer's place from the class's bucket counts: 1 + every row in a higher bucket + the rows
/// of its own bucket with a strictly higher best (`above_in_bucket`); and the class size.
pub fn place_from_counts(
    counts: &std::collections::BTreeMap<u32, u64>,
    bucket: u32,
    above_in_bucket: u64,
) -> (u64, u64) {
    let higher: u64 = counts
        .range(bucket.saturating_add(1)..)
        .map(|(_, n)| *n)
        .sum();
    let of = counts.values().sum();
    (1 + higher + above_in_bucket, of)
}

/// The counts of a class's rows by bucket, computed from the rows themselves (a recount).
pub fn bucket_counts<'a>(
    rows: impl IntoIterator<Item = &'a LeaderboardEntry>,
) -> std::collections::BTreeMap<u32, u64> {
    let mut counts = std::collections::BTreeMap::new();
    for row in rows {
        *counts.entry(rank_bucket(row.best)).or_insert(0) += 1;
    }
    counts
}
