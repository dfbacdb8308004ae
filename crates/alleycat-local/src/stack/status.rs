//! What the stack is doing: each consumer's lag, every function's totals, the on-failure
//! records and the usage, for `GET /_local/status`, the simulator's summary and tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use alleycat_cost::Usage;
use serde::Serialize;

use super::wiring::LocalApi;
use crate::db::Db;
use crate::meter::Meter;
use crate::objects::LocalBucket;
use crate::sources::dynamodb::ChangeShard;
use crate::sources::on_failure::OnFailure;
use crate::sources::s3::NOTIFICATIONS;
use crate::sources::{FunctionTotals, Invocations};
use crate::stream::{LocalStream, shard_id};
use crate::table::LocalTable;

/// One consumer's progress on one source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lag {
    /// Function (or Firehose) and shard.
    pub consumer: String,
    /// The source's newest sequence number.
    pub latest: u64,
    /// Where the consumer's checkpoint is.
    pub checkpoint: u64,
}

impl Lag {
    /// Whether the consumer has processed everything.
    pub fn caught_up(&self) -> bool {
        self.checkpoint >= self.latest
    }
}

/// What the stack is doing: `GET /_local/status`, the simulator's summary, tests.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Records in the stream.
    pub stream_records: u64,
    /// Every consumer's progress.
    pub consumers: Vec<Lag>,
    /// Every function's (and service's) totals.
    pub functions: BTreeMap<&'static str, FunctionTotals>,
    /// On-failure records written, by function.
    pub on_failure: BTreeMap<&'static str, usize>,
    /// What the run has used, in AWS's billing units.
    pub usage: Usage,
}

impl Status {
    /// Whether every consumer has processed everything there is.
    pub fn idle(&self) -> bool {
        self.consumers.iter().all(Lag::caught_up)
    }
}

/// The parts the status is read from.
#[derive(Clone)]
pub(super) struct Parts {
    pub(super) meter: Arc<Meter>,
    pub(super) buckets: Vec<Arc<LocalBucket>>,
    pub(super) stream: Arc<LocalStream>,
    pub(super) notifications: Arc<LocalStream>,
    pub(super) table: Arc<LocalTable>,
    pub(super) invocations: Arc<Invocations>,
    pub(super) on_failure: Arc<OnFailure>,
}

const FUNCTIONS: [&str; 6] = [
    race_aggregator::FUNCTION_NAME,
    leaderboard_writer::FUNCTION_NAME,
    publisher::FUNCTION_NAME,
    transformer::FUNCTION_NAME,
    history_merger::FUNCTION_NAME,
    <LocalApi as alleycat_lambda::Function>::NAME,
];

impl Parts {
    fn lag(db: &Db, consumer: String, latest: Option<u64>) -> Lag {
        let checkpoint = db
            .checkpoint(&consumer)
            .ok()
            .flatten()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        Lag {
            consumer,
            latest: latest.unwrap_or(0),
            checkpoint,
        }
    }

    pub(super) fn usage(&self) -> Usage {
        let stored = self.buckets.iter().map(|b| b.stored_bytes()).sum();
        self.meter.usage(self.stream.shards(), stored)
    }

    pub(super) fn status(&self) -> Status {
        let mut consumers = Vec::new();
        for shard in 0..self.stream.shards() {
            let latest = self.stream.last_sequence(shard);
            for consumer in [
                race_aggregator::FUNCTION_NAME,
                leaderboard_writer::FUNCTION_NAME,
                "firehose",
            ] {
                consumers.push(Self::lag(
                    self.stream.db(),
                    format!("{consumer}/{}", shard_id(shard)),
                    latest,
                ));
            }
        }
        consumers.push(Self::lag(
            self.table.db(),
            ChangeShard::consumer_name(publisher::FUNCTION_NAME),
            self.table.last_change(),
        ));
        consumers.push(Self::lag(
            self.notifications.db(),
            format!("{}/{NOTIFICATIONS}", history_merger::FUNCTION_NAME),
            self.notifications.last_sequence(0),
        ));
        Status {
            usage: self.usage(),
            stream_records: self.stream.count().unwrap_or_default(),
            consumers,
            functions: self.invocations.snapshot(),
            on_failure: FUNCTIONS
                .into_iter()
                .map(|f| (f, self.on_failure.records(f).len()))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}
