//! The history merger on batches of the merge queue (as Lambda runs it on AWS), on in-memory
//! buckets and table: every announced object merged, foreign messages dropped, and exactly the
//! messages to receive again reported.

use std::io::Write;

use alleycat_domain::views::history_key;
use alleycat_domain::{ClassHistory, RaceClock};
use alleycat_lambda::Metrics;
use alleycat_lambda::testing::Message;
use alleycat_ports::memory::{MemoryObjects, MemoryTable};
use alleycat_ports::{HistoryObjects, PortError, RetryPolicy};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use flate2::Compression;
use flate2::write::GzEncoder;
use history_merger::{Config, handle_queue};
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const FIXTURE: &[u8] = include_bytes!("../../../fixtures/events/sqs-s3-put.json");
const BUCKET: &str = "alleycat-delivery-123456789012";
/// The object the fixture's second message announces.
const FIXTURE_KEY: &str = "raw/2026/11/21/10/alleycat-1-2026-11-21-10-00-00-abc.gz";

/// A delivery object: one line per (class, racer) at second 13 of race 5400172.
fn object(riders: &[(i64, i64)]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    for (class, racer) in riders {
        let line = Message::new(*class, 5_400_172, *racer).second(13).to_json();
        encoder.write_all(&line).expect("in memory");
        encoder.write_all(b"\n").expect("in memory");
    }
    encoder.finish().expect("in memory")
}

/// An SQS message whose body is the S3 event announcing `key`, as S3 sends it to a queue.
fn announcement(id: &str, key: &str) -> serde_json::Value {
    let body = json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-21T10:05:02.418Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AROAEXAMPLE:AWSFirehoseToS3"},
        "requestParameters": {"sourceIPAddress": "10.0.0.1"},
        "responseElements": {"x-amz-request-id": "1", "x-amz-id-2": "2"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "alleycat-raw-created",
            "bucket": {"name": BUCKET, "ownerIdentity": {"principalId": "A1"},
                       "arn": format!("arn:aws:s3:::{BUCKET}")},
            "object": {"key": key, "size": 100, "eTag": "abc", "sequencer": "0A"}
        }
    }]});
    message(id, &body.to_string())
}

fn message(id: &str, body: &str) -> serde_json::Value {
    json!({
        "messageId": id,
        "receiptHandle": format!("AQEB{id}"),
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1763719502431"},
        "messageAttributes": {},
        "md5OfBody": "0",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:alleycat-MergeQueue",
        "awsRegion": "us-east-1"
    })
}

fn batch(messages: &[serde_json::Value]) -> Result<SqsEvent, serde_json::Error> {
    serde_json::from_value(json!({ "Records": messages }))
}

fn retried(response: &SqsBatchResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.as_str())
        .collect()
}

struct Stores {
    delivery: MemoryObjects,
    histories: HistoryObjects<MemoryObjects>,
    table: MemoryTable,
    config: Config,
}

impl Stores {
    fn new() -> Self {
        let config = Config {
            delivery_bucket: BUCKET.to_owned(),
            history_bucket: "alleycat-history".to_owned(),
            table_name: "alleycat-races".to_owned(),
            top_k: 100,
            clock: RaceClock::default(),
            concurrency: 4,
            retry: RetryPolicy::immediate(3),
        };
        Self {
            delivery: MemoryObjects::new(),
            histories: config.histories(MemoryObjects::new()),
            table: MemoryTable::new(),
            config,
        }
    }

    async fn merge(&self, event: SqsEvent) -> (SqsBatchResponse, Metrics) {
        let mut metrics = Metrics::new("test");
        let response = handle_queue(
            event,
            &self.delivery,
            &self.histories,
            &self.table,
            &self.config,
            &mut metrics,
        )
        .await;
        (response, metrics)
    }

    fn history(&self, class_id: u8) -> Option<ClassHistory> {
        let (bytes, _) = self.histories.objects().object(&history_key(class_id))?;
        Some(ClassHistory::decode_gzip(&bytes, class_id, 1000).expect("a valid history object"))
    }
}

