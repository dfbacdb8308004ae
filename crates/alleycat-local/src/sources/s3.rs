//! Bucket notifications: every object Firehose writes under `raw/` becomes an `ObjectCreated:Put`
//! `S3Event` for the history merger, queued durably (written in the same transaction that moves
//! Firehose's checkpoint) and invoked one object at a time, as S3 invokes a function
//! asynchronously: retried on failure, then recorded on the on-failure destination.

use std::sync::Arc;

use aws_lambda_events::event::s3::{S3Bucket, S3Entity, S3Event, S3EventRecord, S3Object};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::kinesis::{REGION, timestamp};
use super::poller::Shard;
use crate::db::Db;
use crate::error::LocalError;
use crate::stream::{LocalStream, StreamRecord};

/// Name of the stream of notifications.
pub const NOTIFICATIONS: &str = "s3-notifications";

/// One created object, as queued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    /// The bucket.
    pub bucket: String,
    /// The object's key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag, unquoted as S3 events carry it.
    pub etag: String,
    /// When it was written, epoch milliseconds.
    pub time_ms: u64,
}

/// The notification queue as the history merger reads it.
pub struct NotificationShard {
    queue: Arc<LocalStream>,
    consumer: String,
}

impl NotificationShard {
    /// `queue` as `function` reads it.
    pub fn new(queue: Arc<LocalStream>, function: &str) -> Self {
        Self {
            queue,
            consumer: format!("{function}/{NOTIFICATIONS}"),
        }
    }
}

fn created(record: &StreamRecord) -> Option<Created> {
    serde_json::from_slice(&record.data).ok()
}

impl Shard for NotificationShard {
    type Record = StreamRecord;
    type Event = S3Event;

    fn db(&self) -> &Db {
        self.queue.db()
    }

    fn consumer(&self) -> &str {
        &self.consumer
    }

    fn read(&self, after: Option<u64>, limit: usize) -> Result<Vec<StreamRecord>, LocalError> {
        self.queue.read(0, after, limit)
    }

    fn latest(&self) -> Option<u64> {
        self.queue.last_sequence(0)
    }

    fn appended(&self) -> Arc<Notify> {
        self.queue.appended()
    }

    fn sequence(record: &StreamRecord) -> u64 {
        record.sequence
    }

    fn arrival_ms(record: &StreamRecord) -> u64 {
        record.arrival_ms
    }

    fn filter_view(record: &StreamRecord) -> Value {
        serde_json::from_slice(&record.data).unwrap_or(Value::Null)
    }

    fn event(&self, records: &[&StreamRecord]) -> S3Event {
        let mut event = S3Event::default();
        event.records = records
            .iter()
            .filter_map(|record| created(record))
            .map(|created| {
                let mut object = S3Object::default();
                object.key = Some(created.key.clone());
                object.url_decoded_key = Some(created.key);
                object.size = Some(i64::try_from(created.size).unwrap_or(i64::MAX));
                object.e_tag = Some(created.etag);
                object.sequencer = Some(format!("{:016X}", created.time_ms));
                let mut bucket = S3Bucket::default();
                bucket.arn = Some(format!("arn:aws:s3:::{}", created.bucket));
                bucket.name = Some(created.bucket);
                let mut s3 = S3Entity::default();
                s3.schema_version = Some("1.0".to_owned());
                s3.configuration_id = Some("alleycat-raw-created".to_owned());
                s3.bucket = bucket;
                s3.object = object;
                let mut record = S3EventRecord::default();
                record.event_version = Some("2.1".to_owned());
                record.event_source = Some("aws:s3".to_owned());
                record.aws_region = Some(REGION.to_owned());
                record.event_time = timestamp(created.time_ms);
                record.event_name = Some("ObjectCreated:Put".to_owned());
                record.s3 = s3;
                record
            })
            .collect();
        event
    }

    /// Asynchronous invocations put the whole event in the on-failure record.
    fn batch_info(&self, records: &[&StreamRecord]) -> (&'static str, Value) {
        (
            "requestPayload",
            serde_json::to_value(self.event(records)).unwrap_or_else(|e| json!(e.to_string())),
        )
    }

    fn parse_identifier(_identifier: &str) -> Option<u64> {
        None
    }
}
