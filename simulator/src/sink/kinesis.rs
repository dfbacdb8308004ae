//! Kinesis PutRecords, paced to the shards' budget, with per-record retries (see [`crate::pacing`]).
//!
//! The sink is generic over [`KinesisPort`], one method wide, so the same sink runs on the AWS SDK
//! ([`SdkKinesis`], against AWS, moto, or an `aws-smithy-mocks` client) and on in-memory fakes.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use alleycat_ports::{PortError, RetryPolicy};
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::http::HttpResponse;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, StreamStatus};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::{Fatal, Sink};
use crate::pacing::{Budget, Completion, Dispatcher, Entry, RecordResult};
use crate::race::Batch;
use crate::stats::Stats;

/// What the sink needs from Kinesis: one PutRecords call.
pub trait KinesisPort: Clone + Send + Sync + 'static {
    /// Puts `entries` in one request. `Ok` holds one result per entry, in order; `Err` is a
    /// failure of the whole request, classified for retrying.
    fn put_records(
        &self,
        entries: &[Entry],
    ) -> impl Future<Output = Result<Vec<RecordResult>, PortError>> + Send;
}

/// [`KinesisPort`] on the AWS SDK.
#[derive(Clone, Debug)]
pub struct SdkKinesis {
    /// The client.
    pub client: Client,
    /// Stream name, or ARN (`arn:…`).
    pub stream: Arc<str>,
}

impl SdkKinesis {
    /// A port writing to `stream` (a name or an ARN) with `client`.
    pub fn new(client: Client, stream: impl Into<Arc<str>>) -> Self {
        Self {
            client,
            stream: stream.into(),
        }
    }

    /// A port on a client built from `config`.
    pub fn from_conf(config: &aws_config::SdkConfig, stream: impl Into<Arc<str>>) -> Self {
        Self::new(Client::new(config), stream)
    }
}

/// Kinesis's throttling codes that the shared classification does not know.
const KINESIS_THROTTLING: &[&str] = &["KMSThrottlingException", "LimitExceededException"];

/// Classifies a failed Kinesis call for the retry loop.
pub fn classify<E>(operation: &str, error: &SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match error.code() {
        Some(code) if KINESIS_THROTTLING.contains(&code) => PortError::Throttled(format!(
            "{operation}: {code}: {}",
            error.message().unwrap_or_default()
        )),
        _ => alleycat_aws::classify(operation, error),
    }
}

