//! A backlog on AWS's shape, against moto: 50 delivery objects of one class announced at once on
//! the merge queue, taken 10 a batch by at most two concurrent invocations (the event source's
//! `MaximumConcurrency`), each failed message received again up to three times as SQS would. Every
//! object is merged, no merge fails, and the class history is the exact top K of every racer.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex};

use alleycat_aws::moto;
use alleycat_domain::views::history_key;
use alleycat_domain::{ClassHistory, Output, RaceClock, Reading};
use alleycat_lambda::Metrics;
use alleycat_lambda::testing::Message;
use alleycat_ports::{ObjectStore, RetryPolicy};
use aws_lambda_events::event::sqs::SqsEvent;
use flate2::Compression;
use flate2::write::GzEncoder;
use history_merger::{Config, handle_queue};
use serde_json::json;

const OBJECTS: usize = 50;
const RACERS_PER_OBJECT: i64 = 30;
const TOP_K: u32 = 10;
/// The event source's `MaximumConcurrency` in the template.
const CONCURRENCY: usize = 2;
/// The event source's `BatchSize`.
const BATCH: usize = 10;
/// The queue's `maxReceiveCount` before the dead-letter queue.
const RECEIVES: u32 = 3;

/// Object `i`: racers `30i..30i+29` of class 3 at seconds 1-5, outputs varying with the racer.
fn object(i: usize) -> Vec<Vec<u8>> {
    let first = i64::try_from(i).unwrap() * RACERS_PER_OBJECT;
    (first..first + RACERS_PER_OBJECT)
        .flat_map(|racer| {
            (1..=5).map(move |second| {
                let cadence = 40.0 + f64::from(u32::try_from(racer % 97).unwrap());
                let mut message = Message::new(3, 5_400_172, racer)
                    .second(second)
                    .effort(cadence, 50.0)
                    .to_json();
                message.pop(); // the closing brace: archived lines carry their arrival
                message.extend_from_slice(b",\"arrivedAt\":1620051601123}");
                message
            })
        })
        .collect()
}

fn gzip(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    for line in lines {
        encoder.write_all(line).unwrap();
        encoder.write_all(b"\n").unwrap();
    }
    encoder.finish().unwrap()
}

fn announcement(id: usize, bucket: &str, key: &str) -> serde_json::Value {
    let body = json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-21T10:05:02.418Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AROAEXAMPLE:AWSFirehoseToS3"},
        "requestParameters": {"sourceIPAddress": "10.0.0.1"},
        "responseElements": {"x-amz-request-id": "1", "x-amz-id-2": "2"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "alleycat-raw-created",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A1"},
                          "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": key, "size": 100, "eTag": "abc", "sequencer": "0A"}}
    }]});
    json!({
        "messageId": format!("m-{id}"), "receiptHandle": format!("r-{id}"),
        "body": body.to_string(), "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {}, "md5OfBody": "0", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:alleycat-MergeQueue",
        "awsRegion": "us-east-1"
    })
}

type Queue = Mutex<VecDeque<(serde_json::Value, u32)>>;

