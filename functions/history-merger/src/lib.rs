//! The history merger: each gzip NDJSON object Firehose delivers under `raw/` is merged into the
//! class histories (top-K per second, S3 objects), the racers' bests and the racers' traces
//! (table items).
//!
//! An object is read whole, decoded as a stream (bad lines are skipped, counted and logged with
//! their line numbers), and folded into one in-memory delta per document, so a document costs one
//! read and at most one conditional write however many lines touched it. The deltas are then
//! max-merged into the stores a bounded number at a time (one object can touch 2,000 items).
//!
//! The transformer admitted every line by plausibility before archiving it; what it could not
//! decide is the holder rule, which needs the table: lines an identity published (they carry
//! `identityId`) are merged only if that identity held the racer when the line arrived (one
//! claims read per object, `Rejected.not_holder` otherwise).
//!
//! On AWS, S3 announces each object on a queue and Lambda invokes the function with batches of
//! those announcements at a bounded concurrency ([`queue`]); the embedded stack invokes
//! [`handle`] with S3 events directly. When a read or a merge still fails after its retries,
//! [`handle`] returns an error naming it, and the event (or the batch's messages) is delivered
//! again. That is safe because every view is a max-merge: documents already merged are merged
//! again to the same value, and the replay costs a read each and no write.

mod config;
mod deltas;
pub mod metric;
pub mod queue;

use std::borrow::Cow;
use std::fmt;

use alleycat_domain::{ClassHistory, Reading, SecondSeries, decode_delivery};
use alleycat_lambda::Metrics;
use alleycat_lambda::RejectionLog;
use alleycat_lambda::claims::{Held, admit_holders};
use alleycat_lambda::env::EnvError;
use alleycat_ports::{
    BestsKey, Claims, MergeOutcome, MergeStore, ObjectStore, RetryError, TraceKey, merge_into,
    retry,
};
use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use futures::StreamExt;
use percent_encoding::percent_decode_str;

pub use config::{
    Config, DEFAULT_CONCURRENCY, DELIVERY_BUCKET, HISTORY_BUCKET, HISTORY_TOP_K, MERGE_CONCURRENCY,
    TABLE_NAME,
};
pub use deltas::Target;
pub use queue::{QueuedHistoryMerger, handle_queue};

use deltas::Deltas;
pub use metric::METRICS;

/// The `Function` dimension of this function's metrics.
pub const FUNCTION_NAME: &str = "history-merger";

/// Prefix of the objects Firehose delivers; nothing else in the bucket is merged.
pub const RAW_PREFIX: &str = "raw/";

/// Folder Firehose writes records that failed transformation to; never merged, wherever it sits.
pub const PROCESSING_FAILED: &str = "processing-failed";

/// How many failures an invocation logs one by one; the rest are counted.
const MAX_LOGGED_FAILURES: usize = 20;

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is missing or invalid (the message names the variable).
    #[error(transparent)]
    Config(#[from] EnvError),
    /// Some reads or merges still failed after their retries; Lambda retries the event, which is
    /// safe because every view is a max-merge.
    #[error("{}", describe_failures(.failures))]
    Incomplete {
        /// Every failed read and merge.
        failures: Vec<Failure>,
    },
}

/// A read or merge that failed after its retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What failed.
    pub what: Failed,
    /// The last error and the attempts made.
    pub error: RetryError,
}

/// The operation of a [`Failure`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failed {
    /// Reading the delivery object with this key.
    Read(String),
    /// Merging into this document.
    Merge(Target),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.what {
            Failed::Read(key) => write!(f, "reading {key}: {}", self.error),
            Failed::Merge(target) => write!(f, "merging the {target}: {}", self.error),
        }
    }
}

fn describe_failures(failures: &[Failure]) -> String {
    let mut text = format!(
        "{} read(s) or merge(s) failed; retrying the event is safe (every view is a max-merge)",
        failures.len()
    );
    for failure in failures.iter().take(3) {
        text.push_str("; ");
        text.push_str(&failure.to_string());
    }
    if failures.len() > 3 {
        text.push_str("; …");
    }
    text
}