impl KinesisPort for SdkKinesis {
    async fn put_records(&self, entries: &[Entry]) -> Result<Vec<RecordResult>, PortError> {
        let records = entries
            .iter()
            .map(|entry| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(entry.data.clone()))
                    .partition_key(&*entry.key)
                    .build()
                    .map_err(|e| PortError::Permanent(format!("building a record: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let request = self.client.put_records().set_records(Some(records));
        let request = if self.stream.starts_with("arn:") {
            request.stream_arn(&*self.stream)
        } else {
            request.stream_name(&*self.stream)
        };
        let output = request
            .send()
            .await
            .map_err(|e| classify("Kinesis PutRecords", &e))?;
        let results = output.records();
        if results.len() != entries.len() {
            return Err(PortError::Transient(format!(
                "Kinesis PutRecords answered {} results for {} records",
                results.len(),
                entries.len()
            )));
        }
        Ok(results
            .iter()
            .map(|r| match r.error_code() {
                Some(code) => RecordResult::Failed(code.to_owned()),
                None => RecordResult::Ok,
            })
            .collect())
    }
}

/// Creates stream `name` with `shards` shards unless it exists, and waits until it is active.
pub async fn ensure_stream(
    client: &Client,
    name: &str,
    shards: u32,
    timeout: Duration,
) -> Result<(), Fatal> {
    let shard_count = i32::try_from(shards).unwrap_or(i32::MAX);
    match client
        .create_stream()
        .stream_name(name)
        .shard_count(shard_count)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceInUseException") => {}
        Err(e) => {
            return Err(Fatal(format!(
                "creating Kinesis stream {name}: {}",
                DisplayErrorContext(&e)
            )));
        }
    }
    let deadline = Instant::now() + timeout;
    loop {
        let summary = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .map_err(|e| {
                Fatal(format!(
                    "describing Kinesis stream {name}: {}",
                    DisplayErrorContext(&e)
                ))
            })?;
        if summary
            .stream_description_summary()
            .is_some_and(|s| s.stream_status() == &StreamStatus::Active)
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Fatal(format!(
                "Kinesis stream {name} is not active after {} s",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How the Kinesis sink paces and retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KinesisSinkConfig {
    /// Throughput allowed (`--shards`).
    pub budget: Budget,
    /// Most records per request (`--batch-size`, ≤ 500).
    pub batch_size: usize,
    /// Attempts per record and backoff (`--max-attempts`, `--retry-base-ms`, `--retry-max-ms`).
    /// Also bounds consecutive whole-request failures other than throttling: that many in a row
    /// mean the target is down, which ends the run.
    pub policy: RetryPolicy,
}

/// The Kinesis target: a background task owns the [`Dispatcher`] and the requests in flight;
/// `submit` hands it records and waits when too many are queued.
pub struct KinesisSink {
    tx: Option<mpsc::Sender<Vec<Entry>>>,
    task: Option<JoinHandle<Result<(), Fatal>>>,
    keys: Vec<Arc<str>>,
    stats: Arc<Stats>,
}

impl KinesisSink {
    /// Starts the sink's task on `port`; `keys` are the racers' partition keys, by racer index.
    pub fn start<P: KinesisPort>(
        port: P,
        keys: Vec<Arc<str>>,
        config: KinesisSinkConfig,
        stats: Arc<Stats>,
    ) -> Self {
        let racers = u32::try_from(keys.len()).unwrap_or(u32::MAX);
        let dispatcher = Dispatcher::new(racers, config.budget, config.batch_size, config.policy);
        // Queue at most two seconds of budget, and at least two ticks.
        let high_water = (2 * config.budget.records_per_second as usize).max(2 * keys.len());
        let (tx, rx) = mpsc::channel(1);
        let task = tokio::spawn(drive(
            port,
            rx,
            dispatcher,
            config,
            high_water,
            Arc::clone(&stats),
        ));
        Self {
            tx: Some(tx),
            task: Some(task),
            keys,
            stats,
        }
    }

    async fn task_error(&mut self) -> Fatal {
        match self.task.take() {
            Some(task) => match task.await {
                Ok(Err(fatal)) => fatal,
                Ok(Ok(())) => Fatal("the Kinesis sender stopped early".to_owned()),
                Err(e) => Fatal(format!("the Kinesis sender failed: {e}")),
            },
            None => Fatal("the Kinesis sender has stopped".to_owned()),
        }
    }
}

impl Sink for KinesisSink {
    async fn submit(&mut self, batch: &Batch, range: Range<usize>) -> Result<(), Fatal> {
        let entries: Vec<Entry> = range
            .map(|i| {
                let racer = batch.records[i].racer;
                Entry {
                    racer,
                    key: Arc::clone(&self.keys[racer as usize]),
                    data: batch.message(i).to_vec(),
                    attempts: 0,
                }
            })
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        let sent = match &self.tx {
            Some(tx) => tx.send(entries).await.map_err(|e| e.0.len()),
            None => Err(entries.len()),
        };
        if let Err(unsent) = sent {
            Stats::add(&self.stats.lost, unsent as u64);
            return Err(self.task_error().await);
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<(), Fatal> {
        drop(self.tx.take());
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(|e| Fatal(format!("the Kinesis sender failed: {e}")))?,
            None => Ok(()),
        }
    }
}

fn count(stats: &Stats, completion: Completion) {
    Stats::add(&stats.sent, completion.sent);
    Stats::add(&stats.rejected, completion.rejected);
    Stats::add(&stats.retried, completion.retried);
    Stats::add(&stats.lost, completion.lost);
}

/// The sink's task: receives records, sends a slot's worth of requests every slot, settles
/// answers, until the input is closed and nothing is left.
async fn drive<P: KinesisPort>(
    port: P,
    mut rx: mpsc::Receiver<Vec<Entry>>,
    mut dispatcher: Dispatcher,
    config: KinesisSinkConfig,
    high_water: usize,
    stats: Arc<Stats>,
) -> Result<(), Fatal> {
    let base = Instant::now();
    let mut flights = FuturesUnordered::new();
    let mut slots = tokio::time::interval(config.budget.slot());
    slots.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut open = true;
    let mut failing = 0;
    let fatal = loop {
        if !open && dispatcher.is_idle() {
            break None;
        }
        tokio::select! {
            Some((entries, result, latency)) = flights.next(), if !flights.is_empty() => {
                let result: Result<Vec<RecordResult>, PortError> = result;
                stats.record_latency(latency);
                let now = base.elapsed();
                match result {
                    Ok(results) => {
                        failing = 0;
                        count(&stats, dispatcher.complete(now, entries, Some(&results)));
                    }
                    Err(error) if error.is_retryable() => {
                        Stats::add(&stats.request_errors, 1);
                        if matches!(error, PortError::Throttled(_)) {
                            failing = 0;
                        } else {
                            failing += 1;
                        }
                        count(&stats, dispatcher.complete(now, entries, None));
                        if failing >= config.policy.max_attempts.max(1) {
                            break Some(Fatal(format!(
                                "Kinesis keeps failing ({failing} requests in a row): {error}"
                            )));
                        }
                    }
                    Err(error) => {
                        Stats::add(&stats.request_errors, 1);
                        break Some(Fatal(error.to_string()));
                    }
                }
            }
            received = rx.recv(), if open && dispatcher.queued() < high_water => {
                match received {
                    Some(entries) => {
                        let now = base.elapsed();
                        for entry in entries {
                            dispatcher.push(now, entry);
                        }
                    }
                    None => open = false,
                }
            }
            _ = slots.tick() => {
                for request in dispatcher.take(base.elapsed()) {
                    let port = port.clone();
                    flights.push(async move {
                        let started = Instant::now();
                        let result = port.put_records(&request).await;
                        (request, result, started.elapsed())
                    });
                }
            }
        }
    };
    let Some(fatal) = fatal else {
        return Ok(());
    };
    // Everything not acknowledged is lost: queued, in flight, and still in the channel.
    let mut lost = dispatcher.abandon() + dispatcher.in_flight() as u64;
    rx.close();
    while let Ok(entries) = rx.try_recv() {
        lost += entries.len() as u64;
    }
    Stats::add(&stats.lost, lost);
    Err(fatal)
}
