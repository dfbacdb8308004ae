//! Counting, as the stack works, what the same work would be billed on AWS: every operation the
//! embedded stack makes stands for one the deployment would make (a `PutRecords` entry, a
//! DynamoDB `PutItem` with its index copies, an S3 `PUT`, a Lambda invocation…), so the meter
//! counts it in that service's billing units ([`alleycat_cost::units`]) where it happens.
//!
//! Two quantities only a deployment has are modeled, and named so in the bill: the deliveries of
//! each standings message to the bikes subscribed to its class (one per racer in the race), and
//! the bikes' connection minutes (a bike sends one message a second while connected, so 60
//! stream records are one connection-minute).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use alleycat_cost::units;
use alleycat_cost::{LambdaUsage, Usage};
use alleycat_ports::{PortError, Publisher};

/// Configured memory of each function, as `template.yaml` sets it (`Globals` 256 MB; the
/// history merger 1,024 MB): Lambda bills duration times memory.
pub fn memory_mb(function: &str) -> u64 {
    match function {
        "history-merger" => 1024,
        _ => 256,
    }
}

/// The fields of a live message the meter reads ([`alleycat_domain::live::RealtimeMessage`]).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LiveHeader {
    class_id: u8,
    race_id: u64,
    riders: u32,
}

/// The live messages of one race as the publisher handed them to the broker: how many, the
/// largest, and the shortest time between two of them (what the pacing promises to keep at a
/// second or more).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveTally {
    /// Messages published.
    pub messages: u64,
    /// The largest payload, bytes.
    pub largest_bytes: usize,
    /// The shortest time between two consecutive messages (none with fewer than two).
    pub shortest_gap: Option<Duration>,
    /// When the last one was published.
    pub last: Instant,
}

/// What a DynamoDB write is billed by: the sizes of the items it touched, as
/// [`alleycat_cost::units::item_size`] counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DynamoDbWrite {
    /// The item written; 0 for a delete, or a write its condition refused.
    pub written: u64,
    /// The item replaced or deleted, or the one that refused the condition (0: none).
    pub replaced: u64,
    /// Secondary indexes listing the written item: each holds a copy, written again.
    pub indexes: u64,
}

impl DynamoDbWrite {
    /// Write request units: the larger of the two items in 1 KB units, once for the table and
    /// once more for each index copy of the written item. A refused conditional write still
    /// takes the stored item's.
    pub fn units(self) -> u64 {
        units::dynamodb_write_units(self.written.max(self.replaced))
            + self.indexes * units::dynamodb_write_units(self.written)
    }
}

/// The running counts.
#[derive(Debug)]
pub struct Meter {
    started: Instant,
    kinesis_records: AtomicU64,
    kinesis_put_units: AtomicU64,
    dynamodb_write_units: AtomicU64,
    dynamodb_read_half_units: AtomicU64,
    firehose_records: AtomicU64,
    firehose_billed_bytes: AtomicU64,
    s3_puts: AtomicU64,
    s3_gets: AtomicU64,
    iot_messages_in: AtomicU64,
    iot_published: AtomicU64,
    iot_deliveries: AtomicU64,
    lambda: Mutex<BTreeMap<String, LambdaUsage>>,
    live: Mutex<BTreeMap<(u8, u64), LiveTally>>,
}