/// Merges the objects of one S3 event.
///
/// `histories` is the history bucket as a merge store, normally
/// [`Config::histories`]`(bucket)`; `table` holds racer bests and traces.
///
/// Counts into `metrics` (see [`METRICS`]); the caller emits them once per invocation.
#[tracing::instrument(skip_all, fields(records = event.records.len()))]
pub async fn handle<D, H, T>(
    event: S3Event,
    delivery: &D,
    histories: &H,
    table: &T,
    config: &Config,
    metrics: &mut Metrics,
) -> Result<(), Error>
where
    D: ObjectStore,
    H: MergeStore<u8, ClassHistory>,
    T: MergeStore<BestsKey, SecondSeries> + MergeStore<TraceKey, SecondSeries> + Claims,
{
    for name in METRICS {
        metrics.add(name, 0);
    }
    metrics.add(metric::OBJECTS_IN, event.records.len() as u64);
    let mut deltas = Deltas::new(config.top_k);
    let mut failures = Vec::new();
    let mut rejections = RejectionLog::new();
    for record in &event.records {
        let key = match delivery_key(record, &config.delivery_bucket) {
            Ok(key) => key,
            Err(reason) => {
                metrics.incr(metric::SKIPPED);
                tracing::info!(
                    key = record.s3.object.key.as_deref(),
                    reason,
                    "object skipped"
                );
                continue;
            }
        };
        let read = read_object(
            delivery,
            table,
            &key,
            config,
            &mut deltas,
            metrics,
            &mut rejections,
        );
        if let Err(error) = read.await {
            metrics.incr(metric::READ_FAILED);
            tracing::error!(%key, %error, "delivery object could not be read");
            failures.push(Failure {
                what: Failed::Read(key),
                error,
            });
        }
    }
    rejections.count_into(metrics);
    rejections.finish();
    merge_deltas(deltas, histories, table, config, metrics, &mut failures).await;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Incomplete { failures })
    }
}

/// The decoded key of a record's object, or why the record is not one to merge.
fn delivery_key(record: &S3EventRecord, bucket: &str) -> Result<String, &'static str> {
    if record
        .event_name
        .as_deref()
        .is_some_and(|name| !name.starts_with("ObjectCreated:"))
    {
        return Err("not an ObjectCreated event");
    }
    if record
        .s3
        .bucket
        .name
        .as_deref()
        .is_some_and(|name| name != bucket)
    {
        return Err("not the delivery bucket");
    }
    let raw = record.s3.object.key.as_deref().ok_or("no object key")?;
    let key = decode_event_key(raw).ok_or("object key is not UTF-8")?;
    if !key.starts_with(RAW_PREFIX) {
        return Err("outside raw/");
    }
    if key.split('/').any(|segment| segment == PROCESSING_FAILED) {
        return Err("a Firehose processing-failed object");
    }
    Ok(key)
}

/// S3 event keys are form-encoded: `+` is a space and everything else is percent-encoded (a
/// literal `+` arrives as `%2B`).
pub(crate) fn decode_event_key(key: &str) -> Option<String> {
    let spaced: Cow<'_, str> = if key.contains('+') {
        Cow::Owned(key.replace('+', " "))
    } else {
        Cow::Borrowed(key)
    };
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(Cow::into_owned)
}

/// Reads one delivery object into `deltas`. A missing object (deleted before we got to it) and a
/// corrupt one (S3 objects never change, so a retry would read the same bytes) are logged and
/// counted, not failures. Lines an identity published count only if it held the racer.
async fn read_object<D: ObjectStore, C: Claims>(
    delivery: &D,
    claims: &C,
    key: &str,
    config: &Config,
    deltas: &mut Deltas,
    metrics: &mut Metrics,
    rejections: &mut RejectionLog,
) -> Result<(), RetryError> {
    let object = match retry(&config.retry, || delivery.get(key)).await {
        Ok((object, retries)) => {
            metrics.add(metric::RETRIES, u64::from(retries));
            object
        }
        Err(error) => {
            metrics.add(metric::RETRIES, u64::from(error.attempts.saturating_sub(1)));
            return Err(error);
        }
    };
    let Some(object) = object else {
        metrics.incr(metric::MISSING);
        tracing::warn!(%key, "delivery object no longer exists; skipped");
        return Ok(());
    };
    metrics.add(metric::BYTES_IN, object.bytes.len() as u64);
    // Trusted producers' lines merge at once; identities' lines wait for their claims.
    let mut published = Vec::new();
    let result = decode_delivery(object.bytes.as_slice(), config.clock, |reading| {
        if reading.identity_id.is_some() {
            published.push(ArchivedLine(reading.clone().into_owned()));
        } else {
            deltas.add(reading);
        }
    });
    let (held, undecided) =
        admit_holders(published, claims, &config.retry, metrics, rejections).await;
    if let Some(undecided) = undecided {
        return Err(undecided.error);
    }
    for line in &held {
        deltas.add(&line.0);
    }
    let stats = match &result {
        Ok(stats) => stats,
        Err(error) => {
            metrics.incr(metric::UNREADABLE);
            tracing::error!(
                %key,
                after_line = error.line,
                error = %error.source,
                "delivery object is corrupt; merged the lines before the damage"
            );
            &error.stats
        }
    };
    metrics.add(metric::LINES, stats.lines);
    metrics.add(metric::RECORDS, stats.records);
    metrics.add(metric::BAD_LINES, stats.skipped);
    for bad in &stats.bad_lines {
        tracing::warn!(%key, line = bad.line, rule = bad.reason.rule(), reason = %bad.reason, "bad line skipped");
    }
    let unlisted = stats.skipped.saturating_sub(stats.bad_lines.len() as u64);
    if unlisted > 0 {
        tracing::warn!(%key, unlisted, "more bad lines skipped than logged");
    }
    Ok(())
}

