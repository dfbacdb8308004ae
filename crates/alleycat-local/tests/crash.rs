//! Crash safety: `alleycat-local` is killed with SIGKILL in the middle of a race, with records
//! acknowledged but not yet processed (Firehose still buffering them), and restarted on the same
//! data directory; the second half of the race follows. Every view then equals the oracle of the
//! whole race: nothing acknowledged was lost, nothing was counted twice.
//!
//! And over MQTT, as bikes ride: the simulator's MQTT sink publishes a race as the operator
//! while the stack is killed and restarted under it; every message it counted as sent is in the
//! stream (exactly once, after deduplication by `uuid`), and what it counted lost is what the
//! stream really misses.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alleycat_local::db::Db;
use alleycat_local::stream::LocalStream;
use alleycat_local::testing::{Oracle, assert_views, free_port, http, http_get};
use base64::Engine;
use clap::Parser;
use serde_json::{Value, json};

const CLASS: u8 = 4;
const RACERS: u32 = 300;
const SECONDS: u16 = 20;

/// A race of plain, deterministic messages, second by second.
fn race(start_ms: u64) -> Vec<Vec<u8>> {
    let race_id = start_ms / 300_000;
    let mut messages = Vec::new();
    for second in 1..=SECONDS {
        for racer in 1..=RACERS {
            let cadence = 40.0 + f64::from((racer * 7 + u32::from(second) * 13) % 50) + 0.25;
            let resistance = 30.0 + f64::from((racer * 11 + u32::from(second) * 3) % 60);
            messages.push(
                json!({
                    "uuid": format!("{racer}-{second}"),
                    "event": if second == SECONDS { "final" } else { "update" },
                    "deviceTimestamp": start_ms + u64::from(second) * 1000 + u64::from(racer),
                    "second": second, "raceId": race_id, "name": format!("Racer {racer}"),
                    "racerId": racer, "classId": CLASS, "cadence": cadence, "resistance": resistance
                })
                .to_string()
                .into_bytes(),
            );
        }
    }
    messages
}

struct Running {
    child: Child,
    url: String,
}

fn start(data_dir: &Path, http_port: u16) -> Running {
    start_on(data_dir, http_port, free_port())
}

