//! The publisher end to end on in-memory ports: which stream records become realtime messages,
//! how a batch's changes of one race coalesce, how a race's messages are paced, and how failures
//! become partial batch responses.

use std::time::Duration;

use alleycat_domain::Output;
use alleycat_domain::live::MAX_LIVE_BYTES;
use alleycat_domain::views::{RealtimeKind, RealtimeMessage};
use alleycat_lambda::{Metric, Metrics};
use alleycat_ports::memory::MemoryPublisher;
use alleycat_ports::{PortError, Publisher, RetryPolicy};
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use publisher::{Config, IOT_ENDPOINT, METRICS, Pacer, handle};
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const FIXTURE: &[u8] = include_bytes!("../../../fixtures/events/dynamodb-stream.json");

fn config() -> Config {
    Config {
        iot_endpoint: "example-ats.iot.us-east-1.amazonaws.com".to_owned(),
        retry: RetryPolicy::immediate(4),
        interval: Duration::from_secs(1),
    }
}

/// One stream record as DynamoDB Streams delivers it to Lambda.
fn record(sequence: &str, event_name: &str, keys: &Value, new_image: Option<Value>) -> Value {
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": 1_620_051_629,
        "Keys": keys,
        "SequenceNumber": sequence,
        "SizeBytes": 100,
        "StreamViewType": "NEW_AND_OLD_IMAGES"
    });
    if let Some(image) = new_image {
        dynamodb["NewImage"] = image;
    }
    json!({
        "eventID": format!("event-{sequence}"),
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": dynamodb,
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/alleycat-races/stream/2021-05-01T09:58:12.345"
    })
}

fn standings_keys(class_id: u8, race_id: u64) -> Value {
    json!({"pk": {"S": format!("race#{class_id}#{race_id}")}, "sk": {"S": "standings"}})
}

fn standings_image(class_id: u8, race_id: u64, results: &[(u32, &str)], updated_at: u64) -> Value {
    let results: serde_json::Map<String, Value> = results
        .iter()
        .map(|(racer, output)| (racer.to_string(), json!({"N": output})))
        .collect();
    json!({
        "pk": {"S": format!("race#{class_id}#{race_id}")},
        "sk": {"S": "standings"},
        "classId": {"N": class_id.to_string()},
        "raceId": {"N": race_id.to_string()},
        "results": {"M": results},
        "updatedAt": {"N": updated_at.to_string()},
        "version": {"N": "1"},
        "gsi1pk": {"S": format!("class#{class_id}#races")},
        "gsi1sk": {"N": race_id.to_string()}
    })
}

fn standings(sequence: &str, class_id: u8, race_id: u64) -> Value {
    record(
        sequence,
        "MODIFY",
        &standings_keys(class_id, race_id),
        Some(standings_image(
            class_id,
            race_id,
            &[(8, "151.788")],
            1_620_051_628_707,
        )),
    )
}

fn event(records: &[Value]) -> Result<Event, serde_json::Error> {
    serde_json::from_value(json!({ "Records": records }))
}

fn failed_ids(response: &DynamoDbEventResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .filter_map(|f| f.item_identifier.as_deref())
        .collect()
}

fn sent_messages(
    publisher: &MemoryPublisher,
) -> Result<Vec<(String, RealtimeMessage)>, serde_json::Error> {
    publisher
        .sent()
        .into_iter()
        .map(|(topic, payload)| Ok((topic, serde_json::from_slice(&payload)?)))
        .collect()
}

async fn run(event: Event, publisher: &MemoryPublisher) -> (DynamoDbEventResponse, Metrics) {
    let mut metrics = Metrics::new("test");
    let response = handle(event, publisher, &Pacer::new(), &config(), &mut metrics).await;
    (response, metrics)
}