/// A line an identity published, waiting for its racer's claim.
struct ArchivedLine(Reading<'static>);

impl Held for ArchivedLine {
    fn reading(&self) -> &Reading<'_> {
        &self.0
    }

    fn record_id(&self) -> String {
        format!("racer {} second {}", self.0.racer_id, self.0.second)
    }
}

/// One document's delta, waiting for its merge.
enum Job {
    History(u8, ClassHistory),
    Bests(BestsKey, SecondSeries),
    Trace(TraceKey, SecondSeries),
}

async fn merge_deltas<H, T>(
    deltas: Deltas,
    histories: &H,
    table: &T,
    config: &Config,
    metrics: &mut Metrics,
    failures: &mut Vec<Failure>,
) where
    H: MergeStore<u8, ClassHistory>,
    T: MergeStore<BestsKey, SecondSeries> + MergeStore<TraceKey, SecondSeries>,
{
    tracing::debug!(documents = deltas.len(), "merging");
    // Histories first: they are the largest documents and the likeliest to conflict.
    let jobs = deltas
        .histories
        .into_iter()
        .map(|(class_id, delta)| Job::History(class_id, delta))
        .chain(deltas.bests.into_iter().map(|(k, d)| Job::Bests(k, d)))
        .chain(deltas.traces.into_iter().map(|(k, d)| Job::Trace(k, d)));
    let policy = &config.retry;
    let mut results = futures::stream::iter(jobs)
        .map(|job| async move {
            match job {
                Job::History(class_id, delta) => (
                    Target::History(class_id),
                    merge_into(histories, &class_id, &delta, policy).await,
                ),
                Job::Bests(key, delta) => (
                    Target::Bests(key),
                    merge_into(table, &key, &delta, policy).await,
                ),
                Job::Trace(key, delta) => (
                    Target::Trace(key),
                    merge_into(table, &key, &delta, policy).await,
                ),
            }
        })
        .buffer_unordered(config.concurrency.max(1));
    while let Some((target, result)) = results.next().await {
        record_outcome(target, result, metrics, failures);
    }
}

fn record_outcome(
    target: Target,
    result: Result<MergeOutcome, RetryError>,
    metrics: &mut Metrics,
    failures: &mut Vec<Failure>,
) {
    match result {
        Ok(outcome) => {
            metrics.incr(match (outcome.written, target) {
                (false, _) => metric::UNCHANGED,
                (true, Target::History(_)) => metric::HISTORY_WRITES,
                (true, Target::Bests(_)) => metric::BESTS_WRITES,
                (true, Target::Trace(_)) => metric::TRACE_WRITES,
            });
            metrics.add(metric::CONFLICTS, u64::from(outcome.conflicts));
            metrics.add(metric::RETRIES, u64::from(outcome.retries));
        }
        Err(error) => {
            metrics.incr(metric::MERGE_FAILED);
            metrics.add(metric::RETRIES, u64::from(error.attempts.saturating_sub(1)));
            if failures.len() < MAX_LOGGED_FAILURES {
                tracing::error!(%target, %error, "merge failed");
            }
            failures.push(Failure {
                what: Failed::Merge(target),
                error,
            });
        }
    }
}

/// The history merger with its buckets and table bound: what the Lambda main serves and the
/// embedded stack calls.
pub struct HistoryMerger<D, H, T> {
    /// The Firehose delivery bucket (`raw/` objects).
    pub delivery: D,
    /// The history bucket as a merge store ([`Config::histories`]).
    pub histories: H,
    /// Where racer bests and traces are merged.
    pub table: T,
    /// Buckets, K, clock, concurrency, retries.
    pub config: Config,
}

impl<D, H, T> alleycat_lambda::Function for HistoryMerger<D, H, T>
where
    D: ObjectStore,
    H: MergeStore<u8, ClassHistory>,
    T: MergeStore<BestsKey, SecondSeries> + MergeStore<TraceKey, SecondSeries> + Claims,
{
    const NAME: &'static str = FUNCTION_NAME;
    type Event = S3Event;
    type Response = ();
    type Error = Error;

    async fn handle(&self, event: S3Event, metrics: &mut Metrics) -> Result<(), Error> {
        handle(
            event,
            &self.delivery,
            &self.histories,
            &self.table,
            &self.config,
            metrics,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_are_form_decoded() {
        assert_eq!(
            decode_event_key("raw/2026/11/21/10/a+b%2Bc%20d.gz").as_deref(),
            Some("raw/2026/11/21/10/a b+c d.gz")
        );
        assert_eq!(decode_event_key("raw/%FF.gz"), None);
    }
}
