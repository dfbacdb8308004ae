//! The race-aggregator function: device readings from Kinesis, max-merged into each race's
//! standings ("Here now" while a race runs, "Race results" once it is over).
//!
//! Per batch (up to 1,000 records, `ReportBatchItemFailures` on): every record is validated and
//! admitted under the plausibility rules with its Kinesis arrival, and a record published over
//! MQTT only if its identity holds its racer (one claims read per batch, see
//! `alleycat_lambda::claims`); rejected records are counted under their rule and logged, never
//! retried: they would be rejected again. The readings are grouped by race ([`StandingsBatch`]), and each race's share is max-merged into its
//! stored standings with [`merge_into`]: one conditional write per race per batch, none when the
//! stored standings already hold everything. Races are written concurrently. A race whose write
//! still fails after the retry policy makes Lambda resume the batch from that race's earliest
//! record ([`BatchFailures`] keeps the earliest failure of the batch); the records after it are
//! delivered again, which the max-merge absorbs.
//!
//! **Bounded races.** A race admits at most `MAX_RACERS_PER_RACE` racers (2,000 by default), so a
//! flood of forged racer ids cannot grow one standings item past DynamoDB's 400 KB or its
//! realtime message past IoT Core's 128 KB: a racer beyond the cap is refused when the race is
//! merged (`Rejected.over_cap`, one per refused racer and batch); the race keeps working. A write
//! the store refuses as too large is counted (`FailedRaces`), logged once and not reported:
//! retrying it cannot succeed, and would hold up every other race of the shard.
//!
//! # Tumbling windows
//!
//! Off by default: a tumbling window is a setting of the event source, and [`handle`] serves both
//! event shapes. With a window, Lambda sends the window's properties and the state the previous
//! invocation returned, and the handler:
//!
//! - **aggregates** on every invocation but the last: folds the batch into the state's per-race
//!   standings ([`window`] describes the format) and returns them as the new state, writing
//!   nothing;
//! - **flushes** on the final invocation (`isFinalInvokeForWindow`), or when Lambda terminated the
//!   window early (`isWindowTerminatedEarly`: the state outgrew 1 MB and is dropped after this
//!   invocation): writes every race of state and batch, one conditional write each, and returns
//!   an empty state.
//!
//! **A failed write on the final invocation** reports the batch's *first* record, not the failed
//! race's earliest record: the race's standings carry records of earlier invocations that Lambda
//! has already checkpointed, and only a retry of the whole final invocation, with the window's
//! state, can write them again. A final invocation without records reports an empty
//! `itemIdentifier`, which Lambda treats as a failure of the whole batch. The response still
//! carries the full merged state. Lambda holds the shard until the final invocation succeeds (or
//! the records reach the mapping's retry or age limit and go to its on-failure destination).
//!
//! **State under retries.** Lambda checkpoints a window's state with the sequence number of the
//! invocation that returned it; an invocation that fails, times out or crashes checkpoints
//! neither, so its retry gets the same state and the same records again. Whichever state a retry
//! receives (the one sent before, or the one returned with a partial failure), the result is the
//! same: the state is a max-merge of standings, so a record folded in twice changes nothing and
//! no record is lost. Races a failed final invocation did write are written again as no-ops (one
//! read each, counted as `Unchanged`).
//!
//! # Metrics
//!
//! [`metric`] declares them, each with its meaning and unit; with `Rejected.<rule>` for each rule.

pub mod metric;
pub mod window;

use std::collections::{BTreeMap, HashMap};

use alleycat_domain::{MaxMerge, RaceKey, Rejection, Standings, StandingsBatch};
use alleycat_lambda::claims::admit_holders;
use alleycat_lambda::env::StreamConfig;
pub use alleycat_lambda::env::{MAX_RACERS_PER_RACE, RETRY_MAX_ATTEMPTS, WRITE_CONCURRENCY};
use alleycat_lambda::{BatchFailures, LenientKinesisEvent, Metrics, RejectionLog};
use alleycat_ports::{Claims, MergeOutcome, MergeStore, PortError, RetryError, merge_into_with};
use aws_lambda_events::event::kinesis::KinesisTimeWindowEventResponse;
use aws_lambda_events::event::streams::KinesisEventResponse;
use aws_lambda_events::time_window::TimeWindowProperties;
use futures::stream::{self, StreamExt};
use metric::METRICS;
use serde::Serialize;

/// The function's name: the `Function` dimension of its metrics.
pub const FUNCTION_NAME: &str = "race-aggregator";

/// The function's configuration: table, race clock, clock skew, retries, write concurrency and
/// the cap on racers per race, read from the environment by [`StreamConfig::from_lookup`]
/// (shared with the other stream function).
pub type Config = StreamConfig;

/// The handler's answer, in the shape the event asked for.
///
/// An untagged enum of the two genuine `aws_lambda_events` types: which shape Lambda expects is
/// decided by the event source's configuration, and the handler learns it only from the event.
/// Each variant serializes exactly as its inner type (`{"batchItemFailures":[…]}` or
/// `{"state":{…},"batchItemFailures":[…]}`), with no wrapper; callers (tests, the embedded stack)
/// still match on a typed value instead of probing JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Response {
    /// The answer to a plain Kinesis batch.
    Batch(KinesisEventResponse),
    /// The answer to a tumbling-window invocation: the new state and the failures.
    Window(KinesisTimeWindowEventResponse),
}

