//! Firehose: reads the stream, buffers by size and interval, has the transformer process each
//! buffer, and writes gzip NDJSON delivery objects, as the delivery stream of the template does.
//!
//! - **Buffering**: records are gathered from every shard until the buffer holds `size_bytes`,
//!   or its oldest record has waited `interval`, or the stack shuts down (which flushes).
//! - **Transformation**: the buffer goes to the transformer in invocations of at most
//!   `processor_bytes` of records, each a genuine `KinesisFirehoseEvent`; a failed invocation is
//!   retried `retries` times. The answer must name every `recordId` exactly once, or the whole
//!   invocation's records fail, as Firehose treats them.
//! - **Delivery**: `Ok` records, concatenated, become one gzip object under
//!   `raw/yyyy/MM/dd/HH/`; `ProcessingFailed` records (and those of failed invocations) become
//!   Firehose's error records under `processing-failed/yyyy/MM/dd/HH/`; `Dropped` ones vanish.
//! - **Exactly what is delivered moves the checkpoint**: the stream checkpoints of the buffer and
//!   the `raw/` object's bucket notification are committed in one transaction after the objects
//!   are written. A crash before it re-reads the buffer and writes the objects again under new
//!   keys: a duplicate the history merger's max-merges absorb, never a loss.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alleycat_lambda::Function;
use aws_lambda_events::event::firehose::{
    KinesisFirehoseEvent, KinesisFirehoseEventRecord, KinesisFirehoseRecordMetadata,
    KinesisFirehoseResponse,
};
use base64::Engine;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;

use super::kinesis::{ACCOUNT, REGION, stream_arn, timestamp};
use super::poller::Context;
use super::s3::Created;
use super::{InvokeError, invoke};
use crate::config::FirehoseConfig;
use crate::db::set_checkpoint;
use crate::error::LocalError;
use crate::objects::LocalBucket;
use crate::stream::{LocalStream, StreamRecord, sequence_string, shard_id};

/// Prefix of delivered objects (the history merger's notification filter).
pub const RAW_PREFIX: &str = "raw/";
/// Prefix of records that failed transformation (the template adds the error output type,
/// `processing-failed/`, after it).
pub const FAILED_PREFIX: &str = "processing-failed/";
/// Most records read from a shard per round.
const READ_LIMIT: usize = 10_000;

/// The delivery stream.
pub struct Firehose<F> {
    /// Its name (in ARNs and object keys).
    pub name: String,
    /// The source stream.
    pub stream: Arc<LocalStream>,
    /// Where `raw/` objects are announced; must live in the stream's database.
    pub notifications: Arc<LocalStream>,
    /// The delivery bucket.
    pub delivery: Arc<LocalBucket>,
    /// The data transformation.
    pub transformer: Arc<F>,
    /// Buffering and processing.
    pub config: FirehoseConfig,
}

