//! Class history: for each second of a race, the top-K racers' all-time best output at that
//! second, a bottom-S sample of every racer's bests for percentiles ([`crate::sample`]), and its
//! gzip JSON object codec.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::collections::hash_map::Entry;
use std::fmt;
use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use rustc_hash::FxHashMap;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserializer, Serialize};

use crate::merge::MaxMerge;
use crate::output::Output;
use crate::sample::RacerSample;

/// The default K: the frontend ranks a live racer among the all-time top 100 of each second.
pub const DEFAULT_TOP_K: u32 = 100;

/// Why a history object could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The gzip layer is corrupt or truncated.
    #[error("history object is not valid gzip")]
    Gzip(#[source] std::io::Error),
    /// The JSON inside does not have either history shape.
    #[error("history object is not a class history")]
    Json(#[source] serde_json::Error),
    /// The object names another class than the key it was read from.
    #[error("history object is for class {found}, expected class {expected}")]
    ClassMismatch {
        /// The class the caller asked for.
        expected: u8,
        /// The class the object says it holds.
        found: u8,
    },
}

/// Rank order inside one second: higher output first, equal outputs by lower racer id. The tie
/// rule makes "the top K" a well-defined set, so the incremental top-K is exactly the brute-force
/// one even when outputs tie at the boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct RankKey {
    output: Output,
    racer: Reverse<u32>,
}

impl RankKey {
    fn new(racer: u32, output: Output) -> Self {
        Self {
            output,
            racer: Reverse(racer),
        }
    }
}

/// The top-K of one second: members' bests, plus the members in rank order (lowest first) so the
/// K-th value is the first element.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct SecondTop {
    best: FxHashMap<u32, Output>,
    order: BTreeSet<RankKey>,
}

impl SecondTop {
    /// The exact incremental top-K step. A racer outside the top K can only enter by beating the
    /// K-th entry, and the K-th entry never decreases, so any best we dropped earlier is below
    /// every later K-th value: dropping it never changes the answer.
    fn record(&mut self, racer: u32, output: Output, top_k: usize) -> bool {
        let key = RankKey::new(racer, output);
        if top_k > 0
            && self.order.len() >= top_k
            && self.order.first().is_some_and(|kth| key <= *kth)
        {
            // Fast path for nearly every record once the history is warm: no lookup at all. A
            // member whose key is at least the K-th cannot be improved by a key below it.
            return false;
        }
        match self.best.entry(racer) {
            Entry::Occupied(mut slot) => {
                let old = *slot.get();
                if output <= old {
                    return false;
                }
                slot.insert(output);
                self.order.remove(&RankKey::new(racer, old));
                self.order.insert(key);
                true
            }
            Entry::Vacant(slot) => {
                slot.insert(output);
                self.order.insert(key);
                if top_k > 0 && self.order.len() > top_k {
                    let evicted = self.order.pop_first().expect("order is not empty");
                    self.best.remove(&evicted.racer.0);
                    // The newcomer beat the old K-th, so it cannot be the one evicted.
                }
                true
            }
        }
    }

    fn truncate(&mut self, top_k: usize) {
        if top_k == 0 {
            return;
        }
        while self.order.len() > top_k {
            let evicted = self.order.pop_first().expect("order is longer than K");
            self.best.remove(&evicted.racer.0);
        }
    }

    fn ranked(&self) -> impl Iterator<Item = (u32, Output)> + '_ {
        self.order.iter().rev().map(|k| (k.racer.0, k.output))
    }
}

/// The all-time top-K racers of one class at every second of a race.
///
/// Size is bounded by K × race length whatever the population, which is why this object stays
/// under 200 KB for 40,000 racers where the original (every racer, every second) reached 85 MB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassHistory {
    class_id: u8,
    top_k: u32,
    updated_at: u64,
    seconds: Vec<SecondTop>,
    sample: RacerSample,
}

impl ClassHistory {
    /// An empty history of `class_id` keeping the top `top_k` racers per second (0 = all) and a
    /// sample of [`crate::sample::DEFAULT_SAMPLE_SIZE`] racers.
    pub fn new(class_id: u8, top_k: u32) -> Self {
        Self {
            class_id,
            top_k,
            updated_at: 0,
            seconds: Vec::new(),
            sample: RacerSample::default(),
        }
    }

    /// The same history with a sample of `size` racers (0: none), for tests and tuning.
    #[must_use]
    pub fn with_sample_size(mut self, size: u32) -> Self {
        self.sample.set_size(size);
        self
    }

    /// The racer sample, for percentiles among every racer of the class.
    pub fn sample(&self) -> &RacerSample {
        &self.sample
    }

    /// The class.
    pub fn class_id(&self) -> u8 {
        self.class_id
    }

    /// How many racers each second keeps; 0 means all.
    pub fn top_k(&self) -> u32 {
        self.top_k
    }

    /// Latest `updatedAt` (epoch ms) of any merge into this history.
    pub fn updated_at(&self) -> u64 {
        self.updated_at
    }

    /// Raises `updatedAt` to `at_ms` (it never goes back, keeping merges commutative).
    pub fn touch(&mut self, at_ms: u64) {
        self.updated_at = self.updated_at.max(at_ms);
    }

