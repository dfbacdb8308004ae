//! The history merger end to end on in-memory buckets and table: what it merges, what it skips,
//! and how it survives conflicts, replays and failures.

use std::collections::BTreeMap;
use std::io::Write;

use alleycat_domain::views::history_key;
use alleycat_domain::{ClassHistory, Output, RaceClock, RaceKey, SecondSeries};
use alleycat_lambda::Metrics;
use alleycat_lambda::testing::{Message, bad_messages};
use alleycat_ports::memory::{MemoryObjects, MemoryTable};
use alleycat_ports::{BestsKey, HistoryObjects, PortError, RetryPolicy, TraceKey};
use aws_lambda_events::event::s3::S3Event;
use flate2::Compression;
use flate2::write::GzEncoder;
use history_merger::{Config, Error, Failed, METRICS, Target, handle};
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const FIXTURE: &[u8] = include_bytes!("../../../fixtures/events/s3-put.json");
const BUCKET: &str = "alleycat-delivery-123456789012";
const KEY: &str = "raw/2026/11/21/10/alleycat-1-2026-11-21-10-00-00-abc.gz";

/// One second of one racer's ride.
#[derive(Clone, Copy, Debug)]
struct Ride {
    racer: u32,
    class: u8,
    race: u64,
    second: u16,
    cadence: f64,
    resistance: f64,
}

impl Ride {
    /// The line as the transformer delivers it (the shared test message, so the wire format is
    /// spelled in one place).
    fn line(&self) -> Vec<u8> {
        Message::new(
            i64::from(self.class),
            i64::try_from(self.race).expect("race ids fit"),
            i64::from(self.racer),
        )
        .second(i64::from(self.second))
        .effort(self.cadence, self.resistance)
        .to_json()
    }

    fn output(&self) -> Output {
        Output::from_effort(self.cadence, self.resistance)
    }
}

fn gzip(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    for line in lines {
        encoder.write_all(line).unwrap();
        encoder.write_all(b"\n").unwrap();
    }
    encoder.finish().unwrap()
}

fn rides_object(rides: &[Ride]) -> Vec<u8> {
    gzip(&rides.iter().map(Ride::line).collect::<Vec<_>>())
}

/// An S3 event as S3 sends it, one record per (bucket, key as S3 encodes it, event name).
fn s3_event(records: &[(&str, &str, &str)]) -> Result<S3Event, serde_json::Error> {
    let records: Vec<_> = records
        .iter()
        .map(|(bucket, key, name)| {
            json!({
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-21T10:05:02.418Z",
                "eventName": name,
                "userIdentity": {"principalId": "AWS:AROAEXAMPLE:AWSFirehoseToS3"},
                "requestParameters": {"sourceIPAddress": "10.0.0.1"},
                "responseElements": {"x-amz-request-id": "1", "x-amz-id-2": "2"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "alleycat-raw-created",
                    "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A1"},
                               "arn": format!("arn:aws:s3:::{bucket}")},
                    "object": {"key": key, "size": 100, "eTag": "abc", "sequencer": "0A"}
                }
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records }))
}

fn put_event(keys: &[&str]) -> Result<S3Event, serde_json::Error> {
    let records: Vec<_> = keys
        .iter()
        .map(|key| (BUCKET, *key, "ObjectCreated:Put"))
        .collect();
    s3_event(&records)
}

/// The stores of one test: delivery bucket, history bucket and table.
struct Stores {
    delivery: MemoryObjects,
    histories: HistoryObjects<MemoryObjects>,
    table: MemoryTable,
    config: Config,
}

impl Stores {
    fn new(top_k: u32) -> Self {
        let config = Config {
            delivery_bucket: BUCKET.to_owned(),
            history_bucket: "alleycat-history".to_owned(),
            table_name: "alleycat-races".to_owned(),
            top_k,
            clock: RaceClock::default(),
            concurrency: 4,
            retry: RetryPolicy::immediate(5),
        };
        Self {
            delivery: MemoryObjects::new(),
            histories: config.histories(MemoryObjects::new()),
            table: MemoryTable::new(),
            config,
        }
    }

    fn history_bucket(&self) -> &MemoryObjects {
        self.histories.objects()
    }

