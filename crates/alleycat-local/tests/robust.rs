//! The embedded stack under load: the HTTP API keeps answering while a burst rides through MQTT,
//! and a thousand bikes connected at once each have every message they publish ingested.
//!
//! No timing is asserted (the machine may be busy): each test asserts that everything was
//! answered and ingested, and prints what it measured. The full-size runs, in a release build,
//! are `examples/load.rs` (see BENCHMARKS.md).

// Percentiles index sorted latencies with floats.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use alleycat_domain::views::PUBLISH_TOPIC;
use alleycat_local::Stack;
use alleycat_local::config::StackArgs;
use alleycat_local::testing::{free_port, http_get, operator_options};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const CLASS: u8 = 5;

async fn start_stack(dir: &std::path::Path) -> Stack {
    let args = StackArgs {
        data_dir: dir.join("data"),
        http_port: free_port(),
        mqtt_port: free_port(),
        ws_port: free_port(),
        // Firehose's template interval (60 s) would keep the stack from idling for a minute.
        firehose_interval_seconds: 1,
        ..StackArgs::default()
    };
    Stack::start(args.config()).await.expect("the stack starts")
}

/// A valid device message of `racer` at `second`, with a uuid of its own.
fn message(racer: u32, second: u32) -> Vec<u8> {
    let now = alleycat_local::now_ms();
    json!({
        "uuid": format!("{racer}-{second}"), "event": "update", "deviceTimestamp": now,
        "second": second % 300 + 1, "raceId": now / 300_000, "name": format!("Rider {racer}"),
        "racerId": racer, "classId": CLASS, "cadence": 60.5 + f64::from(second % 40),
        "resistance": 40.0
    })
    .to_string()
    .into_bytes()
}

/// An operator client that publishes `messages` (QoS 1) as given, and resolves once every one
/// is acknowledged.
async fn ride(stack: &Stack, id: &str, messages: Vec<(Vec<u8>, Duration)>) -> TestResult {
    let mut options = operator_options(stack, id);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_inflight(500);
    let (client, mut events) = AsyncClient::new(options, 100);
    let expected = messages.len();
    let publisher = tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        for (payload, at) in messages {
            tokio::time::sleep_until(started + at).await;
            client
                .publish(PUBLISH_TOPIC, QoS::AtLeastOnce, false, payload)
                .await?;
        }
        Ok::<_, rumqttc::ClientError>(client)
    });
    let mut acked = 0;
    while acked < expected {
        let event = tokio::time::timeout(Duration::from_secs(60), events.poll()).await??;
        if let Event::Incoming(Packet::PubAck(_)) = event {
            acked += 1;
        }
    }
    let client = publisher.await??;
    client.disconnect().await?;
    // Polled until the DISCONNECT is out, so the gate's session ends now, not at teardown.
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(event) = events.poll().await {
            if let Event::Outgoing(rumqttc::Outgoing::Disconnect) = event {
                break;
            }
        }
    })
    .await?;
    Ok(())
}

