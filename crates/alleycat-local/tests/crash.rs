//! Crash safety: `alleycat-local` is killed with SIGKILL in the middle of a race, with records
//! acknowledged but not yet processed (Firehose still buffering them), and restarted on the same
//! data directory; the second half of the race follows. Every view then equals the oracle of the
//! whole race: nothing acknowledged was lost, nothing was counted twice.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alleycat_local::testing::{Oracle, assert_views, free_port, http, http_get};
use base64::Engine;
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
    let child = Command::new(env!("CARGO_BIN_EXE_alleycat-local"))
        .args(["--data-dir", data_dir.to_str().unwrap()])
        .args(["--http-port", &http_port.to_string()])
        .args(["--mqtt-port", &free_port().to_string()])
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
