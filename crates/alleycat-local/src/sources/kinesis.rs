//! A Kinesis shard of the local stream as a polled source: genuine `KinesisEvent`s, exactly as
//! Lambda's event source mapping sends them.

use std::sync::Arc;

use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord, KinesisRecord};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::poller::Shard;
use crate::db::Db;
use crate::error::LocalError;
use crate::stream::{LocalStream, StreamRecord, parse_sequence, sequence_string, shard_id};

/// Region of every ARN the stack makes up.
pub const REGION: &str = "local";
/// Account of every ARN the stack makes up.
pub const ACCOUNT: &str = "000000000000";

/// The ARN of local stream `name`.
pub fn stream_arn(name: &str) -> String {
    format!("arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}")
}

/// Epoch milliseconds as a timestamp.
pub fn timestamp(ms: u64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX)).unwrap_or_default()
}

/// One shard of the stream, read by one function.
pub struct StreamShard {
    stream: Arc<LocalStream>,
    shard: u32,
    consumer: String,
    arn: String,
    role: String,
}

impl StreamShard {
    /// Shard `shard` of `stream` as `function` reads it (its checkpoint is
    /// `<function>/<shard id>`).
    pub fn new(stream: Arc<LocalStream>, shard: u32, function: &str) -> Self {
        Self {
            consumer: format!("{function}/{}", shard_id(shard)),
            arn: stream_arn(stream.name()),
            role: format!("arn:aws:iam::{ACCOUNT}:role/alleycat-{function}-role"),
            stream,
            shard,
        }
    }
}

impl Shard for StreamShard {
    type Record = StreamRecord;
    type Event = KinesisEvent;

    fn db(&self) -> &Db {
        self.stream.db()
    }

    fn consumer(&self) -> &str {
        &self.consumer
    }

    fn read(&self, after: Option<u64>, limit: usize) -> Result<Vec<StreamRecord>, LocalError> {
        self.stream.read(self.shard, after, limit)
    }

    fn latest(&self) -> Option<u64> {
        self.stream.last_sequence(self.shard)
    }

    fn appended(&self) -> Arc<Notify> {
        self.stream.appended()
    }

    fn sequence(record: &StreamRecord) -> u64 {
        record.sequence
    }

    fn arrival_ms(record: &StreamRecord) -> u64 {
        record.arrival_ms
    }

    /// Lambda filters on the record with `data` decoded: JSON data as its value, anything else
    /// as a value no pattern on `data` matches.
    fn filter_view(record: &StreamRecord) -> Value {
        json!({
            "partitionKey": record.partition_key,
            "sequenceNumber": sequence_string(record.sequence),
            "data": serde_json::from_slice::<Value>(&record.data).unwrap_or(Value::Null),
        })
    }

    fn event(&self, records: &[&StreamRecord]) -> KinesisEvent {
        let mut event = KinesisEvent::default();
        event.records = records
            .iter()
            .map(|record| {
                let sequence = sequence_string(record.sequence);
                let mut kinesis = KinesisRecord::default();
                *kinesis.approximate_arrival_timestamp = timestamp(record.arrival_ms);
                kinesis.data.0.clone_from(&record.data);
                kinesis.partition_key.clone_from(&record.partition_key);
                kinesis.sequence_number.clone_from(&sequence);
                kinesis.kinesis_schema_version = Some("1.0".to_owned());
                let mut wrapped = KinesisEventRecord::default();
                wrapped.aws_region = Some(REGION.to_owned());
                wrapped.event_id = Some(format!("{}:{sequence}", shard_id(self.shard)));
                wrapped.event_name = Some("aws:kinesis:record".to_owned());
                wrapped.event_source = Some("aws:kinesis".to_owned());
                wrapped.event_source_arn = Some(self.arn.clone());
                wrapped.event_version = Some("1.0".to_owned());
                wrapped.invoke_identity_arn = Some(self.role.clone());
                wrapped.kinesis = kinesis;
                wrapped
            })
            .collect();
        event
    }

    fn batch_info(&self, records: &[&StreamRecord]) -> (&'static str, Value) {
        let iso = |ms| timestamp(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let (first, last) = (records[0], records[records.len() - 1]);
        (
            "KinesisBatchInfo",
            json!({
                "shardId": shard_id(self.shard),
                "startSequenceNumber": sequence_string(first.sequence),
                "endSequenceNumber": sequence_string(last.sequence),
                "approximateArrivalOfFirstRecord": iso(first.arrival_ms),
                "approximateArrivalOfLastRecord": iso(last.arrival_ms),
                "batchSize": records.len(),
                "streamArn": self.arn,
            }),
        )
    }

    fn parse_identifier(identifier: &str) -> Option<u64> {
        parse_sequence(identifier)
    }
}