impl Response {
    /// The reported `itemIdentifier`s (at most one: Lambda resumes from the earliest anyway).
    /// An empty string asks Lambda to retry the whole batch.
    pub fn batch_item_failures(&self) -> Vec<String> {
        match self {
            Self::Batch(response) => response
                .batch_item_failures
                .iter()
                .map(|failure| failure.item_identifier.clone().unwrap_or_default())
                .collect(),
            Self::Window(response) => response
                .other
                .get("batchItemFailures")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .map(|failure| {
                    failure["itemIdentifier"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect(),
        }
    }

    /// The state for the window's next invocation; `None` for a plain batch.
    pub fn window_state(&self) -> Option<&HashMap<String, String>> {
        match self {
            Self::Batch(_) => None,
            Self::Window(response) => Some(&response.time_window_event_response_properties.state),
        }
    }
}

/// Handles one Kinesis event (plain or tumbling-window, see the crate docs): validates, admits,
/// groups by race, max-merges into `store`, and answers with the earliest record Lambda must
/// resume from.
///
/// Counts into `metrics`; the caller emits them once per invocation (the Lambda main as an EMF
/// line, the embedded stack as it likes).
#[tracing::instrument(name = "race_aggregator", skip_all, fields(records = event.len()))]
pub async fn handle<S>(
    event: LenientKinesisEvent,
    store: &S,
    config: &Config,
    metrics: &mut Metrics,
) -> Response
where
    S: MergeStore<RaceKey, Standings> + Claims,
{
    for name in METRICS {
        metrics.add(name, 0);
    }
    let mut rejections = RejectionLog::new();
    let readings = event.readings(config.plausibility(), metrics, &mut rejections);
    let (readings, undecided) =
        admit_holders(readings, store, &config.retry, metrics, &mut rejections).await;
    let mut batch = StandingsBatch::new();
    for record in &readings {
        batch.add(record.position, &record.reading);
    }
    // Records whose claims could not be read cannot be judged: Lambda must deliver them again.
    let mut failures = BatchFailures::new();
    if let Some(undecided) = &undecided {
        failures.fail(undecided.first.position, undecided.first.sequence_number);
    }
    let mut writes = Writes {
        store,
        config,
        metrics,
        rejections: &mut rejections,
    };
    let response = match &event.window {
        None => Response::Batch(aggregate_batch(&event, batch, &mut writes, failures).await),
        Some(window) => {
            Response::Window(aggregate_window(&event, window, batch, &mut writes, failures).await)
        }
    };
    rejections.count_into(metrics);
    rejections.finish();
    response
}

/// What writing races needs, borrowed for one invocation.
struct Writes<'a, S> {
    store: &'a S,
    config: &'a Config,
    metrics: &'a mut Metrics,
    rejections: &'a mut RejectionLog,
}

/// A plain batch: each race written once; a failed race reports its earliest record.
async fn aggregate_batch<S>(
    event: &LenientKinesisEvent,
    batch: StandingsBatch,
    writes: &mut Writes<'_, S>,
    mut failures: BatchFailures,
) -> KinesisEventResponse
where
    S: MergeStore<RaceKey, Standings>,
{
    let races = batch.into_races();
    writes.metrics.add(metric::RACES, races.len() as u64);
    let entries: Vec<(RaceKey, &Standings)> = races
        .iter()
        .map(|(race, delta)| (*race, &delta.standings))
        .collect();
    let results = write_races(writes.store, &entries, writes.config).await;
    for (index, written) in results {
        let (race, delta) = &races[index];
        if !writes.tally(*race, written) {
            // Every race's first position is a decoded record's, so its sequence number exists.
            let sequence_number = event
                .sequence_number_at(delta.first_position)
                .unwrap_or_default();
            failures.fail(delta.first_position, sequence_number);
        }
    }
    failures.into_kinesis_response()
}

/// A tumbling-window invocation: fold into the state, write only when the window ends.
async fn aggregate_window<S>(
    event: &LenientKinesisEvent,
    window: &TimeWindowProperties,
    batch: StandingsBatch,
    writes: &mut Writes<'_, S>,
    failures: BatchFailures,
) -> KinesisTimeWindowEventResponse
where
    S: MergeStore<RaceKey, Standings>,
{
    let (mut races, rejected) = window::decode_state(&window.state);
    writes.metrics.add(metric::STATE_REJECTED, rejected as u64);
    for (race, delta) in batch.into_races() {
        races.entry(race).or_default().merge(&delta.standings);
    }
    writes.metrics.add(metric::RACES, races.len() as u64);
    if !(window.is_final_invoke_for_window || window.is_window_terminated_early) {
        return failures.into_window_response(window::encode_state(&races));
    }
    let written = writes.flush(&races).await;
    if !written || !failures.is_empty() {
        // See the crate docs: only a retry of the whole final invocation can rewrite records of
        // earlier invocations, so report the first record (an empty id when there is none).
        let mut whole = BatchFailures::new();
        whole.fail(0, first_sequence_number(event).unwrap_or_default());
        return whole.into_window_response(window::encode_state(&races));
    }
    failures.into_window_response(HashMap::new())
}

impl<S: MergeStore<RaceKey, Standings>> Writes<'_, S> {
    /// Writes every race of a window; whether all writes succeeded.
    async fn flush(&mut self, races: &BTreeMap<RaceKey, Standings>) -> bool {
        let entries: Vec<(RaceKey, &Standings)> = races.iter().map(|(r, s)| (*r, s)).collect();
        let results = write_races(self.store, &entries, self.config).await;
        let mut all_written = true;
        for (index, written) in results {
            all_written &= self.tally(entries[index].0, written);
        }
        all_written
    }

    /// Counts one race's write; whether the batch may go on without it (written, or refused for
    /// good: see the crate docs on sizes).
    fn tally(&mut self, race: RaceKey, written: Written) -> bool {
        let Written { result, refused } = written;
        let cap = self.config.max_racers_per_race;
        for racer_id in refused {
            let rejection = Rejection::OverCap { racer_id, cap };
            self.rejections.reject_for(
                &format!("race {}#{}", race.class_id, race.race_id),
                &rejection,
            );
        }
        let metrics = &mut *self.metrics;
        match result {
            Ok(outcome) => {
                metrics.incr(if outcome.written {
                    metric::WRITES
                } else {
                    metric::UNCHANGED
                });
                metrics.add(metric::CONFLICTS, outcome.conflicts.into());
                metrics.add(metric::RETRIES, outcome.retries.into());
                true
            }
            Err(error) => {
                metrics.incr(metric::FAILED_RACES);
                metrics.add(metric::RETRIES, error.attempts.saturating_sub(1).into());
                let too_large = matches!(error.last, PortError::TooLarge(_));
                tracing::error!(
                    class_id = race.class_id,
                    race_id = race.race_id,
                    attempts = error.attempts,
                    error = %error.last,
                    reported = !too_large,
                    "standings write failed"
                );
                too_large
            }
        }
    }
}

/// One race's write: its result, and the racers the cap refused in the attempt that counted.
struct Written {
    result: Result<MergeOutcome, RetryError>,
    refused: Vec<u32>,
}

/// Max-merges each race's standings into the store, `write_concurrency` at a time; each result
/// comes back with the index of its race in `races`.
///
/// The futures are built in a plain loop, not by a closure inside the stream: a closure over
/// borrowed data held across an `await` makes the handler's future fail the `Send` check
/// (rust-lang/rust#102211), and the Lambda runtime needs it `Send`.
async fn write_races<S>(
    store: &S,
    races: &[(RaceKey, &Standings)],
    config: &Config,
) -> Vec<(usize, Written)>
where
    S: MergeStore<RaceKey, Standings>,
{
    let mut writes = Vec::with_capacity(races.len());
    for (index, &(race, standings)) in races.iter().enumerate() {
        writes.push(write_race(store, index, race, standings, config));
    }
    stream::iter(writes)
        .buffer_unordered(config.write_concurrency.max(1))
        .collect()
        .await
}

/// One race's merge under the cap, tagged with its index.
async fn write_race<S>(
    store: &S,
    index: usize,
    race: RaceKey,
    standings: &Standings,
    config: &Config,
) -> (usize, Written)
where
    S: MergeStore<RaceKey, Standings>,
{
    let cap = config.max_racers_per_race;
    let mut refused = Vec::new();
    let result = merge_into_with(store, &race, standings, &config.retry, |stored, delta| {
        let (changed, now_refused) = stored.merge_capped(delta, cap);
        refused = now_refused;
        changed
    })
    .await;
    (index, Written { result, refused })
}

/// The sequence number of the event's first record, decodable or not.
fn first_sequence_number(event: &LenientKinesisEvent) -> Option<&str> {
    event.sequence_number_at(0).or_else(|| {
        event
            .undecodable
            .iter()
            .find(|record| record.position == 0)
            .and_then(|record| record.sequence_number.as_deref())
    })
}

/// The race aggregator with its store bound: what the Lambda main serves and the embedded stack
/// calls.
pub struct RaceAggregator<S> {
    /// Where standings are max-merged, and claims read.
    pub store: S,
    /// Clock, skew, retries, concurrency, cap.
    pub config: Config,
}

impl<S: MergeStore<RaceKey, Standings> + Claims> alleycat_lambda::Function for RaceAggregator<S> {
    const NAME: &'static str = FUNCTION_NAME;
    type Event = LenientKinesisEvent;
    type Response = Response;
    type Error = std::convert::Infallible;

    async fn handle(
        &self,
        event: LenientKinesisEvent,
        metrics: &mut Metrics,
    ) -> Result<Response, Self::Error> {
        Ok(handle(event, &self.store, &self.config, metrics).await)
    }
}