#[tokio::test]
async fn the_committed_queue_event_merges_its_object_and_drops_s3s_test_event() -> TestResult {
    let stores = Stores::new();
    stores
        .delivery
        .insert(FIXTURE_KEY, object(&[(3, 8), (3, 12)]));
    let event: SqsEvent = serde_json::from_slice(FIXTURE)?;
    assert_eq!(event.records.len(), 2);

    let (response, metrics) = stores.merge(event).await;
    assert!(retried(&response).is_empty(), "{response:?}");
    assert_eq!(
        serde_json::to_value(&response)?,
        json!({"batchItemFailures": []})
    );
    assert_eq!(metrics.get("Skipped"), 1, "S3's test event");
    assert_eq!(metrics.get("ObjectsIn"), 1);
    assert_eq!(metrics.get("Records"), 2);
    let history = stores.history(3).ok_or("the class 3 history was written")?;
    assert_eq!(history.ranked(13).len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_batch_writes_each_class_history_once_for_all_its_objects() -> TestResult {
    let stores = Stores::new();
    let keys = [
        "raw/2026/11/21/10/a.gz",
        "raw/2026/11/21/10/b.gz",
        "raw/2026/11/21/10/c.gz",
    ];
    for (racer, key) in (1..).zip(keys) {
        stores.delivery.insert(key, object(&[(3, racer)]));
    }
    let event = batch(&[
        announcement("m1", keys[0]),
        announcement("m2", keys[1]),
        announcement("m3", keys[2]),
    ])?;

    let (response, metrics) = stores.merge(event).await;
    assert!(retried(&response).is_empty(), "{response:?}");
    assert_eq!(metrics.get("ObjectsIn"), 3);
    assert_eq!(
        metrics.get("HistoryWrites"),
        1,
        "one write of class 3 for three objects"
    );
    let history = stores.history(3).ok_or("history")?;
    assert_eq!(history.ranked(13).len(), 3);
    Ok(())
}

#[tokio::test]
async fn messages_that_announce_no_object_are_dropped_not_retried() -> TestResult {
    let stores = Stores::new();
    let event = batch(&[
        message(
            "test",
            r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}"#,
        ),
        message("junk", "not json"),
        message("empty", r#"{"Records":[]}"#),
    ])?;

    let (response, metrics) = stores.merge(event).await;
    assert!(retried(&response).is_empty(), "{response:?}");
    assert_eq!(metrics.get("Skipped"), 3);
    assert_eq!(metrics.get("ObjectsIn"), 0);
    Ok(())
}

#[tokio::test]
async fn an_unreadable_object_retries_only_the_message_that_announced_it() -> TestResult {
    let stores = Stores::new();
    let keys = ["raw/2026/11/21/10/a+b.gz", "raw/2026/11/21/10/c.gz"];
    // S3 encodes the first key's space as `+`; the failure names the decoded key.
    stores
        .delivery
        .insert("raw/2026/11/21/10/a b.gz", object(&[(3, 1)]));
    stores.delivery.insert(keys[1], object(&[(3, 2)]));
    // The first read fails every attempt.
    stores
        .delivery
        .faults
        .fail("get", PortError::Throttled("slow down".into()), 3);
    let event = batch(&[announcement("m1", keys[0]), announcement("m2", keys[1])])?;

    let (response, metrics) = stores.merge(event).await;
    assert_eq!(retried(&response), ["m1"]);
    assert_eq!(metrics.get("ReadFailed"), 1);
    // The other object was merged: its message is done.
    let history = stores.history(3).ok_or("history")?;
    assert_eq!(history.ranked(13).len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_failed_merge_retries_every_message_of_the_batch() -> TestResult {
    let stores = Stores::new();
    let keys = ["raw/2026/11/21/10/a.gz", "raw/2026/11/21/10/b.gz"];
    stores.delivery.insert(keys[0], object(&[(3, 1)]));
    stores.delivery.insert(keys[1], object(&[(3, 2)]));
    stores.table.faults.fail(
        "store:bests",
        PortError::Throttled("slow down".into()),
        1000,
    );
    let event = batch(&[
        announcement("m1", keys[0]),
        message("test", r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#),
        announcement("m2", keys[1]),
    ])?;

    let (response, metrics) = stores.merge(event).await;
    // The objects were folded together, so both are delivered again (a harmless replay: every
    // view is a max-merge); the test event is not.
    assert_eq!(retried(&response), ["m1", "m2"]);
    assert!(metrics.get("MergeFailed") > 0);
    Ok(())
}