    fn k(&self) -> usize {
        usize::try_from(self.top_k).unwrap_or(usize::MAX)
    }

    /// Records a racer's output at `second` (from 1); returns whether the history changed.
    pub fn record(&mut self, second: u16, racer_id: u32, output: Output) -> bool {
        let Some(index) = usize::from(second).checked_sub(1) else {
            return false;
        };
        if index >= self.seconds.len() {
            self.seconds.resize_with(index + 1, SecondTop::default);
        }
        let k = self.k();
        let top = self.seconds[index].record(racer_id, output, k);
        self.sample.record(second, racer_id, output) | top
    }

    /// Records into the top K only: what decoding an object's `seconds` does (its sample, if
    /// any, is decoded on its own; top-K entries are no sample of the class).
    fn record_top(&mut self, second: u16, racer_id: u32, output: Output) {
        let Some(index) = usize::from(second).checked_sub(1) else {
            return;
        };
        if index >= self.seconds.len() {
            self.seconds.resize_with(index + 1, SecondTop::default);
        }
        let k = self.k();
        self.seconds[index].record(racer_id, output, k);
    }

    /// The highest second with any entry.
    pub fn last_second(&self) -> u16 {
        u16::try_from(self.seconds.len()).unwrap_or(u16::MAX)
    }

    /// The ranked top-K at `second`: best first, ties by racer id.
    pub fn ranked(&self, second: u16) -> Vec<(u32, Output)> {
        usize::from(second)
            .checked_sub(1)
            .and_then(|i| self.seconds.get(i))
            .map(|top| top.ranked().collect())
            .unwrap_or_default()
    }

    /// A racer's all-time best at `second`, if it is in that second's top K.
    pub fn best_of(&self, second: u16, racer_id: u32) -> Option<Output> {
        let top = self.seconds.get(usize::from(second).checked_sub(1)?)?;
        top.best.get(&racer_id).copied()
    }

    /// Number of (second, racer) entries: what the object's size scales with.
    pub fn entries(&self) -> usize {
        self.seconds.iter().map(|s| s.best.len()).sum()
    }

    fn shrink_to(&mut self, top_k: u32) {
        self.top_k = top_k;
        let k = self.k();
        for second in &mut self.seconds {
            second.truncate(k);
        }
    }

    /// Encodes the history as the gzip JSON object of DESIGN section 4.
    pub fn encode_gzip(&self) -> Vec<u8> {
        let json = self.to_json();
        // Measured on a 40,000-racer history (BENCHMARKS.md): zlib-rs level 6 is within 4% of
        // level 9's size in under half its time.
        let mut encoder =
            GzEncoder::new(Vec::with_capacity(json.len() / 3), Compression::default());
        encoder
            .write_all(&json)
            .and_then(|()| encoder.finish())
            .expect("writing to a Vec cannot fail")
    }

    /// The history as (uncompressed) JSON bytes: racers of each second in racer-id order, so
    /// equal histories have identical bytes.
    pub fn to_json(&self) -> Vec<u8> {
        let mut json = Vec::with_capacity(64 + self.entries() * 16);
        serde_json::to_writer(&mut json, self).expect("a history always serializes");
        json
    }

    /// Decodes a gzip history object stored under `class_id`'s key.
    ///
    /// Reads both this project's shape and the original Alleycat shape (the bare
    /// `{"<second>":{"<racerId>":output}}` map without metadata), taking `default_top_k` for
    /// objects that do not name their K; a full original history is cut to its exact top K.
    pub fn decode_gzip(
        bytes: &[u8],
        class_id: u8,
        default_top_k: u32,
    ) -> Result<Self, HistoryError> {
        let mut json = Vec::with_capacity(bytes.len() * 4);
        MultiGzDecoder::new(bytes)
            .read_to_end(&mut json)
            .map_err(HistoryError::Gzip)?;
        Self::from_json(&json, class_id, default_top_k)
    }

    /// Decodes uncompressed history JSON; see [`ClassHistory::decode_gzip`].
    pub fn from_json(json: &[u8], class_id: u8, default_top_k: u32) -> Result<Self, HistoryError> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let history = HistorySeed {
            class_id,
            default_top_k,
        }
        .deserialize(&mut de)
        .and_then(|h| de.end().map(|()| h))
        .map_err(HistoryError::Json)?;
        if history.class_id == class_id {
            Ok(history)
        } else {
            Err(HistoryError::ClassMismatch {
                expected: class_id,
                found: history.class_id,
            })
        }
    }
}

impl MaxMerge for ClassHistory {
    /// Keeps the smaller K of the two (0 = all is the largest) so the result is exact for it.
    fn merge(&mut self, other: &Self) -> bool {
        let mut changed = false;
        let k = match (self.top_k, other.top_k) {
            (0, k) | (k, 0) => k,
            (a, b) => a.min(b),
        };
        if k != self.top_k {
            self.shrink_to(k);
            changed = true;
        }
        if other.updated_at > self.updated_at {
            self.updated_at = other.updated_at;
            changed = true;
        }
        let k = self.k();
        for (index, top) in other.seconds.iter().enumerate() {
            if index >= self.seconds.len() {
                self.seconds.resize_with(index + 1, SecondTop::default);
            }
            for (&racer, &output) in &top.best {
                changed |= self.seconds[index].record(racer, output, k);
            }
        }
        changed |= self.sample.merge(&other.sample);
        changed
    }
}

