//! The class history's racer sample: a bottom-S hash sample of every racer who ever rode the
//! class, each with their all-time best (floored to whole output units) at every second, so any
//! rider's percentile at any second can be estimated among everyone, not only the top K.
//!
//! **Which racers.** Each racer id has a fixed 64-bit hash ([`sample_hash`]: splitmix64); the
//! sample keeps the `S` racers with the smallest `(hash, racerId)`. A racer's hash never changes
//! and the S-th smallest hash only falls, so a racer is either sampled from its first record on
//! (and keeps every best from then) or never again: the sample is exactly "the bottom S of all
//! racers seen, with their complete bests", whatever the order records and merges arrive in.
//! Merging is a union that keeps the S smallest hashes and, per racer and second, the maximum:
//! commutative, associative and idempotent, like every other view.
//!
//! **Accuracy** (docs/architecture.md states it in full). The sampled racers are a uniform random
//! sample of the class (the hash is independent of performance), so the fraction of them above a
//! live output estimates the class's fraction within `z·sqrt(p(1−p)/S)` (binomial; finite
//! population makes it slightly tighter), plus the floor to whole units: sampled bests in the
//! live output's own unit count as not above it. The class size is `S − 1` over the S-th
//! smallest hash as a fraction of 2^64 (KMV; relative standard error about `1/sqrt(S−2)`), exact
//! while fewer than S racers have ridden.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;

use crate::merge::MaxMerge;
use crate::output::Output;

/// Default S: 200 sampled racers keep the history object under 250 KB gzip at 40,000 racers with
/// the top 100 beside it (about 0.37 KB gzip per sampled racer over 300 seconds; BENCHMARKS.md),
/// for ±6.9 percentage points at 95% in the worst case (p = ½), ±2.4 at the top 3%.
pub const DEFAULT_SAMPLE_SIZE: u32 = 200;

/// The fixed hash that orders racers for sampling: splitmix64 of the racer id (the id plus the
/// golden-ratio increment, then the splitmix64 finalizer). A bijection on 64 bits, so no two
/// racers collide; documented here because it decides which racers a history samples.
pub fn sample_hash(racer_id: u32) -> u64 {
    let mut z = u64::from(racer_id).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stored best: 0 is "no value at this second", otherwise whole output units plus one, so an
/// output below one unit is still a value.
type Cell = u32;

fn cell(output: Output) -> Cell {
    (output.ten_thousandths() / Output::SCALE).saturating_add(1)
}

/// A bottom-S sample of a class's racers with their all-time bests per second.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RacerSample {
    size: u32,
    /// Racer → best per second (index 0 = second 1), as [`Cell`]s.
    members: FxHashMap<u32, Vec<Cell>>,
    /// The members by `(hash, racer)`: the last one is the first to go.
    order: BTreeSet<(u64, u32)>,
}

impl Default for RacerSample {
    fn default() -> Self {
        Self::new(DEFAULT_SAMPLE_SIZE)
    }
}

impl RacerSample {
    /// An empty sample keeping `size` racers (0 keeps none).
    pub fn new(size: u32) -> Self {
        Self {
            size,
            members: FxHashMap::default(),
            order: BTreeSet::new(),
        }
    }

    /// S, the configured capacity.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// How many racers are sampled (at most S).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether no racer is sampled.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn capacity(&self) -> usize {
        usize::try_from(self.size).unwrap_or(usize::MAX)
    }

    /// Whether a racer with `key` is or would be kept now: nearly every record of a full sample
    /// is turned away here, by one comparison and no lookup.
    fn admits(&self, key: (u64, u32)) -> bool {
        self.size > 0
            && (self.order.len() < self.capacity() || self.order.last().is_some_and(|l| key <= *l))
    }

    /// Records a racer's output at `second` (from 1); returns whether the sample changed.
    pub fn record(&mut self, second: u16, racer_id: u32, output: Output) -> bool {
        let Some(index) = usize::from(second).checked_sub(1) else {
            return false;
        };
        let key = (sample_hash(racer_id), racer_id);
        if !self.admits(key) {
            return false;
        }
        let series = self.members.entry(racer_id).or_default();
        let mut changed = false;
        if series.is_empty() {
            self.order.insert(key);
            changed = true;
        }
        if index >= series.len() {
            series.resize(index + 1, 0);
        }
        let value = cell(output);
        if value > series[index] {
            series[index] = value;
            changed = true;
        }
        self.evict();
        changed
    }

    fn evict(&mut self) {
        while self.order.len() > self.capacity() {
            let (_, racer) = self.order.pop_last().expect("order is longer than S");
            self.members.remove(&racer);
        }
    }
}

impl MaxMerge for RacerSample {
    /// The union, cut to the smaller S of the two (exact for it), the larger best per racer and
    /// second.
    fn merge(&mut self, other: &Self) -> bool {
        let mut changed = false;
        if other.size < self.size {
            self.size = other.size;
            self.evict();
            changed = true;
        }
        for (&racer, theirs) in &other.members {
            let key = (sample_hash(racer), racer);
            if !self.members.contains_key(&racer) {
                if !self.admits(key) {
                    continue;
                }
                self.order.insert(key);
                self.members.insert(racer, theirs.clone());
                self.evict();
                changed = true;
                continue;
            }
            let mine = self.members.get_mut(&racer).expect("checked above");
            if theirs.len() > mine.len() {
                mine.resize(theirs.len(), 0);
            }
            for (slot, &value) in mine.iter_mut().zip(theirs) {
                if value > *slot {
                    *slot = value;
                    changed = true;
                }
            }
        }
        changed
    }
}

