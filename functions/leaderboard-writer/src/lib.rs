//! The leaderboard-writer function: each racer's `final` second becomes the racer's result of the
//! race and, if it beats the racer's best, their row on the all-time class leaderboard.
//!
//! The event source filters the stream to `final` messages (FilterCriteria `event = final`); the
//! handler still ignores (and counts as `NotFinal`) anything else, so a missing or changed filter
//! cannot put ordinary seconds on the leaderboard. Every final is first admitted like the race
//! aggregator's records: plausible for its arrival, and published by its racer's holder when an
//! identity published it (`alleycat_lambda::claims`); a rejected final is counted under its rule
//! (`Rejected.<rule>`) and never stored, so a forged 470.25 cannot reach the leaderboard.
//!
//! For each final, in stream order: [`Finals::put_final`] stores the result (the fact), through
//! [`retry()`]. Racers are independent, so their finals are stored concurrently, each racer's in
//! stream order; a racer whose final fails stops there (its later records come back with the
//! retry, counted `Skipped`) and reports it.
//!
//! Then the stored results go to the class leaderboards together, class by class
//! ([`offer_records`]): each racer's best of the batch is offered, the racers' rows are read,
//! and the rows it beats are written with the class's rank counts in one transaction per 99
//! racers, each row conditional on the row read (a concurrent writer makes the transaction
//! re-read and retry with backoff). A result that does not beat the row is the normal "no new
//! record" (`NoNewRecord`), not an error. A transaction that still fails reports each of its
//! racers' earliest final of that class as a batch item failure, and logs its error.
//!
//! Lambda resumes the batch from the earliest reported record, and replaying finals is harmless:
//! the same result items are written again and the rows, already improved, are not written, so
//! no count moves twice. Whatever finished in whatever order, every record before the earliest
//! failure has succeeded, which is all an ordered stream needs.
//!
//! Metrics: [`metric`], with `Rejected.<rule>` for each rule.

pub mod metric;

use std::collections::{BTreeMap, HashMap, HashSet};

use alleycat_domain::{LeaderboardEntry, RacerFinal};
use alleycat_lambda::claims::admit_holders;
use alleycat_lambda::env::StreamConfig;
pub use alleycat_lambda::env::{RETRY_MAX_ATTEMPTS, WRITE_CONCURRENCY};
use alleycat_lambda::{BatchFailures, LenientKinesisEvent, Metrics, RejectionLog};
use alleycat_ports::{
    Claims, Finals, RankedRecords, RetryError, RetryPolicy, offer_records, retry,
};
use aws_lambda_events::event::streams::KinesisEventResponse;
use futures::stream::{self, StreamExt};
use metric::METRICS;

/// The function's name: the `Function` dimension of its metrics.
pub const FUNCTION_NAME: &str = "leaderboard-writer";

/// The function's configuration: table, race clock, clock skew, retries, write concurrency, read
/// from the environment by [`StreamConfig::from_lookup`] (shared with the other stream function).
pub type Config = StreamConfig;

/// One final of the batch, with where it was.
struct FinalRecord<'e> {
    position: usize,
    sequence_number: &'e str,
    result: RacerFinal,
}

/// What storing one racer's finals did.
#[derive(Default)]
struct RacerOutcome<'e> {
    finals: u64,
    retries: u64,
    skipped: u64,
    /// The racer's record that failed: position and sequence number.
    failed: Option<(usize, &'e str)>,
    /// The finals stored, in stream order: what the leaderboards are offered.
    stored: Vec<FinalRecord<'e>>,
}

/// Handles one Kinesis event of finals: stores each result and offers it to the leaderboard, and
/// answers with the earliest record Lambda must resume from.
///
/// Counts into `metrics`; the caller emits them once per invocation.
#[tracing::instrument(name = "leaderboard_writer", skip_all, fields(records = event.len()))]
pub async fn handle<F: Finals + RankedRecords + Claims>(
    event: LenientKinesisEvent,
    finals: &F,
    config: &Config,
    metrics: &mut Metrics,
) -> KinesisEventResponse {
    for name in METRICS {
        metrics.add(name, 0);
    }
    let mut rejections = RejectionLog::new();
    let readings = event.readings(config.plausibility(), metrics, &mut rejections);
    let (readings, undecided) =
        admit_holders(readings, finals, &config.retry, metrics, &mut rejections).await;
    rejections.count_into(metrics);
    rejections.finish();
    // Each racer's finals in stream order, racers in order of first appearance.
    let mut racers: Vec<Vec<FinalRecord<'_>>> = Vec::new();
    let mut racer_index = HashMap::new();
    for record in &readings {
        let Some(result) = RacerFinal::from_reading(&record.reading) else {
            metrics.incr(metric::NOT_FINAL);
            continue;
        };
        let index = *racer_index.entry(result.racer_id).or_insert_with(|| {
            racers.push(Vec::new());
            racers.len() - 1
        });
        racers[index].push(FinalRecord {
            position: record.position,
            sequence_number: record.sequence_number,
            result,
        });
    }

    // Built in a loop rather than by a closure in the stream, which would make this future fail
    // the `Send` check the Lambda runtime needs (rust-lang/rust#102211).
    let mut work = Vec::with_capacity(racers.len());
    for records in racers {
        work.push(process_racer(finals, records, &config.retry));
    }
    let outcomes: Vec<RacerOutcome<'_>> = stream::iter(work)
        .buffer_unordered(config.write_concurrency.max(1))
        .collect()
        .await;

    let mut failures = BatchFailures::new();
    if let Some(undecided) = &undecided {
        // Finals whose claims could not be read cannot be judged: Lambda delivers them again.
        failures.fail(undecided.first.position, undecided.first.sequence_number);
    }
    // Stored finals by class, each class's in stream order.
    let mut by_class: BTreeMap<u8, Vec<FinalRecord<'_>>> = BTreeMap::new();
    for outcome in outcomes {
        metrics.add(metric::FINALS, outcome.finals);
        metrics.add(metric::RETRIES, outcome.retries);
        metrics.add(metric::SKIPPED, outcome.skipped);
        if let Some((position, sequence_number)) = outcome.failed {
            metrics.incr(metric::FAILED);
            failures.fail(position, sequence_number);
        }
        for record in outcome.stored {
            by_class
                .entry(record.result.class_id)
                .or_default()
                .push(record);
        }
    }
    for (class_id, mut records) in by_class {
        records.sort_unstable_by_key(|r| r.position);
        offer_class(
            finals,
            class_id,
            &records,
            &config.retry,
            metrics,
            &mut failures,
        )
        .await;
    }
    failures.into_kinesis_response()
}

