//! The live standings message: what every bike of a class receives about a race while it runs.
//!
//! IoT Core bills every delivery to every subscribed bike in 5 KB units, so the message is built
//! to fit one unit whatever the race: the whole standings (about 12 KB for 1,000 racers, 32 KB at
//! the cap) would be billed three to seven times per bike. What a bike shows needs far less:
//!
//! - the top [`LIVE_TOP`] exactly (racer ids and outputs);
//! - how many are riding (`riders`);
//! - its own rank, which it computes from [`Bests`], every racer's best counted in buckets of
//!   `step` ten-thousandths, with [`Bests::rank_of`] (or `frontend/src/realtime.ts`). Its own
//!   output it knows: it is the one riding.
//!
//! The step is the finest of 0.0001, 0.001, 0.01… that keeps the message within
//! [`MAX_LIVE_BYTES`]: for 1,000 racers it is 0.0001 (every output distinct, so every rank exact
//! up to equal outputs); a larger race is counted in coarser buckets, where a rank is the best
//! rank of the racers sharing the bucket (off by at most their number minus one).
//!
//! The kind `standings` is new: bikes that knew only the whole-standings kind `results` ignore it,
//! as they ignore any kind they do not know. A later change a bike of today could misread gets a
//! new kind; fields may be added.

use serde::{Deserialize, Serialize};

use crate::output::Output;
use crate::race::RaceKey;
use crate::standings::Standings;

/// Racers the message lists exactly, best first.
pub const LIVE_TOP: usize = 20;

/// The most bytes a live message may have: one IoT Core message (billed per 5 KB).
pub const MAX_LIVE_BYTES: usize = 5 * 1024;

/// Bucket widths tried, finest first, in ten-thousandths (0.0001 to 1,000 of output). At the
/// coarsest, the whole range of a `u32` output has at most 430 buckets, which always fit.
const STEPS: [u32; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// The URL-safe base64 alphabet: one character carries 5 bits of a number and a "more follows"
/// bit, so most numbers of [`Bests::runs`] take one character and JSON needs no escaping.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Kind tag of a realtime message, so bikes can ignore kinds they do not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RealtimeKind {
    /// Compact live standings of a race ([`RealtimeMessage`]).
    Standings,
}

/// Live standings of a race, pushed to every bike of its class (QoS 0), at most once a second.
///
/// ```json
/// {"msg":"standings","classId":2,"raceId":5400172,"ts":1620051629000,"riders":1000,
///  "top":[[812,171.33],[77,170.9],…],"bests":{"step":1,"max":1713300,"runs":"AAgB…"}}
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RealtimeMessage {
    /// Always `standings`.
    pub msg: RealtimeKind,
    /// The class.
    pub class_id: u8,
    /// The race.
    pub race_id: u64,
    /// When the standings were written, epoch milliseconds (device time of the newest reading).
    pub ts: u64,
    /// Racers with a best in the race.
    pub riders: u32,
    /// The best [`LIVE_TOP`] racers as `[racerId, output]`, best first, ties by lower racer id.
    pub top: Vec<(u32, Output)>,
    /// Every racer's best, counted per bucket.
    pub bests: Bests,
}

impl RealtimeMessage {
    /// The live message of `race`'s `standings` written at `ts`: the finest [`Bests`] step
    /// that keeps it within [`MAX_LIVE_BYTES`].
    pub fn of(race: RaceKey, ts: u64, standings: &Standings) -> Self {
        let ranked = standings.ranked();
        let outputs: Vec<u32> = ranked.iter().map(|(_, o)| o.ten_thousandths()).collect();
        let mut message = Self {
            msg: RealtimeKind::Standings,
            class_id: race.class_id,
            race_id: race.race_id,
            ts,
            riders: u32::try_from(ranked.len()).unwrap_or(u32::MAX),
            top: ranked.into_iter().take(LIVE_TOP).collect(),
            bests: Bests::default(),
        };
        for step in STEPS {
            message.bests = Bests::count(&outputs, step);
            if message.to_json().len() <= MAX_LIVE_BYTES {
                break;
            }
        }
        message
    }

    /// The message as it is published: compact JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a realtime message always serializes")
    }

    /// The race the message is about.
    pub fn race(&self) -> RaceKey {
        RaceKey {
            class_id: self.class_id,
            race_id: self.race_id,
        }
    }
}

