//! The event source mapping of an ordered stream, once for every stream source: a Kinesis shard
//! and the table's change stream poll the same way.
//!
//! Per shard, one poller, in order: read up to `BatchSize` records after the checkpoint; gather
//! more for up to the batching window; drop (and step over) the records the filter criteria
//! reject; invoke the function; then, as Lambda does with `ReportBatchItemFailures`:
//!
//! - no failures: checkpoint the whole batch;
//! - a reported `itemIdentifier` of the batch: checkpoint the records before it and retry from
//!   it; an identifier that is not in the batch (or empty) fails the whole batch;
//! - a function error (an error, a panic, an answer that is not a batch response): retry the
//!   batch, split in two first when bisecting is on;
//! - after `MaximumRetryAttempts` retries of the same start, write an on-failure record for the
//!   records still failing and checkpoint past them.
//!
//! Retries back off exponentially (100 ms doubling to 5 s). Checkpoints are committed after each
//! invocation, so a restart re-delivers at most the batch in flight, which the functions'
//! max-merges absorb.

use std::sync::Arc;
use std::time::Duration;

use alleycat_lambda::Function;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Notify, watch};

use super::filter::{Pattern, passes};
use super::on_failure::{Condition, OnFailure};
use super::{Invocations, invoke};
use crate::config::MappingConfig;
use crate::db::{Db, set_checkpoint};
use crate::error::LocalError;

/// Where a new consumer starts (`StartingPosition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Starting {
    /// The oldest record kept.
    TrimHorizon,
    /// Only records written after the consumer first started.
    Latest,
}

/// An ordered, sequence-numbered source a mapping polls: one stream shard, the change stream.
pub trait Shard: Send + Sync + 'static {
    /// A stored record.
    type Record: Send + Sync;
    /// The event a batch of records becomes (a genuine `aws_lambda_events` type).
    type Event: Serialize + Send + Sync;

    /// The database holding this source's checkpoints.
    fn db(&self) -> &Db;
    /// The checkpoint's name: function and shard.
    fn consumer(&self) -> &str;
    /// Up to `limit` records after `after`.
    fn read(&self, after: Option<u64>, limit: usize) -> Result<Vec<Self::Record>, LocalError>;
    /// The newest sequence number, for [`Starting::Latest`].
    fn latest(&self) -> Option<u64>;
    /// Notified on every append.
    fn appended(&self) -> Arc<Notify>;
    /// A record's sequence number.
    fn sequence(record: &Self::Record) -> u64;
    /// When a record arrived, epoch milliseconds.
    fn arrival_ms(record: &Self::Record) -> u64;
    /// A record as filter patterns see it.
    fn filter_view(record: &Self::Record) -> Value;
    /// The event of a batch.
    fn event(&self, records: &[&Self::Record]) -> Self::Event;
    /// The on-failure record's description of a batch: its key (`KinesisBatchInfo`,
    /// `DDBStreamBatchInfo`) and value.
    fn batch_info(&self, records: &[&Self::Record]) -> (&'static str, Value);
    /// Parses an `itemIdentifier` back into a sequence number.
    fn parse_identifier(identifier: &str) -> Option<u64>;
}

/// A mapping's settings.
#[derive(Clone, Debug)]
pub struct Mapping {
    /// Batching, retries, bisecting.
    pub config: MappingConfig,
    /// `FilterCriteria` (none: every record).
    pub filters: Vec<Pattern>,
    /// `StartingPosition`.
    pub starting: Starting,
}

/// The batch response every stream function gives (Kinesis and DynamoDB share its shape); an
/// asynchronously invoked function (the history merger) answers `null`, which has no failures.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchResponse {
    #[serde(default)]
    batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemFailure {
    #[serde(default)]
    item_identifier: Option<String>,
}

/// What the stack's pollers share.
#[derive(Debug)]
pub struct Context {
    /// Totals of every invocation.
    pub invocations: Arc<Invocations>,
    /// Where given-up batches go.
    pub on_failure: Arc<OnFailure>,
    /// Set to `true` to stop after the invocation in flight.
    pub shutdown: watch::Receiver<bool>,
}

fn backoff(attempt: u32) -> Duration {
    let ceiling = 100u64.saturating_mul(1 << attempt.min(6)).min(5_000);
    Duration::from_millis(fastrand::u64(ceiling / 2..=ceiling))
}

fn checkpoint<S: Shard>(shard: &S, sequence: u64) -> Result<(), LocalError> {
    shard
        .db()
        .transaction(|tx| set_checkpoint(tx, shard.consumer(), &sequence.to_string()))
        .map_err(|e| shard.db().error(e))
}

/// Sleeps `duration`; `false` if the stack is shutting down.
async fn pause(shutdown: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration) => !*shutdown.borrow(),
        _ = shutdown.changed() => false,
    }
}