impl Serialize for ClassHistory {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Seconds<'a>(&'a [SecondTop]);
        struct Racers<'a>(&'a SecondTop);

        impl Serialize for Seconds<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let filled = self.0.iter().filter(|s| !s.best.is_empty()).count();
                let mut map = serializer.serialize_map(Some(filled))?;
                for (index, top) in self.0.iter().enumerate() {
                    if !top.best.is_empty() {
                        map.serialize_entry(&(index + 1), &Racers(top))?;
                    }
                }
                map.end()
            }
        }

        impl Serialize for Racers<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut racers: Vec<(u32, Output)> =
                    self.0.best.iter().map(|(&r, &o)| (r, o)).collect();
                racers.sort_unstable_by_key(|&(racer, _)| racer);
                let mut map = serializer.serialize_map(Some(racers.len()))?;
                for (racer, output) in racers {
                    map.serialize_entry(&racer, &output)?;
                }
                map.end()
            }
        }

        let sampled = !self.sample.is_empty();
        let mut map = serializer.serialize_map(Some(4 + usize::from(sampled)))?;
        map.serialize_entry("classId", &self.class_id)?;
        map.serialize_entry("topK", &self.top_k)?;
        map.serialize_entry("updatedAt", &self.updated_at)?;
        map.serialize_entry("seconds", &Seconds(&self.seconds))?;
        if sampled {
            map.serialize_entry("sample", &SampleJson::of(&self.sample))?;
        }
        map.end()
    }
}

/// Decodes straight into a [`ClassHistory`] (no intermediate maps), in either shape.
struct HistorySeed {
    class_id: u8,
    default_top_k: u32,
}

impl<'de> DeserializeSeed<'de> for HistorySeed {
    type Value = ClassHistory;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for HistorySeed {
    type Value = ClassHistory;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a class history object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut history = ClassHistory::new(self.class_id, self.default_top_k);
        // K as declared by the object, once seen; entries read before it are kept in full and cut
        // at the end, so key order never loses data.
        let mut declared_k: Option<u32> = None;
        let mut saw_metadata = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "classId" => {
                    history.class_id = map.next_value()?;
                    saw_metadata = true;
                }
                "topK" => {
                    let k: u32 = map.next_value()?;
                    declared_k = Some(k);
                    history.top_k = k;
                    saw_metadata = true;
                }
                "updatedAt" => {
                    history.updated_at = map.next_value()?;
                    saw_metadata = true;
                }
                "seconds" => {
                    if declared_k.is_none() {
                        history.top_k = 0;
                    }
                    map.next_value_seed(SecondsSeed(&mut history))?;
                }
                "sample" => {
                    let sample: SampleJson = map.next_value()?;
                    history.sample = sample.into_sample();
                }
                other => match other.parse::<u16>() {
                    // The original shape: seconds at the top level.
                    Ok(second) if second > 0 && !saw_metadata => {
                        map.next_value_seed(RacersSeed {
                            history: &mut history,
                            second,
                        })?;
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                },
            }
        }
        let final_k = declared_k.unwrap_or(self.default_top_k);
        history.shrink_to(final_k);
        Ok(history)
    }
}

struct SecondsSeed<'h>(&'h mut ClassHistory);

impl<'de> DeserializeSeed<'de> for SecondsSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SecondsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map from second to racers")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(second) = map.next_key::<u16>()? {
            if second == 0 {
                return Err(de::Error::custom("second 0 is not a second of a race"));
            }
            map.next_value_seed(RacersSeed {
                history: &mut *self.0,
                second,
            })?;
        }
        Ok(())
    }
}

struct RacersSeed<'h> {
    history: &'h mut ClassHistory,
    second: u16,
}

impl<'de> DeserializeSeed<'de> for RacersSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RacersSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map from racer id to output")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some((racer, output)) = map.next_entry::<u32, Output>()? {
            self.history.record_top(self.second, racer, output);
        }
        Ok(())
    }
}

/// The object's `"sample"`: S, the estimated class size (written for readers, ignored when
/// read back: it follows from the members), and the members in racer-id order, each with its
/// bests per second from second 1 in whole output units (`null`: no value at that second).
#[derive(serde::Serialize, serde::Deserialize)]
struct SampleJson {
    size: u32,
    #[serde(default)]
    racers: u64,
    members: Vec<(u32, Vec<Option<u32>>)>,
}

impl SampleJson {
    fn of(sample: &RacerSample) -> Self {
        Self {
            size: sample.size(),
            racers: sample.estimated_racers(),
            members: sample.members(),
        }
    }

    fn into_sample(self) -> RacerSample {
        let mut sample = RacerSample::new(self.size);
        for (racer, values) in &self.members {
            sample.insert_member(*racer, values);
        }
        sample
    }
}
