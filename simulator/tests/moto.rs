//! The Kinesis path against a real moto server: 1,000 racers arrive complete (count and content)
//! and in order per racer, read back with GetRecords; and the binary end to end, configured only
//! through the standard AWS environment (`AWS_ENDPOINT_URL`).
//!
//! moto is `$ALLEYCAT_MOTO_SERVER` or the venv of `scripts/moto-venv` (see
//! `alleycat_aws::moto`); a missing server fails these tests, it never skips them.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use alleycat_aws::moto::{moto, sdk_config, unique};
use alleycat_ports::RetryPolicy;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::types::ShardIteratorType;
use simulator::pacing::Budget;
use simulator::sink::kinesis::ensure_stream;
use simulator::sink::{KinesisSinkConfig, SdkKinesis};
use simulator::{KinesisSink, Race, RacePlan, Stats, run_to_end};

/// A client on moto without the SDK's own retries (the sink counts its own).
async fn client() -> Client {
    let config = sdk_config().await;
    Client::from_conf(
        aws_sdk_kinesis::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .build(),
    )
}

/// A new stream with `shards` shards.
async fn stream(client: &Client, shards: u32) -> String {
    let name = unique("alleycat-sim");
    ensure_stream(client, &name, shards, Duration::from_secs(30))
        .await
        .expect("create the stream");
    name
}

/// A record read back: its shard, partition key and data.
struct Stored {
    shard: String,
    key: String,
    data: Vec<u8>,
}

/// Every record of `stream`, shard by shard, in sequence order.
async fn read_all(client: &Client, stream: &str) -> Vec<Stored> {
    let shards = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .expect("ListShards");
    let mut stored = Vec::new();
    for shard in shards.shards() {
        let mut iterator = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("GetShardIterator")
            .shard_iterator
            .expect("an iterator");
        loop {
            let page = client
                .get_records()
                .shard_iterator(&iterator)
                .limit(10_000)
                .send()
                .await
                .expect("GetRecords");
            if page.records().is_empty() {
                break;
            }
            stored.extend(page.records().iter().map(|r| Stored {
                shard: shard.shard_id().to_owned(),
                key: r.partition_key().unwrap_or_default().to_owned(),
                data: r.data().as_ref().to_vec(),
            }));
            match page.next_shard_iterator {
                Some(next) => iterator = next,
                None => break,
            }
        }
    }
    stored
}

/// Content, count, partition keys, and per-racer order within each shard.
fn assert_stream_holds(stored: &[Stored], plan: &RacePlan) {
    for record in stored {
        let (racer, _) = common::racer_second(&record.data, plan);
        assert_eq!(
            record.key,
            racer.to_string(),
            "partition key is the racer id"
        );
    }
    let mut shards: Vec<&str> = stored.iter().map(|r| r.shard.as_str()).collect();
    shards.sort_unstable();
    shards.dedup();
    for shard in shards {
        let in_shard: Vec<Vec<u8>> = stored
            .iter()
            .filter(|r| r.shard == shard)
            .map(|r| r.data.clone())
            .collect();
        common::assert_in_order_per_racer(&in_shard, plan);
    }
    common::assert_same_messages(
        stored.iter().map(|r| r.data.clone()).collect(),
        common::oracle(plan),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_racers_arrive_complete_and_in_order() {
    let client = client().await;
    let stream = stream(&client, 4).await;
    let plan = RacePlan {
        racers: 1000,
        seconds: 5,
        start_offset_spread: 2,
        ..RacePlan::default()
    };
    let mut race = Race::new(&plan);
    let keys = (0..plan.racers)
        .map(|r| Arc::clone(race.partition_key(r)))
        .collect();
    let stats = Arc::new(Stats::default());
    let config = KinesisSinkConfig {
        // moto enforces no limits: pace for 10 shards to keep the test short.
        budget: Budget::for_shards(10),
        batch_size: 500,
        policy: RetryPolicy::default(),
    };
    let sink = KinesisSink::start(
        SdkKinesis::new(client.clone(), stream.as_str()),
        keys,
        config,
        Arc::clone(&stats),
    );
    run_to_end(&mut race, sink, Arc::clone(&stats))
        .await
        .expect("the race is delivered");
    assert_eq!(Stats::get(&stats.sent), 5000);
    assert_eq!(Stats::get(&stats.lost), 0);
    assert!(
        stats.latency().count() >= 10,
        "at least 5,000 / 500 requests"
    );

    let stored = read_all(&client, &stream).await;
    assert_eq!(stored.len(), 5000);
    assert_stream_holds(&stored, &plan);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_rides_to_moto_with_the_standard_aws_environment() {
    let client = client().await;
    let stream = unique("alleycat-sim-bin");
    let summary_path = std::env::temp_dir().join(format!(
        "simulator-moto-{}-{stream}.json",
        std::process::id()
    ));
    let output = Command::new(env!("CARGO_BIN_EXE_simulator"))
        .envs(moto().env())
        .args([
            "--target",
            "kinesis",
            "--stream-name",
            &stream,
            "--create-stream",
            "--shards",
            "2",
            "--racers",
            "20",
            "--seconds",
            "3",
            "--speed",
            "0",
            "--start-ms",
            "1700000123456",
            "--seed",
            "11",
            "--quiet",
            "--summary-json",
            summary_path.to_str().unwrap(),
        ])
        .output()
        .expect("run the simulator");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
    std::fs::remove_file(&summary_path).ok();
    assert_eq!(summary["target"], "kinesis");
    assert_eq!(summary["sent"], 60);
    assert_eq!(summary["lost"], 0);
    assert!(summary["latency"]["p99Ms"].as_f64().unwrap() > 0.0);

    let plan = RacePlan {
        seed: 11,
        racers: 20,
        seconds: 3,
        start_ms: 1_700_000_123_456,
        ..RacePlan::default()
    };
    let stored = read_all(&client, &stream).await;
    assert_stream_holds(&stored, &plan);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_stream_exits_with_status_1_and_the_lost_count() {
    let stream = unique("alleycat-sim-missing");
    let output = Command::new(env!("CARGO_BIN_EXE_simulator"))
        .envs(moto().env())
        .args([
            "--target",
            "kinesis",
            "--stream-name",
            &stream,
            "--racers",
            "5",
            "--seconds",
            "2",
            "--speed",
            "0",
        ])
        .output()
        .expect("run the simulator");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ResourceNotFoundException"), "{stderr}");
    assert!(stderr.contains("10 records were lost"), "{stderr}");
}