#[tokio::test]
async fn fixture_publishes_the_newest_standings_of_the_race_and_ignores_the_rest() -> TestResult {
    let event: Event = serde_json::from_slice(FIXTURE)?;
    let publisher = MemoryPublisher::new();
    let mut metrics = Metrics::new("publisher");
    let response = handle(event, &publisher, &Pacer::new(), &config(), &mut metrics).await;
    assert!(response.batch_item_failures.is_empty());

    // The INSERT and the MODIFY of one race's standings: the MODIFY holds all of the INSERT.
    let sent = sent_messages(&publisher)?;
    assert_eq!(sent.len(), 1, "one message per race per batch");
    assert_eq!(metrics.get("Coalesced"), 1);
    let (topic, modify) = &sent[0];
    assert_eq!(topic, "alleycat-subscribe/class-3");
    assert_eq!(modify.msg, RealtimeKind::Standings);
    assert_eq!(
        (modify.class_id, modify.race_id, modify.ts, modify.riders),
        (3, 5_400_172, 1_620_051_629_712, 3)
    );
    assert_eq!(modify.top[0], (8, Output::from_ten_thousandths(1_531_204)));

    // The wire shape: the kind, the race, the top racers and every best counted.
    let raw: Value = serde_json::from_slice(&publisher.sent()[0].1)?;
    assert_eq!(
        raw,
        json!({"msg": "standings", "classId": 3, "raceId": 5_400_172, "ts": 1_620_051_629_712_u64,
               "riders": 3, "top": [[8, 153.1204], [12, 140.25], [31, 98.5]],
               "bests": raw["bests"].clone()})
    );
    assert_eq!(raw["bests"]["step"], 1);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_race_is_published_at_most_once_an_interval_and_its_last_change_still_goes_out()
-> TestResult {
    let publisher = MemoryPublisher::new();
    let pacer = Pacer::new();
    let config = config();
    let mut metrics = Metrics::new("test");
    let start = tokio::time::Instant::now();
    let mut sent_at = Vec::new();
    // Three batches in quick succession, each changing race 10; one also changes race 11.
    for (i, batch) in [
        vec![standings("100", 3, 10)],
        vec![standings("101", 3, 10), standings("102", 3, 11)],
        vec![standings("103", 3, 10)],
    ]
    .into_iter()
    .enumerate()
    {
        tokio::time::advance(Duration::from_millis(100)).await;
        let response = handle(event(&batch)?, &publisher, &pacer, &config, &mut metrics).await;
        assert!(response.batch_item_failures.is_empty(), "batch {i}");
        sent_at.push(start.elapsed());
    }
    let sent = sent_messages(&publisher)?;
    let races: Vec<u64> = sent.iter().map(|(_, m)| m.race_id).collect();
    assert_eq!(races, [10, 10, 11, 10], "nothing dropped");
    assert_eq!(
        metrics.get("Paced"),
        2,
        "the second and third messages of race 10 waited"
    );
    // Race 10's messages left at 0.1 s, 1.1 s and 2.1 s (paused time advances only by waits);
    // race 11's first message did not wait.
    assert_eq!(
        sent_at,
        [
            Duration::from_millis(100),
            Duration::from_millis(1100),
            Duration::from_millis(2100)
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_race_at_the_cap_with_the_largest_racer_ids_is_one_iot_message() -> TestResult {
    let results: Vec<(u32, String)> = (0..2000u32)
        .map(|i| {
            (
                1_000_000 - i,
                format!("{}.{:04}", 60 + i % 200, (i * 7919) % 10_000),
            )
        })
        .collect();
    let results: Vec<(u32, &str)> = results.iter().map(|(r, o)| (*r, o.as_str())).collect();
    let image = standings_image(3, 10, &results, 1);
    let publisher = MemoryPublisher::new();
    run(
        event(&[record("100", "MODIFY", &standings_keys(3, 10), Some(image))])?,
        &publisher,
    )
    .await;
    let payload = &publisher.sent()[0].1;
    assert!(payload.len() <= MAX_LIVE_BYTES, "{} bytes", payload.len());
    let message: RealtimeMessage = serde_json::from_slice(payload)?;
    assert_eq!((message.riders, message.top.len()), (2000, 20));
    Ok(())
}

#[tokio::test]
async fn fixture_counts_what_it_ignored() -> TestResult {
    let event: Event = serde_json::from_slice(FIXTURE)?;
    let (response, metrics) = run(event, &MemoryPublisher::new()).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(metrics.get("RecordsIn"), 4);
    assert_eq!(metrics.get("Published"), 1);
    assert_eq!(
        metrics.get("Ignored"),
        2,
        "the leaderboard row and the REMOVE"
    );
    assert_eq!(metrics.get("Malformed"), 0);
    assert_eq!(
        metrics.counts().keys().copied().collect::<Vec<_>>(),
        sorted(&METRICS),
        "every counter declared, and no other"
    );
    Ok(())
}

fn sorted(metrics: &[Metric]) -> Vec<Metric> {
    let mut metrics = metrics.to_vec();
    metrics.sort_unstable();
    metrics
}

#[tokio::test]
async fn other_items_and_removals_are_ignored() -> TestResult {
    let final_keys = json!({"pk": {"S": "race#3#5400172"}, "sk": {"S": "racer#8"}});
    let final_image = json!({"pk": {"S": "race#3#5400172"}, "sk": {"S": "racer#8"},
        "classId": {"N": "3"}, "racerId": {"N": "8"}, "output": {"N": "151.788"}});
    let bests_keys = json!({"pk": {"S": "racer#8"}, "sk": {"S": "bests#class#3"}});
    let trace_keys = json!({"pk": {"S": "racer#8"}, "sk": {"S": "race#3#5400172"}});
    let event = event(&[
        record("100", "INSERT", &final_keys, Some(final_image)),
        record(
            "101",
            "MODIFY",
            &bests_keys,
            Some(json!({"seconds": {"L": []}})),
        ),
        record(
            "102",
            "INSERT",
            &trace_keys,
            Some(json!({"seconds": {"L": []}})),
        ),
        record("103", "REMOVE", &standings_keys(3, 5_400_172), None),
        record(
            "104",
            "MODIFY",
            &json!({"id": {"N": "1"}}),
            Some(json!({"id": {"N": "1"}})),
        ),
    ])?;
    let publisher = MemoryPublisher::new();
    let (response, metrics) = run(event, &publisher).await;
    assert!(response.batch_item_failures.is_empty());
    assert!(publisher.sent().is_empty());
    assert_eq!(metrics.get("Ignored"), 5);
    assert_eq!(metrics.get("Published"), 0);
    Ok(())
}

#[tokio::test]
async fn malformed_standings_image_is_counted_not_retried() -> TestResult {
    let mut bad_output = standings_image(3, 10, &[(8, "151.788")], 1);
    bad_output["results"]["M"]["8"] = json!({"S": "fast"});
    let mut wrong_pk = standings_image(4, 10, &[(8, "1")], 1);
    wrong_pk["classId"] = json!({"N": "5"});
    let event = event(&[
        // Missing updatedAt.
        record(
            "100",
            "INSERT",
            &standings_keys(3, 10),
            Some(json!({"classId": {"N": "3"}})),
        ),
        record("101", "MODIFY", &standings_keys(3, 10), Some(bad_output)),
        record("102", "MODIFY", &standings_keys(4, 10), Some(wrong_pk)),
        // A KEYS_ONLY-style record without an image.
        record("103", "MODIFY", &standings_keys(3, 10), None),
        standings("104", 2, 11),
    ])?;
    let publisher = MemoryPublisher::new();
    let (response, metrics) = run(event, &publisher).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "retrying cannot fix an image"
    );
    assert_eq!(metrics.get("Malformed"), 4);
    assert_eq!(
        metrics.get("Published"),
        1,
        "the records after it still go out"
    );
    assert_eq!(publisher.sent()[0].0, "alleycat-subscribe/class-2");
    Ok(())
}

#[tokio::test]
async fn throttled_publish_is_retried_then_succeeds() -> TestResult {
    let publisher = MemoryPublisher::new();
    publisher
        .faults
        .fail("publish", PortError::Throttled("slow down".into()), 2);
    let (response, metrics) = run(event(&[standings("100", 3, 10)])?, &publisher).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(publisher.sent().len(), 1);
    assert_eq!(metrics.get("Retries"), 2);
    assert_eq!(metrics.get("Published"), 1);
    assert_eq!(publisher.faults.calls("publish"), 3);
    Ok(())
}

#[tokio::test]
async fn persistent_failure_reports_the_first_record_that_failed() -> TestResult {
    let publisher = MemoryPublisher::new();
    publisher
        .faults
        .fail("publish", PortError::Transient("503".into()), 100);
    let event = event(&[
        record("100", "REMOVE", &standings_keys(3, 9), None),
        standings("200", 3, 10),
        standings("300", 3, 11),
    ])?;
    let (response, metrics) = run(event, &publisher).await;
    assert_eq!(failed_ids(&response), ["200"]);
    assert!(publisher.sent().is_empty());
    assert_eq!(metrics.get("PublishFailed"), 1);
    assert_eq!(metrics.get("Retries"), 3, "4 attempts in all");
    assert_eq!(
        metrics.get("Deferred"),
        1,
        "the record after it waits for the redelivery"
    );
    Ok(())
}

/// A publisher whose topic of one class is broken, the others fine.
struct BrokenClass {
    inner: MemoryPublisher,
    broken_topic: String,
}

impl Publisher for BrokenClass {
    async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), PortError> {
        if topic == self.broken_topic {
            return Err(PortError::Permanent("not authorized".into()));
        }
        self.inner.publish(topic, payload).await
    }
}

#[tokio::test]
async fn records_before_the_failure_are_published_and_the_failure_is_exact() -> TestResult {
    let publisher = BrokenClass {
        inner: MemoryPublisher::new(),
        broken_topic: "alleycat-subscribe/class-4".to_owned(),
    };
    let event = event(&[
        standings("540017200000000001234567001", 3, 10),
        standings("540017200000000001234567002", 4, 10),
        standings("540017200000000001234567003", 3, 11),
        standings("540017200000000001234567004", 4, 11),
    ])?;
    let mut metrics = Metrics::new("test");
    let response = handle(event, &publisher, &Pacer::new(), &config(), &mut metrics).await;
    assert_eq!(failed_ids(&response), ["540017200000000001234567002"]);
    let sent = sent_messages(&publisher.inner)?;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.race_id, 10);
    assert_eq!(
        metrics.get("Retries"),
        0,
        "a permanent error is not retried"
    );
    assert_eq!(metrics.get("Deferred"), 2);
    assert_eq!(
        metrics.counts().keys().copied().collect::<Vec<_>>(),
        sorted(&METRICS)
    );
    // The response is what Lambda reads: {"batchItemFailures":[{"itemIdentifier":"…"}]}.
    assert_eq!(
        serde_json::to_value(&response)?,
        json!({"batchItemFailures": [{"itemIdentifier": "540017200000000001234567002"}]})
    );
    Ok(())
}

#[test]
fn config_names_the_missing_variable() {
    let error = Config::from_lookup(|_| None).unwrap_err();
    assert!(error.to_string().contains(IOT_ENDPOINT), "{error}");
    let config = Config::from_lookup(|name| (name == IOT_ENDPOINT).then(|| "host".to_owned()))
        .expect("IOT_ENDPOINT is all it needs");
    assert_eq!(config.iot_endpoint, "host");
    assert_eq!(config.retry, RetryPolicy::default());
    assert_eq!(config.interval, Duration::from_secs(1));
    let error = Config::from_lookup(|name| {
        Some(if name == IOT_ENDPOINT { "host" } else { "-1" }.to_owned())
    })
    .unwrap_err();
    assert!(error.to_string().contains("PUBLISH_INTERVAL_MS"), "{error}");
}

#[test]
fn the_handler_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let publisher = MemoryPublisher::new();
    let config = config();
    let pacer = Pacer::new();
    let mut metrics = Metrics::new("publisher");
    assert_send(&handle(
        Event::default(),
        &publisher,
        &pacer,
        &config,
        &mut metrics,
    ));
}
