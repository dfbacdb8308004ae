//! The table's change log as a DynamoDB stream: genuine `aws_lambda_events` DynamoDB events
//! (NEW_AND_OLD_IMAGES), exactly as Lambda's event source mapping sends them.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::{Event, EventRecord, StreamRecord, StreamViewType};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::kinesis::{ACCOUNT, REGION, timestamp};
use super::poller::Shard;
use crate::db::Db;
use crate::error::LocalError;
use crate::table::{Change, LocalTable};

/// Shard id the change stream reports (the table has one).
const SHARD_ID: &str = "shardId-00000000000000000000-00000001";

/// The change stream of the table, read by one function.
pub struct ChangeShard {
    table: Arc<LocalTable>,
    consumer: String,
    arn: String,
}

impl ChangeShard {
    /// The change stream of `table` (named `table_name` in ARNs) as `function` reads it.
    pub fn new(table: Arc<LocalTable>, table_name: &str, function: &str) -> Self {
        Self {
            table,
            consumer: Self::consumer_name(function),
            arn: format!(
                "arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table_name}/stream/2026-01-01T00:00:00.000"
            ),
        }
    }
}

impl ChangeShard {
    /// The checkpoint name of `function` on the change stream.
    pub fn consumer_name(function: &str) -> String {
        format!("{function}/{SHARD_ID}")
    }
}

fn sequence_number(change: &Change) -> String {
    format!("{:021}", change.sequence)
}

impl Shard for ChangeShard {
    type Record = Change;
    type Event = Event;

    fn db(&self) -> &Db {
        self.table.db()
    }

    fn consumer(&self) -> &str {
        &self.consumer
    }

    fn read(&self, after: Option<u64>, limit: usize) -> Result<Vec<Change>, LocalError> {
        self.table.changes_after(after.unwrap_or(0), limit)
    }

    fn latest(&self) -> Option<u64> {
        self.table.last_change()
    }

    fn appended(&self) -> Arc<Notify> {
        self.table.changed()
    }

    fn sequence(change: &Change) -> u64 {
        change.sequence
    }

    fn arrival_ms(change: &Change) -> u64 {
        change.created_ms
    }

    fn filter_view(change: &Change) -> Value {
        json!({
            "eventName": change.event_name,
            "eventSource": "aws:dynamodb",
            "dynamodb": { "Keys": change.keys },
        })
    }

    fn event(&self, changes: &[&Change]) -> Event {
        let mut event = Event::default();
        event.records = changes
            .iter()
            .map(|change| {
                let mut stream = StreamRecord::default();
                stream.approximate_creation_date_time = timestamp(change.created_ms);
                stream.keys = change.keys.clone();
                stream.new_image = change.new_image.clone().unwrap_or_default();
                stream.old_image = change.old_image.clone().unwrap_or_default();
                stream.sequence_number = Some(sequence_number(change));
                stream.size_bytes = i64::try_from(change.size_bytes).unwrap_or(i64::MAX);
                stream.stream_view_type = Some(StreamViewType::NewAndOldImages);
                let mut record = EventRecord::default();
                REGION.clone_into(&mut record.aws_region);
                record.change = stream;
                record.event_id = format!("{:032x}", change.sequence);
                record.event_name = change.event_name.to_string();
                record.event_source = Some("aws:dynamodb".to_owned());
                record.event_version = Some("1.1".to_owned());
                record.event_source_arn = Some(self.arn.clone());
                record
            })
            .collect();
        event
    }

    fn batch_info(&self, changes: &[&Change]) -> (&'static str, Value) {
        let iso = |ms| timestamp(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let (first, last) = (changes[0], changes[changes.len() - 1]);
        (
            "DDBStreamBatchInfo",
            json!({
                "shardId": SHARD_ID,
                "startSequenceNumber": sequence_number(first),
                "endSequenceNumber": sequence_number(last),
                "approximateArrivalOfFirstRecord": iso(first.created_ms),
                "approximateArrivalOfLastRecord": iso(last.created_ms),
                "batchSize": changes.len(),
                "streamArn": self.arn,
            }),
        )
    }

    fn parse_identifier(identifier: &str) -> Option<u64> {
        identifier.trim().parse().ok()
    }
}
