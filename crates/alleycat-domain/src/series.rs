//! Per-second curves: a racer's all-time bests (personal-record curve) and a race trace.

use serde::{Deserialize, Deserializer, Serialize};

use crate::merge::MaxMerge;
use crate::output::Output;

/// One output per second of a race, `None` where the racer has no data for that second.
///
/// Used for both racer bests (per class) and racer traces (per race); both are max-merges, so a
/// trace that receives the same second twice keeps one value. Stored dense (index = second - 1)
/// because a racer who rides at all usually covers every second; serialized as a JSON array with
/// `null` gaps, never with trailing `null`s, so equal series have equal encodings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SecondSeries {
    seconds: Vec<Option<Output>>,
}

impl SecondSeries {
    /// A series with no data.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the output of `second` (from 1); returns whether the series rose. Second 0 is not a
    /// second of any race and is ignored.
    pub fn record(&mut self, second: u16, output: Output) -> bool {
        let Some(index) = usize::from(second).checked_sub(1) else {
            return false;
        };
        if index >= self.seconds.len() {
            self.seconds.resize(index + 1, None);
        }
        let slot = &mut self.seconds[index];
        if slot.is_none_or(|best| output > best) {
            *slot = Some(output);
            true
        } else {
            false
        }
    }

    /// The output at `second` (from 1).
    pub fn get(&self, second: u16) -> Option<Output> {
        usize::from(second)
            .checked_sub(1)
            .and_then(|i| self.seconds.get(i).copied().flatten())
    }

    /// Every second, from second 1.
    pub fn as_slice(&self) -> &[Option<Output>] {
        &self.seconds
    }

    /// Seconds with data, as `(second, output)`.
    pub fn iter(&self) -> impl Iterator<Item = (u16, Output)> + '_ {
        self.seconds.iter().enumerate().filter_map(|(i, o)| {
            o.map(|o| {
                (
                    u16::try_from(i + 1).expect("series are at most u16::MAX long"),
                    o,
                )
            })
        })
    }

    /// Whether no second has data.
    pub fn is_empty(&self) -> bool {
        self.seconds.is_empty()
    }
}

impl FromIterator<(u16, Output)> for SecondSeries {
    fn from_iter<I: IntoIterator<Item = (u16, Output)>>(iter: I) -> Self {
        let mut series = Self::new();
        for (second, output) in iter {
            series.record(second, output);
        }
        series
    }
}

impl<'de> Deserialize<'de> for SecondSeries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut seconds = Vec::<Option<Output>>::deserialize(deserializer)?;
        if seconds.len() > usize::from(u16::MAX) {
            return Err(serde::de::Error::invalid_length(
                seconds.len(),
                &"at most 65535 seconds",
            ));
        }
        while seconds.last() == Some(&None) {
            seconds.pop();
        }
        Ok(Self { seconds })
    }
}

impl MaxMerge for SecondSeries {
    fn merge(&mut self, other: &Self) -> bool {
        let mut changed = false;
        for (second, output) in other.iter() {
            changed |= self.record(second, output);
        }
        changed
    }
}
