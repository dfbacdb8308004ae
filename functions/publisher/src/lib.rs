//! The publisher: every change of a race's standings on the table's DynamoDB stream is pushed, as
//! one realtime message, to the class's MQTT topic, so every bike of the class sees the race live.
//!
//! The stream (NEW_AND_OLD_IMAGES, ReportBatchItemFailures) carries every item of the single
//! table; only standings items (`pk = race#<classId>#<raceId>`, `sk = standings`) that were
//! inserted or modified are published. Everything else, and every REMOVE, is ignored and counted.
//!
//! The stream is ordered, so the batch is published in order and stops at the first record whose
//! publish still fails after its retries: that record is reported as the batch item failure and
//! Lambda redelivers the batch from it. Publishing is QoS 0 and each message carries the whole
//! standings, so a message sent twice on redelivery only repeats what bikes already show.

use alleycat_domain::message::MAX_CLASS_ID;
use alleycat_domain::views::{RealtimeKind, RealtimeMessage, subscribe_topic};
use alleycat_domain::{RaceKey, Standings};
use alleycat_lambda::env::{Env, EnvError};
use alleycat_lambda::{BatchFailures, Metrics};
use alleycat_ports::keys::{STANDINGS_SK, race_pk};
use alleycat_ports::{Publisher, RetryPolicy, retry};
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use serde::Deserialize;

/// The `Function` dimension of this function's metrics.
pub const FUNCTION_NAME: &str = "publisher";

/// Environment variable of the IoT Core data endpoint (`xxxx-ats.iot.<region>.amazonaws.com`).
pub const IOT_ENDPOINT: &str = "IOT_ENDPOINT";

/// Every counter this function emits, each declared on every invocation (zero included) so
/// dashboards and alarms see a continuous series rather than missing data.
pub const METRICS: [&str; 8] = [
    "RecordsIn",
    "BytesOut",
    "Published",
    "Ignored",
    "Malformed",
    "PublishFailed",
    "Deferred",
    "Retries",
];

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
}

impl Config {
    /// Reads the configuration through `lookup`, e.g.
    /// `Config::from_lookup(|name| std::env::var(name).ok())`.
    ///
    /// Variables: `IOT_ENDPOINT` (required). Retries use [`RetryPolicy::default`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let env = Env::new(lookup);
        Ok(Self {
            iot_endpoint: env.required(IOT_ENDPOINT)?,
            retry: RetryPolicy::default(),
        })
    }
}

/// Publishes the standings changes of one stream batch.
///
/// Never fails the invocation: a record that cannot be published is reported in
/// `batchItemFailures` (its `SequenceNumber`), so Lambda retries from it and not the whole batch.
///
/// Counts into `metrics` (see [`METRICS`]); the caller emits them once per invocation.
#[tracing::instrument(skip_all, fields(records = event.records.len()))]
pub async fn handle<P: Publisher>(
    event: Event,
    publisher: &P,
    config: &Config,
    metrics: &mut Metrics,
) -> DynamoDbEventResponse {
    for name in METRICS {
        metrics.add(name, 0);
    }
    metrics.add("RecordsIn", event.records.len() as u64);
    let mut failures = BatchFailures::new();
    for (position, record) in event.records.into_iter().enumerate() {
        if !failures.is_empty() {
            // Lambda resumes from the failed record, so everything after it comes again: sending
            // it now would only send it twice.
            metrics.incr("Deferred");
            continue;
        }
        let sequence_number = record.change.sequence_number.clone().unwrap_or_default();
        let message = match Change::of(record) {
            Change::Ignored => {
                metrics.incr("Ignored");
                continue;
            }
            Change::Malformed(reason) => {
                // Retrying cannot fix an item: count it, say where it is, move on.
                metrics.incr("Malformed");
                if metrics.get("Malformed") <= MAX_LOGGED_MALFORMED {
                    tracing::warn!(%sequence_number, %reason, "malformed standings image skipped");
                }
                continue;
            }
            Change::Standings(message) => message,
        };
        let topic = subscribe_topic(message.class_id);
        let payload = serde_json::to_vec(&message).expect("a realtime message always serializes");
        match retry(&config.retry, || publisher.publish(&topic, payload.clone())).await {
            Ok(((), retries)) => {
                metrics.add("Retries", u64::from(retries));
                metrics.incr("Published");
                metrics.add("BytesOut", payload.len() as u64);
            }
            Err(error) => {
                metrics.add("Retries", u64::from(error.attempts.saturating_sub(1)));
                metrics.incr("PublishFailed");
                tracing::error!(
                    %sequence_number,
                    %topic,
                    race_id = message.race_id,
                    %error,
                    "publish failed; reporting the record for redelivery"
                );
                // An empty identifier (a record without a sequence number, which Lambda never
                // sends) makes Lambda retry the whole batch: still correct, only slower.
                failures.fail(position, &sequence_number);
            }
        }
    }
    failures.into_dynamodb_response()
}

/// What one stream record asks of the publisher.
#[derive(Debug)]
enum Change {
    /// A standings item was written: publish its message.
    Standings(RealtimeMessage),
    /// Another item, or a removal: nothing to publish.
    Ignored,
    /// A standings item whose image cannot be read.
    Malformed(String),
}

/// The table's key attributes, present on every record whatever the stream view.
#[derive(Deserialize)]
struct ItemKey {
    pk: String,
    sk: String,
}

/// The attributes of a standings item the realtime message carries (others are ignored).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StandingsImage {
    class_id: u8,
    race_id: u64,
    results: Standings,
    updated_at: u64,
}

impl Change {
    fn of(record: EventRecord) -> Self {
        let Ok(key) = serde_dynamo::from_item::<_, ItemKey>(record.change.keys) else {
            return Self::Ignored;
        };
        if key.sk != STANDINGS_SK || !key.pk.starts_with("race#") {
            return Self::Ignored;
        }
        if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
            return Self::Ignored;
        }
        let image: StandingsImage = match serde_dynamo::from_item(record.change.new_image) {
            Ok(image) => image,
            Err(error) => return Self::Malformed(format!("{}: {error}", key.pk)),
        };
        let race = RaceKey {
            class_id: image.class_id,
            race_id: image.race_id,
        };
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
        Self::Standings(RealtimeMessage {
            msg: RealtimeKind::Results,
            class_id: race.class_id,
            race_id: race.race_id,
            ts: image.updated_at,
            results: image.results,
        })
    }
}

/// The publisher with its MQTT client bound: what the Lambda main serves and the embedded stack
/// calls.
pub struct StandingsPublisher<P> {
    /// Where realtime messages go.
    pub publisher: P,
    /// Endpoint and retries.
    pub config: Config,
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
        Ok(handle(event, &self.publisher, &self.config, metrics).await)
    }
}