/// One record's fate in the transformation.
enum Fate {
    Delivered(Vec<u8>),
    Dropped,
    Failed { code: &'static str, message: String },
}

fn consumer(shard: u32) -> String {
    format!("firehose/{}", shard_id(shard))
}

impl<F: Function> Firehose<F> {
    /// Runs until shutdown, flushing the buffer on the way out.
    pub async fn run(self, mut context: Context) -> Result<(), LocalError> {
        let db = self.stream.db();
        let mut positions = (0..self.stream.shards())
            .map(|shard| {
                db.checkpoint(&consumer(shard))
                    .map(|position| position.and_then(|p| p.parse::<u64>().ok()))
                    .map_err(|e| db.error(e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let appended = self.stream.appended();
        let mut buffer: Vec<StreamRecord> = Vec::new();
        let mut bytes = 0usize;
        let mut since: Option<Instant> = None;
        loop {
            let notified = appended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mut read_any = false;
            for (shard, position) in (0..).zip(positions.iter_mut()) {
                let records = self.stream.read(shard, *position, READ_LIMIT)?;
                if let Some(last) = records.last() {
                    *position = Some(last.sequence);
                    read_any = true;
                    bytes += records.iter().map(|r| r.data.len()).sum::<usize>();
                    buffer.extend(records);
                    since.get_or_insert_with(Instant::now);
                }
            }
            let stopping = *context.shutdown.borrow();
            let due = since.is_some_and(|t| t.elapsed() >= self.config.interval);
            if !buffer.is_empty() && (bytes >= self.config.size_bytes || due || stopping) {
                self.deliver(std::mem::take(&mut buffer), &positions, &context)
                    .await?;
                bytes = 0;
                since = None;
            }
            if stopping {
                return Ok(());
            }
            if read_any {
                continue;
            }
            let wait = since.map_or(Duration::from_secs(1), |t| {
                self.config.interval.saturating_sub(t.elapsed())
            });
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(wait) => {}
                _ = context.shutdown.changed() => {}
            }
        }
    }

    /// Transforms, writes and checkpoints one buffer.
    async fn deliver(
        &self,
        records: Vec<StreamRecord>,
        positions: &[Option<u64>],
        context: &Context,
    ) -> Result<(), LocalError> {
        if let Some(meter) = context.invocations.meter() {
            for record in &records {
                meter.firehose_record(record.data.len());
            }
        }
        let mut delivered = Vec::new();
        let mut failed = Vec::new();
        let mut counts = [0u64; 3];
        for chunk in chunks(&records, self.config.processor_bytes) {
            let (fates, attempts) = self.transform(chunk, context).await;
            for (record, fate) in chunk.iter().zip(fates) {
                match fate {
                    Fate::Delivered(data) => {
                        counts[0] += 1;
                        delivered.extend_from_slice(&data);
                    }
                    Fate::Dropped => counts[1] += 1,
                    Fate::Failed { code, message } => {
                        counts[2] += 1;
                        failed.extend_from_slice(&Self::error_record(
                            record, attempts, code, &message,
                        ));
                    }
                }
            }
        }
        let now = crate::now_ms();
        let created = if delivered.is_empty() {
            None
        } else {
            Some(self.write(RAW_PREFIX, &delivered, now)?)
        };
        if !failed.is_empty() {
            self.write(&format!("{FAILED_PREFIX}processing-failed/"), &failed, now)?;
        }
        let db = self.stream.db();
        db.transaction(|tx| {
            for (shard, position) in (0..).zip(positions) {
                if let Some(position) = position {
                    set_checkpoint(tx, &consumer(shard), &position.to_string())?;
                }
            }
            if let Some(created) = &created {
                let data = serde_json::to_vec(created).expect("a notification serializes");
                self.notifications
                    .append_in(tx, &[(created.key.as_str(), data)], now)?;
            }
            Ok(())
        })
        .map_err(|e| db.error(e))?;
        self.notifications.wake();
        let invocations = &context.invocations;
        invocations.add("firehose", "RecordsIn", records.len() as u64);
        invocations.add("firehose", "Delivered", counts[0]);
        invocations.add("firehose", "Dropped", counts[1]);
        invocations.add("firehose", "ProcessingFailed", counts[2]);
        invocations.add("firehose", "Objects", u64::from(created.is_some()));
        Ok(())
    }

    /// Invokes the transformer on `chunk` (with retries) and reads each record's fate.
    async fn transform(&self, chunk: &[StreamRecord], context: &Context) -> (Vec<Fate>, u32) {
        let event = self.event(chunk);
        let mut attempts = 0;
        let failure = loop {
            attempts += 1;
            let outcome: Result<KinesisFirehoseResponse, InvokeError> =
                invoke(&*self.transformer, &event, &context.invocations).await;
            match outcome {
                Ok(response) => match settle(chunk, response) {
                    Ok(fates) => return (fates, attempts),
                    Err((code, message)) => break (code, message),
                },
                Err(error) if attempts <= self.config.retries => {
                    tracing::warn!(%error, attempts, "transformer invocation failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempts.min(5))).await;
                }
                Err(error) => break ("Lambda.FunctionError", error.to_string()),
            }
        };
        let (code, message) = failure;
        let fates = chunk
            .iter()
            .map(|_| Fate::Failed {
                code,
                message: message.clone(),
            })
            .collect();
        (fates, attempts)
    }

    fn event(&self, chunk: &[StreamRecord]) -> KinesisFirehoseEvent {
        let mut event = KinesisFirehoseEvent::default();
        event.invocation_id = Some(format!("{:032x}", fastrand::u128(..)));
        event.delivery_stream_arn = Some(format!(
            "arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{}",
            self.name
        ));
        event.source_kinesis_stream_arn = Some(stream_arn(self.stream.name()));
        event.region = Some(REGION.to_owned());
        event.records = chunk
            .iter()
            .map(|record| {
                let arrival = timestamp(record.arrival_ms);
                let mut metadata = KinesisFirehoseRecordMetadata::default();
                metadata.shard_id = Some(shard_id(record.shard));
                metadata.partition_key = Some(record.partition_key.clone());
                metadata.sequence_number = Some(sequence_string(record.sequence));
                *metadata.approximate_arrival_timestamp = arrival;
                let mut firehose = KinesisFirehoseEventRecord::default();
                firehose.record_id = Some(record_id(record));
                *firehose.approximate_arrival_timestamp = arrival;
                firehose.data.0.clone_from(&record.data);
                firehose.kinesis_firehose_record_metadata = Some(metadata);
                firehose
            })
            .collect();
        event
    }

    /// Firehose's error record of a record that failed transformation, one JSON line.
    fn error_record(record: &StreamRecord, attempts: u32, code: &str, message: &str) -> Vec<u8> {
        let mut line = serde_json::to_vec(&json!({
            "attemptsMade": attempts,
            "arrivalTimestamp": record.arrival_ms,
            "errorCode": code,
            "errorMessage": message,
            "attemptEndingTimestamp": crate::now_ms(),
            "rawData": base64::engine::general_purpose::STANDARD.encode(&record.data),
            "lambdaArn": format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}:$LATEST", F::NAME),
        }))
        .expect("an error record serializes");
        line.push(b'\n');
        line
    }

    /// Writes `data` gzipped as a new object under `prefix`, Firehose's key layout.
    fn write(&self, prefix: &str, data: &[u8], now: u64) -> Result<Created, LocalError> {
        let time = timestamp(now);
        let key = format!(
            "{prefix}{}/{}-1-{}-{:016x}.gz",
            time.format("%Y/%m/%d/%H"),
            self.name,
            time.format("%Y-%m-%d-%H-%M-%S"),
            fastrand::u64(..)
        );
        // Seconds of CPU for a full 128 MiB buffer: off the async workers.
        let bytes = crate::db::blocking(|| {
            let mut gzip =
                GzEncoder::new(Vec::with_capacity(data.len() / 4), Compression::default());
            gzip.write_all(data).and_then(|()| gzip.finish())
        })
        .map_err(|source| LocalError::Io {
            path: self.delivery.root().join(&key),
            source,
        })?;
        let size = bytes.len() as u64;
        let etag = self
            .delivery
            .write(&key, &bytes, None)
            .map_err(|error| LocalError::Config(format!("writing {key}: {error}")))?;
        Ok(Created {
            bucket: self.delivery.name().to_owned(),
            key,
            size,
            etag: etag.trim_matches('"').to_owned(),
            time_ms: now,
        })
    }
}

/// A record's id in transformation events: unique, stable across retries.
fn record_id(record: &StreamRecord) -> String {
    format!("{:08}{}", record.shard, sequence_string(record.sequence))
}

/// Splits `records` into invocations of at most `max_bytes` of data (at least one record each).
fn chunks(records: &[StreamRecord], max_bytes: usize) -> Vec<&[StreamRecord]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, record) in records.iter().enumerate() {
        if i > start && bytes + record.data.len() > max_bytes {
            chunks.push(&records[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += record.data.len();
    }
    if start < records.len() {
        chunks.push(&records[start..]);
    }
    chunks
}

/// Reads the transformer's answer: one fate per record of `chunk`, or why the whole invocation
/// failed (a record missing, duplicated or unknown).
fn settle(
    chunk: &[StreamRecord],
    response: KinesisFirehoseResponse,
) -> Result<Vec<Fate>, (&'static str, String)> {
    let ids: std::collections::HashMap<String, usize> = chunk
        .iter()
        .enumerate()
        .map(|(i, record)| (record_id(record), i))
        .collect();
    let mut fates: Vec<Option<Fate>> = chunk.iter().map(|_| None).collect();
    for answer in response.records {
        let id = answer.record_id.unwrap_or_default();
        let Some(&i) = ids.get(&id) else {
            return Err((
                "Lambda.MissingRecordId",
                format!("unknown recordId {id:?} in the response"),
            ));
        };
        if fates[i].is_some() {
            return Err((
                "Lambda.DuplicatedRecordId",
                format!("recordId {id} answered twice"),
            ));
        }
        fates[i] = Some(match answer.result.as_deref() {
            Some("Ok") => Fate::Delivered(answer.data.0),
            Some("Dropped") => Fate::Dropped,
            Some("ProcessingFailed") => Fate::Failed {
                code: "Lambda.ProcessingFailed",
                message: "the transformer returned ProcessingFailed for this record".to_owned(),
            },
            other => Fate::Failed {
                code: "Lambda.InvalidResultStatus",
                message: format!("result {other:?} is not Ok, Dropped or ProcessingFailed"),
            },
        });
    }
    fates
        .into_iter()
        .enumerate()
        .map(|(i, fate)| {
            fate.ok_or_else(|| {
                (
                    "Lambda.MissingRecordId",
                    format!(
                        "recordId {} is missing from the response",
                        record_id(&chunk[i])
                    ),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(sequence: u64, size: usize) -> StreamRecord {
        StreamRecord {
            shard: 0,
            sequence,
            partition_key: "8".to_owned(),
            data: vec![b'x'; size],
            arrival_ms: 0,
        }
    }

    #[test]
    fn chunks_respect_the_processor_size_and_keep_every_record() {
        let records: Vec<_> = (1..=10).map(|i| record(i, 40)).collect();
        let sizes: Vec<usize> = chunks(&records, 100).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [2, 2, 2, 2, 2]);
        let big = [record(1, 500), record(2, 10)];
        let sizes: Vec<usize> = chunks(&big, 100).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [1, 1]);
        assert!(chunks(&[], 100).is_empty());
    }

    #[test]
    fn a_response_must_answer_every_record_once() {
        use aws_lambda_events::event::firehose::KinesisFirehoseResponseRecord;
        let chunk = [record(1, 1), record(2, 1)];
        let answer = |id: String, result: &str| {
            let mut record = KinesisFirehoseResponseRecord::default();
            record.record_id = Some(id);
            record.result = Some(result.to_owned());
            record.data.0 = b"line\n".to_vec();
            record
        };
        let response = |records| {
            let mut response = KinesisFirehoseResponse::default();
            response.records = records;
            response
        };
        let fates = settle(
            &chunk,
            response(vec![
                answer(record_id(&chunk[1]), "ProcessingFailed"),
                answer(record_id(&chunk[0]), "Ok"),
            ]),
        )
        .unwrap_or_else(|_| panic!("a complete answer settles"));
        assert!(matches!(&fates[0], Fate::Delivered(data) if data == b"line\n"));
        assert!(matches!(
            &fates[1],
            Fate::Failed {
                code: "Lambda.ProcessingFailed",
                ..
            }
        ));
        let missing = settle(&chunk, response(vec![answer(record_id(&chunk[0]), "Ok")]));
        assert!(matches!(missing, Err(("Lambda.MissingRecordId", _))));
        let twice = settle(
            &chunk,
            response(vec![
                answer(record_id(&chunk[0]), "Ok"),
                answer(record_id(&chunk[0]), "Ok"),
            ]),
        );
        assert!(matches!(twice, Err(("Lambda.DuplicatedRecordId", _))));
        let unknown = settle(&chunk, response(vec![answer("nope".into(), "Ok")]));
        assert!(matches!(unknown, Err(("Lambda.MissingRecordId", _))));
    }
}