    async fn merge(&self, event: S3Event) -> (Result<(), Error>, Metrics) {
        let mut metrics = Metrics::new("test");
        let result = handle(
            event,
            &self.delivery,
            &self.histories,
            &self.table,
            &self.config,
            &mut metrics,
        )
        .await;
        (result, metrics)
    }

    fn history(&self, class_id: u8) -> Option<ClassHistory> {
        let (bytes, content_type) = self.history_bucket().object(&history_key(class_id))?;
        assert_eq!(content_type, "application/gzip");
        Some(ClassHistory::decode_gzip(&bytes, class_id, 1000).expect("a valid history object"))
    }
}

/// Deterministic rides: several classes, races and racers, every racer riding some seconds twice
/// (a replayed or duplicated line) with different efforts, so maxima matter.
fn random_rides(seed: u64, count: usize) -> Vec<Ride> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..count)
        .map(|_| Ride {
            racer: rng.u32(0..15),
            class: rng.u8(2..=3),
            race: 5_400_172 + rng.u64(0..2),
            second: rng.u16(1..=12),
            cadence: f64::from(rng.u32(0..=2500)) / 10.0,
            resistance: f64::from(rng.u32(0..=100)),
        })
        .collect()
}

#[tokio::test]
async fn merged_views_match_a_brute_force_computation() -> TestResult {
    let stores = Stores::new(3);
    let rides = random_rides(7, 600);
    let (first, second) = rides.split_at(250);
    stores
        .delivery
        .insert("raw/2026/11/21/10/a.gz", rides_object(first));
    stores
        .delivery
        .insert("raw/2026/11/21/10/b.gz", rides_object(second));
    let (result, metrics) = stores
        .merge(put_event(&[
            "raw/2026/11/21/10/a.gz",
            "raw/2026/11/21/10/b.gz",
        ])?)
        .await;
    result?;
    assert_eq!(metrics.get("Records"), 600);
    assert_eq!(metrics.get("BadLines"), 0);

    // Brute force: every racer's maximum at every second, per class, per (racer, class) and per
    // (racer, race).
    let mut per_class: BTreeMap<(u8, u16), BTreeMap<u32, Output>> = BTreeMap::new();
    let mut bests: BTreeMap<BestsKey, BTreeMap<u16, Output>> = BTreeMap::new();
    let mut traces: BTreeMap<TraceKey, BTreeMap<u16, Output>> = BTreeMap::new();
    let keep_max = |slot: &mut Output, output: Output| *slot = (*slot).max(output);
    for ride in &rides {
        let output = ride.output();
        keep_max(
            per_class
                .entry((ride.class, ride.second))
                .or_default()
                .entry(ride.racer)
                .or_insert(output),
            output,
        );
        let bests_key = BestsKey {
            racer_id: ride.racer,
            class_id: ride.class,
        };
        keep_max(
            bests
                .entry(bests_key)
                .or_default()
                .entry(ride.second)
                .or_insert(output),
            output,
        );
        let trace_key = TraceKey {
            racer_id: ride.racer,
            race: RaceKey {
                class_id: ride.class,
                race_id: ride.race,
            },
        };
        keep_max(
            traces
                .entry(trace_key)
                .or_default()
                .entry(ride.second)
                .or_insert(output),
            output,
        );
    }

    for class_id in [2, 3] {
        let history = stores
            .history(class_id)
            .expect("a history per class ridden");
        assert_eq!(history.top_k(), 3);
        for second in 1..=12 {
            let mut expected: Vec<(u32, Output)> = per_class
                .get(&(class_id, second))
                .map(|racers| racers.iter().map(|(&r, &o)| (r, o)).collect())
                .unwrap_or_default();
            expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            expected.truncate(3);
            assert_eq!(
                history.ranked(second),
                expected,
                "class {class_id} second {second}"
            );
        }
    }
    assert!(stores.history(1).is_none());

    let to_series = |seconds: &BTreeMap<u16, Output>| -> SecondSeries {
        seconds.iter().map(|(&s, &o)| (s, o)).collect()
    };
    let expected_bests: BTreeMap<_, _> = bests.iter().map(|(k, v)| (*k, to_series(v))).collect();
    let expected_traces: BTreeMap<_, _> = traces.iter().map(|(k, v)| (*k, to_series(v))).collect();
    assert_eq!(stores.table.all_bests(), expected_bests);
    assert_eq!(stores.table.all_traces(), expected_traces);

    assert_eq!(metrics.get("HistoryWrites"), 2);
    assert_eq!(metrics.get("BestsWrites"), expected_bests.len() as u64);
    assert_eq!(metrics.get("TraceWrites"), expected_traces.len() as u64);
    Ok(())
}