impl Default for Meter {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            kinesis_records: AtomicU64::new(0),
            kinesis_put_units: AtomicU64::new(0),
            dynamodb_write_units: AtomicU64::new(0),
            dynamodb_read_half_units: AtomicU64::new(0),
            firehose_records: AtomicU64::new(0),
            firehose_billed_bytes: AtomicU64::new(0),
            s3_puts: AtomicU64::new(0),
            s3_gets: AtomicU64::new(0),
            iot_messages_in: AtomicU64::new(0),
            iot_published: AtomicU64::new(0),
            iot_deliveries: AtomicU64::new(0),
            lambda: Mutex::new(BTreeMap::new()),
            live: Mutex::new(BTreeMap::new()),
        }
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Meter {
    /// A record of `bytes` put into the stream.
    pub fn kinesis_put(&self, bytes: usize) {
        add(&self.kinesis_records, 1);
        add(
            &self.kinesis_put_units,
            units::kinesis_put_units(bytes as u64),
        );
    }

    /// A DynamoDB write, in write request units ([`DynamoDbWrite::units`]).
    pub fn dynamodb_write(&self, write: DynamoDbWrite) {
        add(&self.dynamodb_write_units, write.units());
    }

    /// A DynamoDB read returning `bytes` of items.
    pub fn dynamodb_read(&self, bytes: u64, consistent: bool) {
        add(
            &self.dynamodb_read_half_units,
            units::dynamodb_read_half_units(bytes, consistent),
        );
    }

    /// A record of `bytes` ingested by Firehose.
    pub fn firehose_record(&self, bytes: usize) {
        add(&self.firehose_records, 1);
        add(
            &self.firehose_billed_bytes,
            units::firehose_billed_bytes(bytes as u64),
        );
    }

    /// An S3 PUT request (refused conditional ones too: S3 bills them).
    pub fn s3_put(&self) {
        add(&self.s3_puts, 1);
    }

    /// An S3 GET request.
    pub fn s3_get(&self) {
        add(&self.s3_gets, 1);
    }

    /// A bike's message of `bytes` received on `alleycat-publish` (and the rule it triggers).
    pub fn iot_in(&self, bytes: usize) {
        add(&self.iot_messages_in, units::iot_messages(bytes as u64));
    }

    /// A standings message the publisher published; its modeled deliveries are one per racer of
    /// the race (every bike of the class subscribes to the class topic), and it is noted in the
    /// race's [`LiveTally`].
    pub fn iot_publish(&self, payload: &[u8]) {
        let messages = units::iot_messages(payload.len() as u64);
        add(&self.iot_published, messages);
        let live = serde_json::from_slice::<LiveHeader>(payload).ok();
        let racers = live.as_ref().map_or(0, |live| u64::from(live.riders));
        add(&self.iot_deliveries, racers * messages);
        if let Some(live) = live {
            let now = Instant::now();
            let mut races = self.live.lock().unwrap_or_else(PoisonError::into_inner);
            let tally = races
                .entry((live.class_id, live.race_id))
                .or_insert(LiveTally {
                    messages: 0,
                    largest_bytes: 0,
                    shortest_gap: None,
                    last: now,
                });
            if tally.messages > 0 {
                let gap = now - tally.last;
                tally.shortest_gap = Some(tally.shortest_gap.map_or(gap, |g| g.min(gap)));
            }
            tally.messages += 1;
            tally.largest_bytes = tally.largest_bytes.max(payload.len());
            tally.last = now;
        }
    }

    /// What was published about each race, by `(classId, raceId)`.
    pub fn live(&self) -> BTreeMap<(u8, u64), LiveTally> {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// An invocation of `function` that took `elapsed` (billed rounded up to the millisecond).
    pub fn lambda(&self, function: &str, elapsed: Duration) {
        let billed_ms = u64::try_from(elapsed.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
        let mut lambda = self.lambda.lock().unwrap_or_else(PoisonError::into_inner);
        let usage = lambda
            .entry(function.to_owned())
            .or_insert_with(|| LambdaUsage {
                memory_mb: memory_mb(function),
                ..LambdaUsage::default()
            });
        usage.invocations += 1;
        usage.billed_ms += billed_ms.max(1);
    }

    /// What the stack has used since it started, with `shards` shards and `stored_bytes` in its
    /// buckets.
    #[allow(clippy::cast_precision_loss)] // Record counts stay far below 2^52.
    pub fn usage(&self, shards: u32, stored_bytes: u64) -> Usage {
        let lambda = self
            .lambda
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let messages_in = get(&self.iot_messages_in);
        Usage {
            seconds: self.started.elapsed().as_secs_f64(),
            kinesis_shards: shards,
            kinesis_records: get(&self.kinesis_records),
            kinesis_put_units: get(&self.kinesis_put_units),
            api_requests: lambda.get("api").map_or(0, |api| api.invocations),
            lambda,
            dynamodb_write_units: get(&self.dynamodb_write_units),
            dynamodb_read_half_units: get(&self.dynamodb_read_half_units),
            firehose_records: get(&self.firehose_records),
            firehose_billed_bytes: get(&self.firehose_billed_bytes),
            s3_puts: get(&self.s3_puts),
            s3_gets: get(&self.s3_gets),
            s3_stored_bytes: stored_bytes,
            iot_messages_in: messages_in,
            iot_rules_triggered: messages_in,
            iot_rule_actions: messages_in,
            iot_messages_published: get(&self.iot_published),
            iot_deliveries_modeled: get(&self.iot_deliveries),
            iot_connection_minutes_modeled: get(&self.kinesis_records) as f64 / 60.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_are_the_templates() {
        let template = include_str!("../../../template.yaml");
        assert!(template.contains("Globals:"), "template.yaml has Globals");
        let globals = &template[template.find("Globals:").unwrap()..];
        assert!(
            globals[..globals.find("Resources:").unwrap()].contains("MemorySize: 256"),
            "Globals set 256 MB"
        );
        // The history merger's resource: its lines up to the next resource (two-space indent).
        let merger: Vec<&str> = template
            .lines()
            .skip_while(|line| *line != "  HistoryMergerFunction:")
            .skip(1)
            .take_while(|line| !line.starts_with("  ") || line.starts_with("   "))
            .collect();
        assert!(
            merger.iter().any(|line| line.trim() == "MemorySize: 1024"),
            "{merger:?}"
        );
        assert_eq!(memory_mb("history-merger"), 1024);
        assert_eq!(memory_mb("race-aggregator"), 256);
    }

    #[test]
    fn a_write_bills_the_larger_item_and_each_index_copy() {
        let meter = Meter::default();
        // A 1.5 KB item over a 2.5 KB one, listed by one index: 3 units, then 2 for the copy.
        meter.dynamodb_write(DynamoDbWrite {
            written: 1536,
            replaced: 2560,
            indexes: 1,
        });
        // Refused by a 100-byte item, and a delete of one: 1 unit each.
        for _ in 0..2 {
            meter.dynamodb_write(DynamoDbWrite {
                replaced: 100,
                ..DynamoDbWrite::default()
            });
        }
        assert_eq!(meter.usage(1, 0).dynamodb_write_units, 3 + 2 + 1 + 1);
    }

    #[test]
    fn operations_count_in_billing_units() {
        let meter = Meter::default();
        meter.kinesis_put(170);
        meter.kinesis_put(30 * 1024);
        meter.firehose_record(170);
        meter.iot_in(200);
        meter.iot_publish(br#"{"msg":"standings","classId":2,"raceId":9,"riders":3}"#);
        meter.iot_publish(br#"{"msg":"standings","classId":2,"raceId":9,"riders":4}"#);
        meter.lambda("history-merger", Duration::from_micros(1500));
        meter.lambda("history-merger", Duration::from_micros(10));
        meter.dynamodb_read(5000, true);
        meter.dynamodb_read(100, false);
        let usage = meter.usage(2, 7);
        assert_eq!((usage.kinesis_records, usage.kinesis_put_units), (2, 3));
        assert_eq!(usage.firehose_billed_bytes, 5120);
        assert_eq!((usage.iot_messages_in, usage.iot_rules_triggered), (1, 1));
        assert_eq!(
            (usage.iot_messages_published, usage.iot_deliveries_modeled),
            (2, 3 + 4)
        );
        let live = meter.live()[&(2, 9)];
        assert_eq!((live.messages, live.largest_bytes), (2, 53));
        assert!(live.shortest_gap.is_some());
        let merger = &usage.lambda["history-merger"];
        assert_eq!(
            (merger.invocations, merger.billed_ms, merger.memory_mb),
            (2, 3, 1024)
        );
        assert_eq!(usage.dynamodb_read_half_units, 4 + 1);
        assert!((usage.iot_connection_minutes_modeled - 2.0 / 60.0).abs() < 1e-12);
        assert_eq!((usage.kinesis_shards, usage.s3_stored_bytes), (2, 7));
    }
}

/// A [`Publisher`] counting what it publishes as IoT Core messages, with their modeled
/// deliveries ([`Meter::iot_publish`]).
#[derive(Debug)]
pub struct MeteredPublisher<P> {
    /// The publisher.
    pub inner: P,
    /// The meter.
    pub meter: std::sync::Arc<Meter>,
}

impl<P: Publisher + Send> Publisher for MeteredPublisher<P> {
    async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), PortError> {
        self.meter.iot_publish(&payload);
        self.inner.publish(topic, payload).await
    }
}