impl RacerSample {
    /// The estimated number of racers who ever rode the class: exact while the sample is not
    /// full, otherwise KMV, `(S − 1) / u_S` with `u_S` the S-th smallest hash as a fraction of
    /// 2^64.
    pub fn estimated_racers(&self) -> u64 {
        match self.order.last() {
            Some(&(hash, _)) if self.order.len() >= self.capacity() && self.size > 1 => {
                #[allow(clippy::cast_precision_loss)]
                let fraction = (hash as f64 + 1.0) / 18_446_744_073_709_551_616.0;
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    clippy::cast_precision_loss
                )]
                let estimate = ((f64::from(self.size) - 1.0) / fraction).round() as u64;
                estimate.max(self.order.len() as u64)
            }
            _ => self.members.len() as u64,
        }
    }

    /// The sampled racers' bests at `second`, in whole output units (floored), highest first.
    pub fn at_second(&self, second: u16) -> Vec<u32> {
        let Some(index) = usize::from(second).checked_sub(1) else {
            return Vec::new();
        };
        let mut values: Vec<u32> = self
            .members
            .values()
            .filter_map(|series| series.get(index).copied())
            .filter(|&c| c > 0)
            .map(|c| c - 1)
            .collect();
        values.sort_unstable_by(|a, b| b.cmp(a));
        values
    }

    /// The estimated fraction of the class whose all-time best at `second` is strictly above
    /// `output` (sampled bests in `output`'s own whole unit count as not above it): `None` when
    /// no sampled racer has a value at that second.
    pub fn fraction_above(&self, second: u16, output: Output) -> Option<f64> {
        let values = self.at_second(second);
        if values.is_empty() {
            return None;
        }
        let unit = output.ten_thousandths() / Output::SCALE;
        let above = values.iter().take_while(|&&v| v > unit).count();
        #[allow(clippy::cast_precision_loss)]
        Some(above as f64 / values.len() as f64)
    }

    /// The members in racer-id order with their series as whole units (`None`: no value),
    /// trailing empty seconds left out: the object's encoding.
    pub fn members(&self) -> Vec<(u32, Vec<Option<u32>>)> {
        let mut members: Vec<(u32, Vec<Option<u32>>)> = self
            .members
            .iter()
            .map(|(&racer, series)| {
                let last = series.iter().rposition(|&c| c > 0).map_or(0, |i| i + 1);
                let values = series[..last].iter().map(|&c| c.checked_sub(1)).collect();
                (racer, values)
            })
            .collect();
        members.sort_unstable_by_key(|&(racer, _)| racer);
        members
    }

    /// Adds a decoded member (whole units per second from second 1, `None`: no value), as if its
    /// bests had been recorded: kept only if the sample admits it.
    pub fn insert_member(&mut self, racer_id: u32, values: &[Option<u32>]) {
        let mut series: Vec<Cell> = values
            .iter()
            .map(|v| v.map_or(0, |units| units.saturating_add(1)))
            .collect();
        while series.last() == Some(&0) {
            series.pop();
        }
        let mut single = Self::new(self.size);
        if !series.is_empty() {
            single.order.insert((sample_hash(racer_id), racer_id));
            single.members.insert(racer_id, series);
        }
        self.merge(&single);
    }

    /// Sets S while decoding (before any member is inserted).
    pub(crate) fn set_size(&mut self, size: u32) {
        self.size = size;
        self.evict();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(units: u32) -> Output {
        Output::from_ten_thousandths(units * Output::SCALE)
    }

    #[test]
    fn keeps_the_racers_with_the_smallest_hashes() {
        let mut sample = RacerSample::new(3);
        for racer in 0..50 {
            sample.record(1, racer, out(100 + racer));
        }
        let mut expected: Vec<(u64, u32)> = (0..50).map(|r| (sample_hash(r), r)).collect();
        expected.sort_unstable();
        let kept: Vec<u32> = sample.members().iter().map(|m| m.0).collect();
        let mut want: Vec<u32> = expected[..3].iter().map(|k| k.1).collect();
        want.sort_unstable();
        assert_eq!(kept, want);
        assert_eq!(sample.len(), 3);
    }

    #[test]
    fn counts_exactly_until_full_then_estimates() {
        let mut sample = RacerSample::new(64);
        for racer in 0..10 {
            sample.record(2, racer, out(1));
        }
        assert_eq!(sample.estimated_racers(), 10);
        for racer in 10..20_000 {
            sample.record(2, racer, out(1));
        }
        let estimate = sample.estimated_racers();
        // KMV with S = 64: relative standard error about 1/sqrt(62) ≈ 13%; 4σ is 51%.
        assert!((10_000..=30_000).contains(&estimate), "{estimate}");
    }

    #[test]
    fn values_are_floored_to_whole_units_and_an_output_below_one_is_a_value() {
        let mut sample = RacerSample::new(8);
        sample.record(3, 7, Output::from_ten_thousandths(1_517_880));
        sample.record(1, 7, Output::from_ten_thousandths(5));
        assert_eq!(sample.members(), vec![(7, vec![Some(0), None, Some(151)])]);
        assert_eq!(sample.at_second(3), vec![151]);
        assert_eq!(sample.fraction_above(3, out(150)), Some(1.0));
        assert_eq!(
            sample.fraction_above(3, Output::from_ten_thousandths(1_510_001)),
            Some(0.0)
        );
        assert_eq!(sample.fraction_above(2, out(1)), None);
    }
}