#[tokio::test]
async fn replaying_an_object_changes_nothing_and_writes_nothing() -> TestResult {
    let stores = Stores::new(5);
    stores
        .delivery
        .insert(KEY, rides_object(&random_rides(11, 300)));
    let (result, first) = stores.merge(put_event(&[KEY])?).await;
    result?;
    let histories_before: Vec<_> = [2, 3]
        .map(|c| stores.history_bucket().object(&history_key(c)))
        .into();
    let bests_before = stores.table.all_bests();
    let traces_before = stores.table.all_traces();
    let puts_before = stores.history_bucket().faults.calls("put");
    let stores_before = stores.table.faults.calls("store");
    let documents =
        first.get("HistoryWrites") + first.get("BestsWrites") + first.get("TraceWrites");
    assert!(documents > 2);

    let (result, replay) = stores.merge(put_event(&[KEY])?).await;
    result?;
    let histories_after: Vec<_> = [2, 3]
        .map(|c| stores.history_bucket().object(&history_key(c)))
        .into();
    assert_eq!(histories_after, histories_before, "identical bytes");
    assert_eq!(stores.table.all_bests(), bests_before);
    assert_eq!(stores.table.all_traces(), traces_before);
    assert_eq!(
        stores.history_bucket().faults.calls("put"),
        puts_before,
        "no history write"
    );
    assert_eq!(
        stores.table.faults.calls("store"),
        stores_before,
        "no table write"
    );
    assert_eq!(replay.get("Unchanged"), documents);
    assert_eq!(
        replay.get("HistoryWrites") + replay.get("BestsWrites") + replay.get("TraceWrites"),
        0
    );
    Ok(())
}

#[tokio::test]
async fn fixture_object_is_merged_end_to_end() -> TestResult {
    let event: S3Event = serde_json::from_slice(FIXTURE)?;
    let stores = Stores::new(100);
    let ride = Ride {
        racer: 8,
        class: 3,
        race: 5_400_172,
        second: 13,
        cadence: 74.2,
        resistance: 74.0,
    };
    stores.delivery.insert(KEY, rides_object(&[ride]));
    handle(
        event,
        &stores.delivery,
        &stores.histories,
        &stores.table,
        &stores.config,
        &mut Metrics::new("history-merger"),
    )
    .await?;

    let history = stores.history(3).expect("class 3 history written");
    assert_eq!(history.ranked(13), vec![(8, ride.output())]);
    assert_eq!(history.updated_at(), 5_400_172 * 300_000 + 13_000);
    let bests = stores.table.all_bests();
    let series = &bests[&BestsKey {
        racer_id: 8,
        class_id: 3,
    }];
    assert_eq!(
        series.get(13),
        Some(Output::from_ten_thousandths(1_517_880))
    );
    assert_eq!(stores.table.all_traces().len(), 1);
    Ok(())
}

#[tokio::test]
async fn bad_lines_are_counted_and_the_good_ones_merged() -> TestResult {
    let stores = Stores::new(100);
    let good = Ride {
        racer: 1,
        class: 2,
        race: 5_400_172,
        second: 1,
        cadence: 80.0,
        resistance: 50.0,
    };
    // Every way a line can be invalid, between two good lines and an empty one.
    let bad = bad_messages();
    let mut lines = vec![good.line(), Vec::new()];
    lines.extend(bad.iter().map(|(_, line)| line.clone()));
    lines.push(Ride { second: 2, ..good }.line());
    stores.delivery.insert(KEY, gzip(&lines));
    let (result, metrics) = stores.merge(put_event(&[KEY])?).await;
    result?;
    let bad_count = bad.len() as u64;
    assert_eq!(
        metrics.get("Lines"),
        2 + bad_count,
        "the empty line is not a line"
    );
    assert_eq!(metrics.get("Records"), 2);
    assert_eq!(metrics.get("BadLines"), bad_count);
    assert_eq!(
        stores
            .table
            .all_traces()
            .values()
            .next()
            .map(|s| s.iter().count()),
        Some(2)
    );
    Ok(())
}