/// Runs the mapping of `shard` onto `function` until shutdown; a database failure ends it with
/// that error (the stack then stops).
pub async fn poll<S, F>(
    shard: S,
    function: Arc<F>,
    mapping: Mapping,
    mut context: Context,
) -> Result<(), LocalError>
where
    S: Shard,
    F: Function,
{
    let config = mapping.config;
    let mut position = match shard.db().checkpoint(shard.consumer()) {
        Ok(Some(position)) => position.parse().ok(),
        Ok(None) => match mapping.starting {
            Starting::TrimHorizon => None,
            Starting::Latest => {
                let latest = shard.latest();
                if let Some(latest) = latest {
                    checkpoint(&shard, latest)?;
                }
                latest
            }
        },
        Err(e) => return Err(shard.db().error(e)),
    };
    let mut limit = config.batch_size;
    let mut attempts = 0u32;
    let appended = shard.appended();
    while !*context.shutdown.borrow() {
        let notified = appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let records = shard.read(position, limit)?;
        let Some(first) = records.first() else {
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = context.shutdown.changed() => {}
            }
            continue;
        };
        // A partial batch waits for the batching window, counted from its first record; records
        // arriving meanwhile grow it (re-read), the end of the window sends it as it is.
        if records.len() < limit && attempts == 0 && !config.batching_window.is_zero() {
            let window = u64::try_from(config.batching_window.as_millis()).unwrap_or(u64::MAX);
            let due = S::arrival_ms(first).saturating_add(window);
            let now = crate::now_ms();
            if now < due {
                let window_over = tokio::select! {
                    () = &mut notified => false,
                    () = tokio::time::sleep(Duration::from_millis(due - now)) => true,
                    _ = context.shutdown.changed() => false,
                };
                if !window_over {
                    continue;
                }
            }
        }
        let batch = Batch {
            records: &records,
            attempts: &mut attempts,
            limit: &mut limit,
        };
        if let Some(end) = batch
            .invoke(&shard, &*function, &mapping, &mut context)
            .await?
        {
            position = Some(end);
        }
    }
    Ok(())
}

/// One batch read from a shard, with the poller's retry state.
struct Batch<'a, R> {
    records: &'a [R],
    /// Failed attempts from the current start.
    attempts: &'a mut u32,
    /// Records to read next (halved when bisecting).
    limit: &'a mut usize,
}

impl<R> Batch<'_, R> {
    /// Filters and invokes the batch and settles its outcome; returns the new checkpoint, if it
    /// moved.
    async fn invoke<S, F>(
        self,
        shard: &S,
        function: &F,
        mapping: &Mapping,
        context: &mut Context,
    ) -> Result<Option<u64>, LocalError>
    where
        S: Shard<Record = R>,
        F: Function,
    {
        let Self {
            records,
            attempts,
            limit,
        } = self;
        let config = mapping.config;
        let last = records
            .last()
            .map(S::sequence)
            .expect("a batch is never empty");
        let matching: Vec<&S::Record> = records
            .iter()
            .filter(|record| {
                mapping.filters.is_empty() || passes(&mapping.filters, &S::filter_view(record))
            })
            .collect();
        if matching.is_empty() {
            checkpoint(shard, last)?;
            return Ok(Some(last));
        }
        let event = shard.event(&matching);
        let failed_from =
            match invoke::<F, _, Option<BatchResponse>>(function, &event, &context.invocations)
                .await
            {
                Ok(response) => match response.unwrap_or_default().batch_item_failures.first() {
                    None => {
                        checkpoint(shard, last)?;
                        *attempts = 0;
                        *limit = config.batch_size;
                        return Ok(Some(last));
                    }
                    Some(failure) => failure
                        .item_identifier
                        .as_deref()
                        .and_then(S::parse_identifier)
                        .filter(|sequence| matching.iter().any(|r| S::sequence(r) == *sequence))
                        .ok_or_else(|| {
                            "batch item failure outside the batch: the whole batch failed"
                                .to_owned()
                        }),
                },
                Err(error) => {
                    if config.bisect && records.len() > 1 {
                        *limit = records.len().div_ceil(2);
                    }
                    Err(error.to_string())
                }
            };
        let first = S::sequence(matching[0]);
        let (retry_from, error) = match failed_from {
            Ok(sequence) => (
                sequence,
                "the function reported a batch item failure".to_owned(),
            ),
            Err(error) => (first, error),
        };
        // Everything before the failed record is done.
        let mut moved = None;
        if retry_from > first {
            checkpoint(shard, retry_from - 1)?;
            moved = Some(retry_from - 1);
            *attempts = 0;
        }
        *attempts += 1;
        tracing::warn!(consumer = shard.consumer(), attempt = *attempts, %error, "batch failed from sequence {retry_from}");
        if *attempts > config.max_retry_attempts {
            let failing: Vec<&S::Record> = matching
                .iter()
                .copied()
                .filter(|r| S::sequence(r) >= retry_from && S::sequence(r) <= last)
                .collect();
            context.on_failure.record(
                F::NAME,
                Condition::RetryAttemptsExhausted,
                *attempts,
                &error,
                shard.batch_info(&failing),
            )?;
            checkpoint(shard, last)?;
            *attempts = 0;
            *limit = config.batch_size;
            return Ok(Some(last));
        }
        pause(&mut context.shutdown, backoff(*attempts)).await;
        Ok(moved)
    }
}

#[cfg(test)]
mod tests;