/// One invocation after another, as Lambda runs one concurrent slot of the event source, until
/// the queue is empty: a message reported failed is received again, up to [`RECEIVES`] times,
/// then goes to `dead`. The invocations' counters, summed.
async fn drain<D, H, T>(
    queue: &Queue,
    dead: &Mutex<Vec<serde_json::Value>>,
    delivery: &D,
    histories: &H,
    table: &T,
    config: &Config,
) -> Metrics
where
    D: ObjectStore,
    H: alleycat_ports::MergeStore<u8, ClassHistory>,
    T: alleycat_ports::MergeStore<alleycat_ports::BestsKey, alleycat_domain::SecondSeries>
        + alleycat_ports::MergeStore<alleycat_ports::TraceKey, alleycat_domain::SecondSeries>
        + alleycat_ports::Claims,
{
    let mut totals = Metrics::new("history-merger");
    loop {
        let batch: Vec<_> = {
            let mut queue = queue.lock().unwrap();
            let n = queue.len().min(BATCH);
            queue.drain(..n).collect()
        };
        if batch.is_empty() {
            return totals;
        }
        let event: SqsEvent = serde_json::from_value(
            json!({"Records": batch.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>()}),
        )
        .unwrap();
        let mut metrics = Metrics::new("history-merger");
        let response = handle_queue(event, delivery, histories, table, config, &mut metrics).await;
        for (name, count) in metrics.counts() {
            totals.add(*name, *count);
        }
        for failure in response.batch_item_failures {
            let (message, receives) = batch
                .iter()
                .find(|(m, _)| m["messageId"] == failure.item_identifier.as_str())
                .cloned()
                .unwrap();
            if receives < RECEIVES {
                queue.lock().unwrap().push_back((message, receives + 1));
            } else {
                dead.lock().unwrap().push(message);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_objects_at_once_merge_with_two_invocations_and_no_failure() {
    let delivery = moto::bucket().await;
    let histories_bucket = moto::bucket().await;
    let table = moto::table().await;
    let config = Config {
        delivery_bucket: delivery.bucket.clone(),
        history_bucket: histories_bucket.bucket.clone(),
        table_name: table.table.clone(),
        top_k: TOP_K,
        clock: RaceClock::default(),
        concurrency: 8,
        retry: RetryPolicy::default(),
    };
    let mut all_lines = Vec::new();
    let mut queue = VecDeque::new();
    for i in 0..OBJECTS {
        let lines = object(i);
        let key = format!("raw/2026/11/21/10/alleycat-1-{i:03}.gz");
        delivery
            .put(&key, gzip(&lines), "application/gzip", None)
            .await
            .unwrap();
        all_lines.extend(lines);
        queue.push_back((announcement(i, &delivery.bucket, &key), 1u32));
    }
    let queue = Arc::new(Mutex::new(queue));
    let histories = Arc::new(config.histories(histories_bucket));
    let (delivery, table, config) = (Arc::new(delivery), Arc::new(table), Arc::new(config));
    let dead = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (queue, dead) = (Arc::clone(&queue), Arc::clone(&dead));
        let (delivery, histories) = (Arc::clone(&delivery), Arc::clone(&histories));
        let (table, config) = (Arc::clone(&table), Arc::clone(&config));
        workers.push(tokio::spawn(async move {
            drain(&queue, &dead, &*delivery, &*histories, &*table, &config).await
        }));
    }
    let mut totals = Metrics::new("history-merger");
    for worker in workers {
        for (name, count) in worker.await.unwrap().counts() {
            totals.add(*name, *count);
        }
    }
    eprintln!(
        "backlog: {} history writes, {} conflicts, {} retries",
        totals.get("HistoryWrites"),
        totals.get("Conflicts"),
        totals.get("Retries")
    );
    assert!(dead.lock().unwrap().is_empty(), "messages gave up");
    assert_eq!(totals.get("MergeFailed"), 0);
    assert_eq!(totals.get("ReadFailed"), 0);
    assert_eq!(totals.get("ObjectsIn"), OBJECTS as u64);

    // The exact top K per second over every racer of every object.
    let mut by_second: BTreeMap<u16, Vec<(Output, u32)>> = BTreeMap::new();
    for line in &all_lines {
        let reading = Reading::from_json(line, RaceClock::default()).unwrap();
        by_second
            .entry(reading.second)
            .or_default()
            .push((reading.output, reading.racer_id));
    }
    let object = histories
        .objects()
        .get(&history_key(3))
        .await
        .unwrap()
        .expect("the class history exists");
    let stored = ClassHistory::decode_gzip(&object.bytes, 3, TOP_K).unwrap();
    for (second, mut outputs) in by_second {
        outputs.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        outputs.truncate(TOP_K as usize);
        let expected: BTreeMap<u32, Output> = outputs.into_iter().map(|(o, r)| (r, o)).collect();
        let got: BTreeMap<u32, Output> = stored.ranked(second).into_iter().collect();
        assert_eq!(got, expected, "second {second}");
    }
}
