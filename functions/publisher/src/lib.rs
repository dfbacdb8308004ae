//! The publisher: the changes of a race's standings on the table's DynamoDB stream are pushed,
//! as one compact live message ([`RealtimeMessage`]), to the class's MQTT topic, so every bike of
//! the class sees the race live.
//!
//! The stream (NEW_AND_OLD_IMAGES, ReportBatchItemFailures) carries every item of the single
//! table; only standings items (`pk = race#<classId>#<raceId>`, `sk = standings`) that were
//! inserted or modified are published. Everything else, and every REMOVE, is ignored and counted.
//!
//! **At most one message per race per second.** IoT Core bills each message once per subscribed
//! bike, so the publish rate of a race is most of what a race costs. Two things bound it:
//!
//! - *coalescing*: each image carries the race's whole standings, so of a batch's changes to one
//!   race only the newest is published (the others are counted `Coalesced`);
//! - *pacing* ([`Pacer`]): a race is published again only [`Config::interval`] after its last
//!   publish; a newer change that comes sooner waits for that moment (counted `Paced`) and is
//!   then published, so the race's last standings always go out. A race's changes all lie on one
//!   stream shard (the shard is chosen by key), and Lambda runs one batch per shard at a time
//!   (`ParallelizationFactor: 1`), so one execution environment sees them in order and its
//!   pacer holds. A fresh environment (after a crash, or when the stream's shard rolls over,
//!   every few hours) starts without memory and may publish one message early once.
//!
//! While the wait runs, later changes gather on the stream and the next batch coalesces them:
//! the rate adapts without dropping the newest state. A change waits at most one interval.
//!
//! The stream is ordered, so races are published in the order of their newest change, and the
//! batch stops at the first race whose publish still fails after its retries: that race's newest
//! record is reported as the batch item failure, and Lambda redelivers the batch from it (every
//! unpublished race's newest change lies at or after it). Publishing is QoS 0 and each message
//! carries the whole state, so a message sent twice on redelivery only repeats itself.

pub mod metric;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use alleycat_domain::message::MAX_CLASS_ID;
use alleycat_domain::views::{RealtimeMessage, subscribe_topic};
use alleycat_domain::{RaceKey, Standings};
use alleycat_lambda::env::{Env, EnvError};
use alleycat_lambda::{BatchFailures, Metrics};
use alleycat_ports::keys::{STANDINGS_SK, race_pk};
use alleycat_ports::schema::{ItemKey, StandingsItem};
use alleycat_ports::{Publisher, RetryPolicy, retry};
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
pub use metric::METRICS;
use tokio::time::Instant;

/// The `Function` dimension of this function's metrics.
pub const FUNCTION_NAME: &str = "publisher";

/// Environment variable of the IoT Core data endpoint (`xxxx-ats.iot.<region>.amazonaws.com`).
pub const IOT_ENDPOINT: &str = "IOT_ENDPOINT";

/// Environment variable of the least time between two messages of one race, in milliseconds.
pub const PUBLISH_INTERVAL_MS: &str = "PUBLISH_INTERVAL_MS";

/// The default of [`PUBLISH_INTERVAL_MS`], in milliseconds: a bike shows a race second by second.
pub const DEFAULT_PUBLISH_INTERVAL_MS: u64 = 1000;

/// How many malformed images an invocation logs one by one; the rest are only counted.
const MAX_LOGGED_MALFORMED: u64 = 20;

/// Why the publisher cannot start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Its configuration is missing or invalid (the message names the variable).
    #[error(transparent)]
    Config(#[from] EnvError),
}

/// What the publisher needs to run, read once at init.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The IoT Core data endpoint the main's publisher adapter connects to.
    pub iot_endpoint: String,
    /// How hard to retry a throttled or failed publish before reporting the record.
    pub retry: RetryPolicy,
    /// The least time between two messages of one race.
    pub interval: Duration,
}

