//! The real `history-merger` binary on the fake Lambda Runtime API, on moto buckets and a moto
//! table: the committed merge-queue event (S3's test event, then the S3 event of a delivery
//! object, pointed at this test's delivery bucket) merges the object into the class history,
//! racer bests and racer traces and answers no message to retry, the counts reach stdout as EMF,
//! and each missing required variable stops it at init, named.

use alleycat_aws::moto::{bucket, moto, table};
use alleycat_domain::views::history_key;
use alleycat_domain::{ClassHistory, Output, RaceClock, RaceKey, Reading};
use alleycat_lambda::fake_runtime::{fixture_event, init_fails_naming, run_bootstrap};
use alleycat_lambda::testing::Message;
use alleycat_ports::{BestsKey, ObjectStore, Queries, TraceKey};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use tokio::task::block_in_place;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BIN: &str = env!("CARGO_BIN_EXE_history-merger");

/// The delivery bucket and object key the fixture names.
const FIXTURE_BUCKET: &str = "alleycat-delivery-123456789012";
const FIXTURE_KEY: &str = "raw/2026/11/21/10/alleycat-1-2026-11-21-10-00-00-abc.gz";

const RACE: RaceKey = RaceKey {
    class_id: 3,
    race_id: 5_400_172,
};

/// A Firehose delivery object: the transformer's lines, gzip NDJSON.
fn delivery_object(messages: &[Message]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    let mut line = Vec::new();
    for message in messages {
        line.clear();
        Reading::from_json(&message.to_json(), RaceClock::default())
            .map_err(|rejection| std::io::Error::other(format!("{rejection:?}")))?
            .write_json_line(&mut line);
        encoder.write_all(&line)?;
    }
    encoder.finish()
}

/// The three required variables.
fn config<'a>(delivery: &'a str, history: &'a str, table: &'a str) -> [(&'static str, &'a str); 3] {
    [
        ("DELIVERY_BUCKET", delivery),
        ("HISTORY_BUCKET", history),
        ("TABLE_NAME", table),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn fixture_object_is_merged_into_history_bests_and_traces() -> TestResult {
    let (delivery, history, table) = (bucket().await, bucket().await, table().await);
    // Second 13 of race 5400172, class 3: Adell 151.788, Bo 162.
    let adell = Message::new(3, 5_400_172, 8).second(13);
    let bo = Message::new(3, 5_400_172, 12).second(13).effort(85.0, 70.0);
    delivery
        .put(
            FIXTURE_KEY,
            delivery_object(&[adell, bo])?,
            "application/octet-stream",
            None,
        )
        .await?;
    let event = fixture_event("sqs-s3-put.json", &[(FIXTURE_BUCKET, &delivery.bucket)])?;
    let env = moto().env_with(&config(&delivery.bucket, &history.bucket, &table.table));
    let run = block_in_place(|| run_bootstrap(BIN, &env, &event))?;
    eprintln!("history-merger startup: {:?}", run.startup);

    assert_eq!(
        run.response_json()?,
        serde_json::json!({"batchItemFailures": []}),
        "every message merged or dropped: none to receive again"
    );
    let object = history
        .get(&history_key(3))
        .await?
        .ok_or("the class 3 history object was written")?;
    let class_history = ClassHistory::decode_gzip(&object.bytes, 3, 1000)?;
    let adell_output = Output::from_effort(74.2, 74.0);
    let bo_output = Output::from_effort(85.0, 70.0);
    assert_eq!(
        class_history.ranked(13),
        [(12, bo_output), (8, adell_output)]
    );
    assert_eq!(class_history.top_k(), 100, "the default K");

    let bests = table
        .bests(BestsKey {
            racer_id: 8,
            class_id: 3,
        })
        .await?
        .ok_or("Adell's bests")?;
    assert_eq!(bests.get(13), Some(adell_output));
    let trace = table
        .trace(TraceKey {
            racer_id: 12,
            race: RACE,
        })
        .await?
        .ok_or("Bo's trace")?;
    assert_eq!(trace.get(13), Some(bo_output));

    let emf = run.emf()?;
    assert_eq!(emf["Function"], "history-merger");
    for (counter, count) in [
        ("ObjectsIn", 1),
        ("Skipped", 1),
        ("Records", 2),
        ("BadLines", 0),
        ("HistoryWrites", 1),
        ("BestsWrites", 2),
        ("TraceWrites", 2),
        ("ReadFailed", 0),
        ("MergeFailed", 0),
    ] {
        assert_eq!(emf[counter], count, "{counter}");
    }
    Ok(())
}

fn missing(name: &str) -> Result<(), String> {
    let env = moto().env_with(&config("delivery", "history", "alleycat-races"));
    init_fails_naming(BIN, &env, name).map(drop)
}

#[test]
fn missing_delivery_bucket_fails_init_naming_it() -> Result<(), String> {
    missing("DELIVERY_BUCKET")
}

#[test]
fn missing_history_bucket_fails_init_naming_it() -> Result<(), String> {
    missing("HISTORY_BUCKET")
}

#[test]
fn missing_table_name_fails_init_naming_it() -> Result<(), String> {
    missing("TABLE_NAME")
}