/// Starts the binary with its MQTT port given (a restarted stack answers where bikes were).
fn start_on(data_dir: &Path, http_port: u16, mqtt_port: u16) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_alleycat-local"))
        .args(["--data-dir", data_dir.to_str().unwrap()])
        .args(["--http-port", &http_port.to_string()])
        .args(["--mqtt-port", &mqtt_port.to_string()])
        .args(["--ws-port", &free_port().to_string()])
        .args(["--race-seconds", &SECONDS.to_string()])
        .args(["--firehose-interval-seconds", "1"])
        .args(["--leaderboard-batching-window-ms", "100"])
        .args(["--log", "warn,rumqttd=off"])
        .stdout(Stdio::null())
        .spawn()
        .expect("alleycat-local starts");
    let url = format!("http://127.0.0.1:{http_port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_get(&format!("{url}/_local/status")).is_err() {
        assert!(Instant::now() < deadline, "alleycat-local did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    Running { child, url }
}

/// Puts `messages` through the stack's Kinesis API, 500 per request, each acknowledged.
fn put(url: &str, messages: &[Vec<u8>]) {
    let base64 = base64::engine::general_purpose::STANDARD;
    for chunk in messages.chunks(500) {
        let records: Vec<Value> = chunk
            .iter()
            .map(|m| {
                let racer = serde_json::from_slice::<Value>(m).unwrap()["racerId"].to_string();
                json!({"Data": base64.encode(m), "PartitionKey": racer})
            })
            .collect();
        let body = json!({"StreamName": "alleycat", "Records": records}).to_string();
        let (status, answer) = http(
            "POST",
            &format!("{url}/"),
            &[
                ("X-Amz-Target", "Kinesis_20131202.PutRecords"),
                ("Content-Type", "application/x-amz-json-1.1"),
            ],
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(answer["FailedRecordCount"], 0);
    }
}

fn status(url: &str) -> Value {
    let (_, body) = http_get(&format!("{url}/_local/status")).unwrap();
    serde_json::from_slice(&body).unwrap()
}

fn wait_idle(url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = status(url);
        let idle = status["consumers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["checkpoint"].as_u64().unwrap() >= c["latest"].as_u64().unwrap());
        if idle {
            return status;
        }
        assert!(Instant::now() < deadline, "not idle: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_killed_stack_resumes_without_losing_or_double_counting() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http_port = free_port();
    let start_ms = alleycat_local::now_ms();
    let messages = race(start_ms);
    let (first, second) = messages.split_at(messages.len() / 2);

    let mut stack = start(&data, http_port);
    put(&stack.url, first);
    // Killed at once: the pollers are mid-batch and Firehose holds the half in its buffer.
    stack.child.kill().unwrap();
    stack.child.wait().unwrap();

    let mut stack = start(&data, http_port);
    put(&stack.url, second);
    let status = wait_idle(&stack.url);
    // The restarted process re-read acknowledged records the first one had not delivered.
    let redelivered = status["functions"]["firehose"]["counters"]["RecordsIn"]
        .as_u64()
        .unwrap();
    assert!(
        redelivered > second.len() as u64,
        "Firehose read {redelivered} records after the restart: the kill hit nothing in flight"
    );
    assert_eq!(status["streamRecords"], messages.len());
    assert_eq!(status["onFailure"], json!({}));

    let oracle = Oracle::of(&messages, SECONDS, 100);
    assert_views(&format!("{}/api", stack.url), &oracle);
    stack.child.kill().unwrap();
    stack.child.wait().unwrap();
}

/// Every record of the stream in `data_dir`, as JSON (read after the stack has stopped).
fn stream_contents(data_dir: &Path) -> Vec<Value> {
    let db = Arc::new(Db::open(&data_dir.join("stream.db")).unwrap());
    let stream = LocalStream::open(db, "alleycat", 1).unwrap();
    let mut records = Vec::new();
    let mut after = None;
    loop {
        let batch = stream.read(0, after, 10_000).unwrap();
        let Some(last) = batch.last() else {
            return records;
        };
        after = Some(last.sequence);
        records.extend(
            batch
                .iter()
                .map(|r| serde_json::from_slice(&r.data).unwrap()),
        );
    }
}

#[test]
fn a_killed_stack_loses_no_mqtt_publish_the_simulator_counted_sent() {
    const RACERS: u32 = 1000;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (http_port, mqtt_port) = (free_port(), free_port());
    let mut stack = start_on(&data, http_port, mqtt_port);

    // The simulator, as from its command line, on a runtime of its own.
    let cli = simulator::Cli::parse_from([
        "simulator",
        "--target",
        "mqtt",
        "--url",
        &format!("mqtt://127.0.0.1:{mqtt_port}"),
        "--mqtt-username",
        "operator",
        "--data-dir",
        data.to_str().unwrap(),
        "--racers",
        &RACERS.to_string(),
        "--seconds",
        &SECONDS.to_string(),
        "--class-id",
        &CLASS.to_string(),
        // As fast as the stack acknowledges: publishes are always in flight when it dies.
        "--speed",
        "0",
        "--retry-base-ms",
        "50",
        "--retry-max-ms",
        "500",
        "--max-attempts",
        "100",
        "--drain-timeout",
        "15",
        "--quiet",
    ]);
    let simulator = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(simulator::app::execute(&cli, &simulator::Stop::default()))
    });

    // Killed mid-ride: once a third of the race is in the stream, with publishes in flight.
    let total = u64::from(RACERS) * u64::from(SECONDS);
    let deadline = Instant::now() + Duration::from_secs(60);
    while status(&stack.url)["streamRecords"].as_u64().unwrap() < total / 3 {
        assert!(Instant::now() < deadline, "the ride did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    stack.child.kill().unwrap();
    stack.child.wait().unwrap();
    let mut stack = start_on(&data, http_port, mqtt_port);

    // A sink that stopped resending would wait for acks forever: fail, do not hang.
    let deadline = Instant::now() + Duration::from_secs(90);
    while !simulator.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the simulator never finished its ride"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let summary = simulator.join().unwrap().summary;
    println!(
        "simulator: generated {}, sent {}, retried {}, request errors {}, lost {}",
        summary.generated, summary.sent, summary.retried, summary.request_errors, summary.lost
    );
    assert_eq!(summary.error, None);
    assert_eq!(summary.generated, total);
    assert!(
        summary.request_errors > 0 && summary.retried > 0,
        "the kill hit no publish in flight: {summary:?}"
    );
    stack.child.kill().unwrap();
    stack.child.wait().unwrap();

    let records = stream_contents(&data);
    let mut copies: HashMap<String, u32> = HashMap::new();
    for record in &records {
        *copies
            .entry(record["uuid"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let duplicates = records.len() - copies.len();
    println!(
        "stream: {} records, {} distinct uuids, {duplicates} duplicates (resent after the kill)",
        records.len(),
        copies.len()
    );
    // Every message counted as sent is in the stream; what is missing is what was counted lost.
    assert_eq!(
        copies.len() as u64,
        summary.sent,
        "distinct uuids in the stream"
    );
    assert_eq!(summary.lost, total - copies.len() as u64);
    assert_eq!(summary.lost, 0, "the simulator resent everything");
}