impl Config {
    /// Reads the configuration through `lookup`, e.g.
    /// `Config::from_lookup(|name| std::env::var(name).ok())`.
    ///
    /// Variables: `IOT_ENDPOINT` (required), `PUBLISH_INTERVAL_MS` (1,000; 0 to 60,000).
    /// Retries use [`RetryPolicy::default`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let env = Env::new(lookup);
        Ok(Self {
            iot_endpoint: env.required(IOT_ENDPOINT)?,
            retry: RetryPolicy::default(),
            interval: Duration::from_millis(env.number_or(
                PUBLISH_INTERVAL_MS,
                DEFAULT_PUBLISH_INTERVAL_MS,
                0..=60_000,
            )?),
        })
    }
}

/// When each race was last published, so the next message of a race waits for its interval.
///
/// Kept for the life of the execution environment (it lives in [`StandingsPublisher`]); an
/// entry older than the interval constrains nothing and is dropped.
#[derive(Debug, Default)]
pub struct Pacer {
    last: Mutex<HashMap<RaceKey, Instant>>,
}

impl Pacer {
    /// A pacer that remembers nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// When `race` may be published next, if that is later than `now`.
    fn not_before(&self, race: RaceKey, interval: Duration, now: Instant) -> Option<Instant> {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.get(&race)
            .map(|at| *at + interval)
            .filter(|at| *at > now)
    }

    /// Notes that `race` is being published now. The interval runs from the start of a publish,
    /// so that a race whose standings change every second is published every second: counted
    /// from the end, each publish's own time would add up to fewer messages than seconds.
    fn sending(&self, race: RaceKey, interval: Duration) {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.retain(|_, at| *at + interval > now);
        last.insert(race, now);
    }
}

/// The newest standings change of one race in a batch.
struct Pending {
    /// Position of its record in the batch.
    position: usize,
    sequence_number: String,
    race: RaceKey,
    /// The standings' `updatedAt`.
    ts: u64,
    standings: Standings,
}

/// Publishes the standings changes of one stream batch: the newest change of each race, no
/// sooner than `config.interval` after the race's last message (waiting for it if need be).
///
/// Never fails the invocation: a race that cannot be published is reported in
/// `batchItemFailures` (the `SequenceNumber` of its newest change), so Lambda retries from it and
/// not the whole batch.
///
/// Counts into `metrics` (see [`METRICS`]); the caller emits them once per invocation.
#[tracing::instrument(skip_all, fields(records = event.records.len()))]
pub async fn handle<P: Publisher>(
    event: Event,
    publisher: &P,
    pacer: &Pacer,
    config: &Config,
    metrics: &mut Metrics,
) -> DynamoDbEventResponse {
    for name in METRICS {
        metrics.add(name, 0);
    }
    metrics.add(metric::RECORDS_IN, event.records.len() as u64);
    // The newest change per race, in the order of those newest changes.
    let mut pending: Vec<Pending> = Vec::new();
    for (position, record) in event.records.into_iter().enumerate() {
        let sequence_number = record.change.sequence_number.clone().unwrap_or_default();
        let (race, ts, standings) = match Change::of(record) {
            Change::Ignored => {
                metrics.incr(metric::IGNORED);
                continue;
            }
            Change::Malformed(reason) => {
                // Retrying cannot fix an item: count it, say where it is, move on.
                metrics.incr(metric::MALFORMED);
                if metrics.get(metric::MALFORMED.name()) <= MAX_LOGGED_MALFORMED {
                    tracing::warn!(%sequence_number, %reason, "malformed standings image skipped");
                }
                continue;
            }
            Change::Standings {
                race,
                ts,
                standings,
            } => (race, ts, standings),
        };
        if let Some(older) = pending.iter().position(|p| p.race == race) {
            pending.remove(older);
            metrics.incr(metric::COALESCED);
        }
        pending.push(Pending {
            position,
            sequence_number,
            race,
            ts,
            standings,
        });
    }
    let mut failures = BatchFailures::new();
    for race in pending {
        if !failures.is_empty() {
            // Lambda resumes from the failed record, and this race's newest change lies after
            // it: sending it now would only send it twice.
            metrics.incr(metric::DEFERRED);
            continue;
        }
        let key = race.race;
        if let Some(at) = pacer.not_before(key, config.interval, Instant::now()) {
            metrics.incr(metric::PACED);
            tokio::time::sleep_until(at).await;
        }
        let topic = subscribe_topic(key.class_id);
        let payload = RealtimeMessage::of(key, race.ts, &race.standings).to_json();
        pacer.sending(key, config.interval);
        match retry(&config.retry, || publisher.publish(&topic, payload.clone())).await {
            Ok(((), retries)) => {
                metrics.add(metric::RETRIES, u64::from(retries));
                metrics.incr(metric::PUBLISHED);
                metrics.add(metric::BYTES_OUT, payload.len() as u64);
            }
            Err(error) => {
                metrics.add(metric::RETRIES, u64::from(error.attempts.saturating_sub(1)));
                metrics.incr(metric::PUBLISH_FAILED);
                tracing::error!(
                    sequence_number = %race.sequence_number,
                    %topic,
                    race_id = key.race_id,
                    %error,
                    "publish failed; reporting the record for redelivery"
                );
                // An empty identifier (a record without a sequence number, which Lambda never
                // sends) makes Lambda retry the whole batch: still correct, only slower.
                failures.fail(race.position, &race.sequence_number);
            }
        }
    }
    failures.into_dynamodb_response()
}