#[tokio::test]
async fn objects_outside_raw_and_processing_failed_objects_are_skipped() -> TestResult {
    let stores = Stores::new(100);
    let event = s3_event(&[
        (
            BUCKET,
            "processing-failed/2026/11/21/10/alleycat-1-x.gz",
            "ObjectCreated:Put",
        ),
        (
            BUCKET,
            "raw/processing-failed/2026/11/21/10/alleycat-1-x.gz",
            "ObjectCreated:Put",
        ),
        (BUCKET, "other/2026/x.gz", "ObjectCreated:Put"),
        ("someone-elses-bucket", KEY, "ObjectCreated:Put"),
        (BUCKET, KEY, "ObjectRemoved:Delete"),
    ])?;
    let (result, metrics) = stores.merge(event).await;
    result?;
    assert_eq!(metrics.get("ObjectsIn"), 5);
    assert_eq!(metrics.get("Skipped"), 5);
    assert_eq!(stores.delivery.faults.calls("get"), 0, "nothing was read");
    assert!(stores.history_bucket().keys().is_empty());
    Ok(())
}

#[tokio::test]
async fn form_encoded_keys_are_decoded_before_reading() -> TestResult {
    let stores = Stores::new(100);
    let ride = Ride {
        racer: 4,
        class: 1,
        race: 5_400_172,
        second: 3,
        cadence: 90.0,
        resistance: 60.0,
    };
    stores
        .delivery
        .insert("raw/2026/11/21/10/alleycat 1+2 é.gz", rides_object(&[ride]));
    // How S3 writes that key in an event: space as `+`, `+` and non-ASCII percent-encoded.
    let (result, metrics) = stores
        .merge(put_event(&["raw/2026/11/21/10/alleycat+1%2B2+%C3%A9.gz"])?)
        .await;
    result?;
    assert_eq!(metrics.get("Missing"), 0);
    assert_eq!(metrics.get("Records"), 1);
    assert!(stores.history(1).is_some());
    Ok(())
}

