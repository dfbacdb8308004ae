//! What a batch of delivered readings adds to each stored view, built in memory first so that
//! each document costs one merge however many lines touched it.

use std::collections::BTreeMap;
use std::fmt;

use alleycat_domain::{ClassHistory, Reading, SecondSeries};
use alleycat_ports::{BestsKey, TraceKey};

/// Max-merged deltas of every view an event's objects touch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Deltas {
    top_k: u32,
    pub(crate) histories: BTreeMap<u8, ClassHistory>,
    pub(crate) bests: BTreeMap<BestsKey, SecondSeries>,
    pub(crate) traces: BTreeMap<TraceKey, SecondSeries>,
}

impl Deltas {
    /// No deltas yet; histories keep `top_k` racers per second.
    pub(crate) fn new(top_k: u32) -> Self {
        Self {
            top_k,
            ..Self::default()
        }
    }

    /// Adds one reading to its class history, its racer's bests and its racer's trace.
    pub(crate) fn add(&mut self, reading: &Reading<'_>) {
        let top_k = self.top_k;
        let history = self
            .histories
            .entry(reading.class_id)
            .or_insert_with(|| ClassHistory::new(reading.class_id, top_k));
        history.record(reading.second, reading.racer_id, reading.output);
        // Device time, not the wall clock: replaying an object must produce the same history,
        // so that the replay writes nothing.
        history.touch(reading.device_timestamp);
        self.bests
            .entry(BestsKey {
                racer_id: reading.racer_id,
                class_id: reading.class_id,
            })
            .or_default()
            .record(reading.second, reading.output);
        self.traces
            .entry(TraceKey {
                racer_id: reading.racer_id,
                race: reading.race(),
            })
            .or_default()
            .record(reading.second, reading.output);
    }

    /// Documents to merge.
    pub(crate) fn len(&self) -> usize {
        self.histories.len() + self.bests.len() + self.traces.len()
    }
}

/// One stored document an event merges into, named for logs and errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A class history object.
    History(u8),
    /// A racer's bests in a class.
    Bests(BestsKey),
    /// A racer's trace of a race.
    Trace(TraceKey),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::History(class_id) => write!(f, "history of class {class_id}"),
            Self::Bests(key) => write!(
                f,
                "bests of racer {} in class {}",
                key.racer_id, key.class_id
            ),
            Self::Trace(key) => write!(
                f,
                "trace of racer {} in race {} of class {}",
                key.racer_id, key.race.race_id, key.race.class_id
            ),
        }
    }
}