/// What one stream record asks of the publisher.
#[derive(Debug)]
enum Change {
    /// A standings item was written: publish its message.
    Standings {
        race: RaceKey,
        /// The standings' `updatedAt`.
        ts: u64,
        standings: Standings,
    },
    /// Another item, or a removal: nothing to publish.
    Ignored,
    /// A standings item whose image cannot be read.
    Malformed(String),
}

impl Change {
    fn of(record: EventRecord) -> Self {
        // The key attributes are on every record whatever the stream view.
        let Ok(key) = serde_dynamo::from_item::<_, ItemKey>(record.change.keys) else {
            return Self::Ignored;
        };
        if key.sk != STANDINGS_SK || !key.pk.starts_with("race#") {
            return Self::Ignored;
        }
        if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
            return Self::Ignored;
        }
        let image: StandingsItem = match serde_dynamo::from_item(record.change.new_image) {
            Ok(image) => image,
            Err(error) => return Self::Malformed(format!("{}: {error}", key.pk)),
        };
        let race = image.race();
        if !(1..=MAX_CLASS_ID).contains(&i64::from(race.class_id)) {
            return Self::Malformed(format!(
                "{}: classId {} is not a class",
                key.pk, race.class_id
            ));
        }
        let expected_pk = race_pk(race);
        if key.pk != expected_pk {
            return Self::Malformed(format!("{}: classId and raceId say {expected_pk}", key.pk));
        }
        Self::Standings {
            race,
            ts: image.updated_at,
            standings: image.results,
        }
    }
}

/// The publisher with its MQTT client bound: what the Lambda main serves and the embedded stack
/// calls. It lives as long as the execution environment, and so does its [`Pacer`].
pub struct StandingsPublisher<P> {
    /// Where realtime messages go.
    pub publisher: P,
    /// Endpoint, retries, interval.
    pub config: Config,
    /// When each race was last published.
    pub pacer: Pacer,
}

impl<P> StandingsPublisher<P> {
    /// The publisher on `publisher`, with a fresh pacer.
    pub fn new(publisher: P, config: Config) -> Self {
        Self {
            publisher,
            config,
            pacer: Pacer::new(),
        }
    }
}

impl<P: Publisher> alleycat_lambda::Function for StandingsPublisher<P> {
    const NAME: &'static str = FUNCTION_NAME;
    type Event = Event;
    type Response = DynamoDbEventResponse;
    type Error = std::convert::Infallible;

    async fn handle(
        &self,
        event: Event,
        metrics: &mut Metrics,
    ) -> Result<DynamoDbEventResponse, Self::Error> {
        Ok(handle(event, &self.publisher, &self.pacer, &self.config, metrics).await)
    }
}