/// Offers a class's stored finals to its leaderboard, counts new records as if each final had
/// been offered in stream order, and reports the racers whose rows could not be written.
async fn offer_class<F: RankedRecords>(
    table: &F,
    class_id: u8,
    records: &[FinalRecord<'_>],
    policy: &RetryPolicy,
    metrics: &mut Metrics,
    failures: &mut BatchFailures,
) {
    let entries: Vec<LeaderboardEntry> = records
        .iter()
        .map(|r| r.result.to_leaderboard_entry())
        .collect();
    let outcome = offer_records(table, class_id, &entries, policy).await;
    metrics.add(
        metric::RETRIES,
        u64::from(outcome.retries + outcome.conflicts),
    );
    let mut failed: HashMap<u32, &RetryError> = HashMap::new();
    for (racers, error) in &outcome.failed {
        tracing::error!(
            class_id,
            racers = ?racers,
            attempts = error.attempts,
            error = %error.last,
            "leaderboard rows not written"
        );
        failed.extend(racers.iter().map(|racer| (*racer, error)));
    }
    let mut running = outcome.observed;
    let mut reported: HashSet<u32> = HashSet::new();
    for (record, entry) in records.iter().zip(entries) {
        let racer = entry.racer_id;
        if failed.contains_key(&racer) {
            if reported.insert(racer) {
                metrics.incr(metric::FAILED);
                failures.fail(record.position, record.sequence_number);
            } else {
                metrics.incr(metric::SKIPPED);
            }
            continue;
        }
        if entry.beats(running.get(&racer)) {
            metrics.incr(metric::NEW_RECORD);
            running.insert(racer, entry);
        } else {
            metrics.incr(metric::NO_NEW_RECORD);
        }
    }
}

/// Stores one racer's finals in order, stopping at the first that fails.
async fn process_racer<'e, F: Finals>(
    finals: &F,
    records: Vec<FinalRecord<'e>>,
    policy: &RetryPolicy,
) -> RacerOutcome<'e> {
    let mut outcome = RacerOutcome::default();
    let mut records = records.into_iter();
    while let Some(record) = records.next() {
        if let Err(error) = write_final(finals, &record.result, policy, &mut outcome).await {
            outcome.retries += u64::from(error.attempts.saturating_sub(1));
            outcome.failed = Some((record.position, record.sequence_number));
            outcome.skipped = records.len() as u64;
            tracing::error!(
                sequence_number = record.sequence_number,
                racer_id = record.result.racer_id,
                class_id = record.result.class_id,
                race_id = record.result.race_id,
                attempts = error.attempts,
                error = %error.last,
                "final not written"
            );
            break;
        }
        outcome.stored.push(record);
    }
    outcome
}

/// Stores one result (the fact; the leaderboard is offered it afterwards).
async fn write_final<F: Finals>(
    finals: &F,
    result: &RacerFinal,
    policy: &RetryPolicy,
    outcome: &mut RacerOutcome<'_>,
) -> Result<(), RetryError> {
    let ((), retries) = retry(policy, || finals.put_final(result)).await?;
    outcome.retries += u64::from(retries);
    outcome.finals += 1;
    Ok(())
}

/// The leaderboard writer with its table bound: what the Lambda main serves and the embedded
/// stack calls.
pub struct LeaderboardWriter<F> {
    /// Where finals and leaderboard rows go, and claims are read.
    pub finals: F,
    /// Clock, retries, concurrency.
    pub config: Config,
}

impl<F: Finals + RankedRecords + Claims> alleycat_lambda::Function for LeaderboardWriter<F> {
    const NAME: &'static str = FUNCTION_NAME;
    type Event = LenientKinesisEvent;
    type Response = KinesisEventResponse;
    type Error = std::convert::Infallible;

    async fn handle(
        &self,
        event: LenientKinesisEvent,
        metrics: &mut Metrics,
    ) -> Result<KinesisEventResponse, Self::Error> {
        Ok(handle(event, &self.finals, &self.config, metrics).await)
    }
}