#[tokio::test]
async fn a_history_conflict_is_retried_and_nothing_is_lost() -> TestResult {
    let stores = Stores::new(100);
    // Another merger's history is already there: racer 999 at second 1.
    let mut existing = ClassHistory::new(3, 100);
    existing.record(1, 999, Output::from_ten_thousandths(2_000_000));
    stores
        .history_bucket()
        .insert(&history_key(3), existing.encode_gzip());
    stores
        .history_bucket()
        .faults
        .fail("put", PortError::Conflict, 1);
    let ride = Ride {
        racer: 8,
        class: 3,
        race: 5_400_172,
        second: 1,
        cadence: 74.2,
        resistance: 74.0,
    };
    stores.delivery.insert(KEY, rides_object(&[ride]));

    let (result, metrics) = stores.merge(put_event(&[KEY])?).await;
    result?;
    assert_eq!(metrics.get("Conflicts"), 1);
    assert_eq!(metrics.get("HistoryWrites"), 1);
    let history = stores.history(3).expect("history");
    assert_eq!(
        history.ranked(1),
        vec![
            (999, Output::from_ten_thousandths(2_000_000)),
            (8, ride.output())
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_persistent_store_failure_fails_the_event_naming_what_failed() -> TestResult {
    let stores = Stores::new(100);
    stores.table.faults.fail(
        "store:bests",
        PortError::Throttled("slow down".into()),
        1000,
    );
    let ride = Ride {
        racer: 8,
        class: 3,
        race: 5_400_172,
        second: 1,
        cadence: 74.2,
        resistance: 74.0,
    };
    stores.delivery.insert(KEY, rides_object(&[ride]));

    let (result, metrics) = stores.merge(put_event(&[KEY])?).await;
    let Err(Error::Incomplete { failures }) = result else {
        panic!("expected the event to fail, got {result:?}");
    };
    assert_eq!(failures.len(), 1);
    let bests = BestsKey {
        racer_id: 8,
        class_id: 3,
    };
    assert_eq!(failures[0].what, Failed::Merge(Target::Bests(bests)));
    assert_eq!(failures[0].error.attempts, 5);
    let message = Error::Incomplete { failures }.to_string();
    assert!(message.contains("bests of racer 8 in class 3"), "{message}");
    assert!(message.contains("throttled"), "{message}");
    assert_eq!(metrics.get("MergeFailed"), 1);
    let mut declared = METRICS.to_vec();
    declared.extend(alleycat_lambda::rejection_metrics());
    declared.sort_unstable();
    assert_eq!(
        metrics.counts().keys().copied().collect::<Vec<_>>(),
        declared,
        "every counter declared, and no other"
    );
    // The other documents were merged all the same; the retried event will find them done.
    assert!(stores.history(3).is_some());
    assert_eq!(stores.table.all_traces().len(), 1);
    assert!(stores.table.all_bests().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_failed_read_fails_the_event() -> TestResult {
    let stores = Stores::new(100);
    stores
        .delivery
        .faults
        .fail("get", PortError::Permanent("AccessDenied".into()), 1);
    let (result, metrics) = stores.merge(put_event(&[KEY])?).await;
    let Err(Error::Incomplete { failures }) = result else {
        panic!("expected the event to fail, got {result:?}");
    };
    assert_eq!(failures[0].what, Failed::Read(KEY.to_owned()));
    assert_eq!(metrics.get("ReadFailed"), 1);
    Ok(())
}

#[tokio::test]
async fn a_missing_object_is_counted_not_an_error() -> TestResult {
    let stores = Stores::new(100);
    let (result, metrics) = stores.merge(put_event(&[KEY])?).await;
    result?;
    assert_eq!(metrics.get("Missing"), 1);
    assert!(stores.history_bucket().keys().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_corrupt_object_keeps_the_lines_before_the_damage() -> TestResult {
    let stores = Stores::new(100);
    let ride = Ride {
        racer: 8,
        class: 3,
        race: 5_400_172,
        second: 1,
        cadence: 74.2,
        resistance: 74.0,
    };
    let mut bytes = rides_object(&[ride]);
    bytes.extend_from_slice(b"\x1f\x8b garbage that is no second gzip member");
    stores.delivery.insert(KEY, bytes);
    stores
        .delivery
        .insert("raw/not-gzip.gz", b"plain text".to_vec());
    let (result, metrics) = stores.merge(put_event(&[KEY, "raw/not-gzip.gz"])?).await;
    result?;
    assert_eq!(metrics.get("Unreadable"), 2);
    assert!(stores.history(3).is_some(), "the readable line was merged");
    Ok(())
}

#[test]
fn config_reads_its_variables_and_names_the_missing_ones() {
    let vars = [
        ("DELIVERY_BUCKET", "d"),
        ("HISTORY_BUCKET", "h"),
        ("TABLE_NAME", "t"),
        ("RACE_SECONDS", "20"),
    ];
    let lookup = |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    };
    let config = Config::from_lookup(lookup).expect("all required variables set");
    assert_eq!(config.top_k, 100);
    assert_eq!(config.concurrency, 32);
    assert_eq!(config.clock, RaceClock::new(20, 300));

    let error =
        Config::from_lookup(|name| (name != "HISTORY_BUCKET").then(|| "x".to_owned())).unwrap_err();
    assert!(error.to_string().contains("HISTORY_BUCKET"), "{error}");
    let error = Config::from_lookup(|name| {
        Some(if name == "HISTORY_TOP_K" { "many" } else { "x" }.to_owned())
    })
    .unwrap_err();
    assert!(error.to_string().contains("HISTORY_TOP_K"), "{error}");
}

#[test]
fn the_handler_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let stores = Stores::new(100);
    let event = S3Event::default();
    let mut metrics = Metrics::new("history-merger");
    let future = handle(
        event,
        &stores.delivery,
        &stores.histories,
        &stores.table,
        &stores.config,
        &mut metrics,
    );
    assert_send(&future);
}