/// Waits until the stream holds `expected` records; then every uuid in it.
async fn ingested(stack: &Stack, expected: u64) -> HashSet<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while stack.status().stream_records < expected {
        assert!(
            Instant::now() < deadline,
            "only {} of {expected} messages ingested",
            stack.status().stream_records
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stream = stack.stream();
    let mut uuids = HashSet::new();
    for shard in 0..stream.shards() {
        let mut after = None;
        loop {
            let batch = stream.read(shard, after, 10_000).expect("the stream reads");
            let Some(last) = batch.last() else { break };
            after = Some(last.sequence);
            for record in batch {
                let record: Value = serde_json::from_slice(&record.data).expect("JSON");
                uuids.insert(record["uuid"].as_str().expect("a uuid").to_owned());
            }
        }
    }
    uuids
}

/// Shuts the stack down, once the tasks sharing it have ended.
async fn stop(stack: Arc<Stack>) {
    let Ok(stack) = Arc::try_unwrap(stack) else {
        panic!("the stack is still shared");
    };
    stack.shutdown().await;
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_every_request_while_a_burst_rides_through_mqtt() -> TestResult {
    const CLIENTS: u32 = 8;
    const PER_CLIENT: u32 = 2_500;
    let dir = tempfile::tempdir()?;
    let stack = Arc::new(start_stack(dir.path()).await);

    // The API, asked over and over from a thread of its own while the burst lasts.
    let riding = Arc::new(AtomicBool::new(true));
    let api = stack.api_url();
    let prober = {
        let riding = Arc::clone(&riding);
        tokio::task::spawn_blocking(move || {
            let mut answers = Vec::new();
            let paths = ["/config", "/leaderboard?classId=5"];
            while riding.load(Ordering::Acquire) {
                let path = paths[answers.len() % paths.len()];
                let started = Instant::now();
                let (status, _) = http_get(&format!("{api}{path}")).expect("the API answers");
                answers.push((path, status, started.elapsed()));
            }
            answers
        })
    };

    let started = Instant::now();
    let bikes: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let messages = (0..PER_CLIENT)
                .map(|i| (message(c * 1_000 + i % 1_000, i / 1_000), Duration::ZERO))
                .collect();
            let stack = Arc::clone(&stack);
            tokio::spawn(async move { ride(&stack, &format!("burst-{c}"), messages).await })
        })
        .collect();
    for bike in bikes {
        bike.await??;
    }
    let ride_time = started.elapsed();
    let total = u64::from(CLIENTS * PER_CLIENT);
    let uuids = ingested(&stack, total).await;
    riding.store(false, Ordering::Release);
    let answers = prober.await?;
    assert!(
        stack.wait_idle(Duration::from_secs(60)).await,
        "the stack did not catch up"
    );

    assert_eq!(uuids.len() as u64, total, "every message once");
    assert!(
        !answers.is_empty(),
        "no API request was made during the burst"
    );
    for (path, status, _) in &answers {
        assert_eq!(*status, 200, "{path}");
    }
    let mut latencies: Vec<Duration> = answers.iter().map(|(_, _, latency)| *latency).collect();
    latencies.sort();
    println!(
        "{total} messages over MQTT in {:.1} s ({:.0}/s); {} API requests during the burst: \
         p50 {:?}, p99 {:?}, max {:?}",
        ride_time.as_secs_f64(),
        total as f64 / ride_time.as_secs_f64(),
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().expect("answers"),
    );
    stop(stack).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_bikes_connected_at_once_have_every_message_ingested() -> TestResult {
    // 1,000 connections for 30 s, as the issue asks, in the debug build of the test command; the
    // same in a release build, with latencies, is `examples/load.rs --clients 1000 --rate 1000
    // --seconds 30` (BENCHMARKS.md).
    const BIKES: u32 = 1_000;
    const SECONDS: u32 = 30;
    let dir = tempfile::tempdir()?;
    let stack = Arc::new(start_stack(dir.path()).await);
    let started = Instant::now();
    let bikes: Vec<_> = (0..BIKES)
        .map(|racer| {
            // Each bike once a second, the bikes spread over the second.
            let offset = Duration::from_millis(u64::from(racer));
            let messages = (0..SECONDS)
                .map(|second| {
                    let at = Duration::from_secs(u64::from(second)) + offset;
                    (message(racer, second), at)
                })
                .collect();
            let stack = Arc::clone(&stack);
            tokio::spawn(async move { ride(&stack, &format!("bike-{racer}"), messages).await })
        })
        .collect();
    for bike in bikes {
        bike.await??;
    }
    let total = u64::from(BIKES * SECONDS);
    let uuids = ingested(&stack, total).await;
    println!(
        "{BIKES} connections × {SECONDS} s: {total} messages acknowledged and ingested in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(uuids.len() as u64, total, "every message once");
    for racer in 0..BIKES {
        for second in 0..SECONDS {
            assert!(
                uuids.contains(&format!("{racer}-{second}")),
                "{racer}-{second}"
            );
        }
    }
    Ok(())
}