/// Every racer's best, counted in buckets of `step` ten-thousandths: bucket `b` holds the bests
/// `b × step ..< (b + 1) × step`.
///
/// `runs` lists the non-empty buckets from the highest (`max`) down, as pairs of numbers: how
/// many empty buckets lie between this bucket and the one above it (for the first, below `max`),
/// then how many racers it holds minus one. Each number is written in base 32, lowest digits
/// first, one [`ALPHABET`] character per digit, with 32 added to every digit but the last.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bests {
    /// Bucket width in ten-thousandths of output (1 = 0.0001).
    pub step: u32,
    /// The highest non-empty bucket (0 when nobody rode).
    pub max: u64,
    /// The buckets, encoded as above.
    pub runs: String,
}

/// Why [`Bests::runs`] cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BestsError {
    /// A character outside the alphabet.
    #[error("character {0:?} is not in the alphabet")]
    Character(char),
    /// The text ends inside a number or between a gap and its count.
    #[error("the runs end in the middle of a bucket")]
    Truncated,
    /// A number too large, or buckets below zero.
    #[error("the runs do not describe buckets of outputs")]
    Range,
}

impl Bests {
    /// Counts `outputs` (ten-thousandths, best first) in buckets of `step`.
    pub fn count(outputs: &[u32], step: u32) -> Self {
        let step = step.max(1);
        let mut runs = String::new();
        let mut max = 0;
        let mut above: Option<u64> = None;
        let mut i = 0;
        while i < outputs.len() {
            let bucket = u64::from(outputs[i] / step);
            let mut n = 0u64;
            while i < outputs.len() && u64::from(outputs[i] / step) == bucket {
                n += 1;
                i += 1;
            }
            let gap = match above {
                None => {
                    max = bucket;
                    0
                }
                Some(above) => above - bucket - 1,
            };
            push_number(&mut runs, gap);
            push_number(&mut runs, n - 1);
            above = Some(bucket);
        }
        Self { step, max, runs }
    }

    /// The non-empty buckets, highest first, with their racer counts.
    pub fn buckets(&self) -> Result<Vec<(u64, u64)>, BestsError> {
        let mut digits = self.runs.chars();
        let mut next = || -> Result<Option<u64>, BestsError> {
            let mut value = 0u64;
            let mut shift = 0u32;
            loop {
                let Some(c) = digits.next() else {
                    return if shift == 0 {
                        Ok(None)
                    } else {
                        Err(BestsError::Truncated)
                    };
                };
                let digit = ALPHABET
                    .iter()
                    .position(|&a| char::from(a) == c)
                    .ok_or(BestsError::Character(c))? as u64;
                if shift > 60 {
                    return Err(BestsError::Range);
                }
                value |= (digit & 31) << shift;
                shift += 5;
                if digit < 32 {
                    return Ok(Some(value));
                }
            }
        };
        let mut buckets = Vec::new();
        let mut bucket: Option<u64> = None;
        while let Some(gap) = next()? {
            let count = next()?.ok_or(BestsError::Truncated)?;
            let this = match bucket {
                None => self.max.checked_sub(gap),
                Some(above) => above.checked_sub(gap).and_then(|b| b.checked_sub(1)),
            }
            .ok_or(BestsError::Range)?;
            buckets.push((this, count.checked_add(1).ok_or(BestsError::Range)?));
            bucket = Some(this);
        }
        Ok(buckets)
    }

    /// The rank a best of `output` has among the counted racers: one more than the racers in
    /// higher buckets. Exact when nobody else's best shares its bucket; otherwise the best rank
    /// of those who do (a tie). A racer's own earlier, lower best in the counts never ranks above
    /// its current one, so a bike may ask with a newer best than the message counted.
    pub fn rank_of(&self, output: Output) -> Result<u64, BestsError> {
        let own = u64::from(output.ten_thousandths() / self.step.max(1));
        Ok(1 + self
            .buckets()?
            .iter()
            .take_while(|(bucket, _)| *bucket > own)
            .map(|(_, n)| n)
            .sum::<u64>())
    }
}

fn push_number(runs: &mut String, mut value: u64) {
    loop {
        let digit = (value & 31) as usize;
        value >>= 5;
        if value == 0 {
            runs.push(char::from(ALPHABET[digit]));
            return;
        }
        runs.push(char::from(ALPHABET[digit + 32]));
    }
}

#[cfg(test)]
mod tests;
