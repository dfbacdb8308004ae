//! Load on the embedded stack, end to end over MQTT, as bikes load it: how many messages a second
//! it keeps up with, and how long a message takes from `alleycat-publish` to the standings on
//! `alleycat-subscribe/class-<c>`.
//!
//! ```text
//! cargo run --release -p alleycat-local --example load -- --rate 1000 --seconds 60
//! cargo run --release -p alleycat-local --example load -- --rate 5000,10000,20000,30000 --seconds 15
//! ```
//!
//! The stack runs with the template's settings except two waits the template chooses to save
//! money, which would otherwise be most of what this measures: the race aggregator's 1 s batching
//! window and the publisher's 1 s pacing (`--batching-window-ms 1000 --publish-interval-ms 1000`
//! puts them back; a probe then waits up to about two seconds by design).
//!
//! For each rate, bikes (1,000 racers of one race, over `--clients` MQTT connections, QoS 1)
//! publish that many messages a second for `--seconds`, and a probe racer in the same race
//! publishes ten messages a second whose outputs only grow, above every bike's, so each one
//! changes the standings and leads the live message's top: its latency is the time from its
//! publish to the first standings message that holds its output (live messages go out at most
//! once a second per race, which bounds how fresh they can be).
//! After the run the stack must account for every message (appended by the ingest rule, read by
//! the race aggregator, none rejected); a rate is *sustained* when the bikes kept it and the
//! stack caught up within five seconds of the last publish.

// Rates, outputs and percentiles move between integers and floats well within their ranges.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alleycat_domain::views::{PUBLISH_TOPIC, subscribe_topic};
use alleycat_local::Stack;
use alleycat_local::config::StackArgs;
use alleycat_local::testing::{free_port, operator_options};
use clap::Parser;
use rumqttc::{AsyncClient, Event, Packet, QoS};
use serde_json::{Value, json};

const CLASS: u8 = 5;
const RACERS: u32 = 1000;
/// The probe racer of round 1; each round has its own, so its outputs start low again.
const PROBE: u32 = 999_000;
const PROBES_PER_SECOND: u32 = 10;

/// The command line.
#[derive(Parser)]
struct Args {
    /// Messages a second, or several rates (comma-separated) run one after the other.
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    rate: Vec<u32>,
    /// Seconds each rate lasts.
    #[arg(long, default_value_t = 60)]
    seconds: u32,
    /// MQTT connections the bikes share.
    #[arg(long, default_value_t = 4)]
    clients: u32,
    /// The race aggregator's batching window. 0 (not the template's 1 s) measures the pipeline
    /// rather than the wait the template chooses to save writes.
    #[arg(long, default_value_t = 0)]
    batching_window_ms: u64,
    /// Least time between two live messages of a race. 0 (not the template's 1 s) measures the
    /// pipeline rather than the pacing the template chooses to save IoT messages.
    #[arg(long, default_value_t = 0)]
    publish_interval_ms: u64,
}

/// One probe in flight: its output and when it was published.
type Probes = Arc<Mutex<BTreeMap<u64, Instant>>>;

/// A client as the operator: the bikes here stand for the trusted producer (no claims needed).
fn client(stack: &Stack, name: &str) -> (AsyncClient, rumqttc::EventLoop) {
    let mut options = operator_options(stack, name);
    options.set_inflight(1000);
    options.set_keep_alive(Duration::from_secs(30));
    AsyncClient::new(options, 10_000)
}

/// A message of a ride that started at `start_ms` (the race's start, so that every ride is in
/// race `start_ms / 300 s` and plausible: its start never moves, whatever `second` is).
fn message(racer: u32, second: u32, start_ms: u64, cadence: f64, resistance: f64) -> Vec<u8> {
    let second = second % 300 + 1;
    json!({
        "event": "update", "deviceTimestamp": start_ms + u64::from(second - 1) * 1000,
        "second": second, "raceId": start_ms / 300_000, "name": format!("Rider {racer}"),
        "racerId": racer,
        "classId": CLASS, "cadence": cadence, "resistance": resistance
    })
    .to_string()
    .into_bytes()
}

/// Output in ten-thousandths of a probe with `cadence` (resistance 100: above every bike).
fn probe_output(cadence: f64) -> u64 {
    ((cadence + 35.0) * 165.0 / 100.0 * 10_000.0).round() as u64
}

/// Subscribes to the class's standings and resolves probes as their outputs show up.
async fn watch(
    stack: &Stack,
    probe: u32,
    probes: Probes,
    latencies: Arc<Mutex<Vec<Duration>>>,
) -> tokio::task::JoinHandle<()> {
    let (client, mut events) = client(stack, &format!("load-watcher-{probe}"));
    client
        .subscribe(subscribe_topic(CLASS), QoS::AtMostOnce)
        .await
        .unwrap();
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let _client = client;
        let mut ready_tx = Some(ready_tx);
        while let Ok(event) = events.poll().await {
            match event {
                Event::Incoming(Packet::SubAck(_)) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Event::Incoming(Packet::Publish(publish)) => {
                    let now = Instant::now();
                    let Ok(message) = serde_json::from_slice::<Value>(&publish.payload) else {
                        continue;
                    };
                    let Some(best) = message["top"].as_array().and_then(|top| {
                        top.iter()
                            .find(|entry| entry[0].as_u64() == Some(u64::from(probe)))
                            .and_then(|entry| entry[1].as_f64())
                    }) else {
                        continue;
                    };
                    let best = (best * 10_000.0).round() as u64;
                    let mut probes = probes.lock().unwrap();
                    let resolved: Vec<u64> = probes.range(..=best).map(|(k, _)| *k).collect();
                    let mut latencies = latencies.lock().unwrap();
                    for output in resolved {
                        let sent = probes.remove(&output).unwrap();
                        latencies.push(now - sent);
                    }
                }
                _ => {}
            }
        }
    });
    ready.await.unwrap();
    task
}

struct Outcome {
    unresolved: usize,
    published: u64,
    achieved: f64,
    caught_up_after: Option<Duration>,
    latencies: Vec<Duration>,
}

async fn run(stack: &Stack, args: &Args, rate: u32, round: u32) -> Outcome {
    // Every ride of this round starts now, in this race (see `message`).
    let start_ms = alleycat_local::now_ms();
    let probes: Probes = Arc::default();
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let probe_id = PROBE + round;
    let watcher = watch(stack, probe_id, Arc::clone(&probes), Arc::clone(&latencies)).await;
    let published = Arc::new(AtomicU64::new(0));
    let before = stack.status().stream_records;
    let started = Instant::now();
    let mut bikes = Vec::new();
    for c in 0..args.clients {
        let (client, mut events) = client(stack, &format!("load-{round}-{c}"));
        tokio::spawn(async move { while events.poll().await.is_ok() {} });
        let published = Arc::clone(&published);
        let share = rate / args.clients + u32::from(c < rate % args.clients);
        let seconds = args.seconds;
        bikes.push(tokio::spawn(async move {
            // 100 slots a second; slot i of second s sends its share of the second's messages.
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut sent = 0u64;
            for slot in 0..seconds * 100 {
                tick.tick().await;
                let due = u64::from(share) * u64::from(slot + 1) / 100;
                while sent < due {
                    let n = u32::try_from(sent).unwrap_or(u32::MAX);
                    let racer = (n * args_clients_stride(c)) % RACERS + 1;
                    let payload = message(
                        racer,
                        n / RACERS,
                        start_ms,
                        40.0 + f64::from(n % 50),
                        20.0 + f64::from(n % 61),
                    );
                    client
                        .publish(PUBLISH_TOPIC, QoS::AtLeastOnce, false, payload)
                        .await
                        .unwrap();
                    sent += 1;
                    published.fetch_add(1, Ordering::Relaxed);
                }
            }
            client
        }));
    }
    // The probe: ten messages a second, each output above the last.
    let (probe, mut probe_events) = client(stack, &format!("load-probe-{round}"));
    tokio::spawn(async move { while probe_events.poll().await.is_ok() {} });
    let mut tick =
        tokio::time::interval(Duration::from_millis(u64::from(1000 / PROBES_PER_SECOND)));
    let mut probes_sent = 0u64;
    for k in 0..args.seconds * PROBES_PER_SECOND {
        tick.tick().await;
        let cadence = 150.0 + f64::from(k) * 0.01;
        let payload = message(probe_id, k, start_ms, cadence, 100.0);
        probes
            .lock()
            .unwrap()
            .insert(probe_output(cadence), Instant::now());
        probe
            .publish(PUBLISH_TOPIC, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
        probes_sent += 1;
    }
    for bike in bikes {
        drop(bike.await.unwrap());
    }
    let elapsed = started.elapsed();
    let total = published.load(Ordering::Relaxed) + probes_sent;
    let expected = before + total;
    let done_at = Instant::now();
    let mut caught_up_after = None;
    while done_at.elapsed() < Duration::from_secs(120) {
        let status = stack.status();
        let aggregator_done = status
            .consumers
            .iter()
            .filter(|c| c.consumer.starts_with("race-aggregator"))
            .all(alleycat_local::stack::Lag::caught_up);
        if status.stream_records >= expected && aggregator_done {
            caught_up_after = Some(done_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Probes still unresolved now never were: they count as lost.
    tokio::time::sleep(Duration::from_secs(1)).await;
    watcher.abort();
    let latencies = latencies.lock().unwrap().clone();
    let unresolved = probes.lock().unwrap().len();
    Outcome {
        unresolved,
        published: total,
        achieved: published.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
        caught_up_after,
        latencies,
    }
}

/// Spreads each client's messages over all racers.
fn args_clients_stride(client: u32) -> u32 {
    [1, 7, 11, 13, 17, 19, 23, 29][client as usize % 8]
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().unwrap();
    let stack_args = StackArgs {
        data_dir: dir.path().join("data"),
        http_port: free_port(),
        mqtt_port: free_port(),
        ws_port: free_port(),
        aggregator_batching_window_ms: args.batching_window_ms,
        publish_interval_ms: args.publish_interval_ms,
        ..StackArgs::default()
    };
    let stack = Stack::start(stack_args.config())
        .await
        .expect("the stack starts");
    println!(
        "| rate (msg/s) | achieved | published | caught up after | probes seen | p50 | p99 | max | sustained |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (round, &rate) in (1..).zip(&args.rate) {
        let outcome = run(&stack, &args, rate, round).await;
        let mut sorted = outcome.latencies.clone();
        sorted.sort();
        let sustained = outcome.achieved >= f64::from(rate) * 0.98
            && outcome.unresolved == 0
            && outcome
                .caught_up_after
                .is_some_and(|d| d < Duration::from_secs(5));
        println!(
            "| {rate} | {:.0} | {} | {} | {}/{} | {:.1} ms | {:.1} ms | {:.1} ms | {} |",
            outcome.achieved,
            outcome.published,
            outcome
                .caught_up_after
                .map_or("not in 120 s".to_owned(), |d| format!(
                    "{:.2} s",
                    d.as_secs_f64()
                )),
            sorted.len(),
            sorted.len() + outcome.unresolved,
            quantile(&sorted, 0.5),
            quantile(&sorted, 0.99),
            quantile(&sorted, 1.0),
            if sustained { "yes" } else { "no" },
        );
    }
    let status = stack.status();
    let totals = &status.functions;
    let counter = |f: &str, c: &str| {
        totals
            .get(f)
            .and_then(|t| t.counters.get(c))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "\nstream records {}, ingest {}, race-aggregator read {} (rejected {}), on-failure {:?}",
        status.stream_records,
        counter("ingest", "Messages"),
        counter("race-aggregator", "RecordsIn"),
        counter("race-aggregator", "Rejected"),
        status.on_failure
    );
    let lost = status.stream_records != counter("race-aggregator", "RecordsIn")
        || counter("race-aggregator", "Rejected") != 0;
    stack.shutdown().await;
    if lost {
        eprintln!("error: the stack did not account for every message");
        std::process::exit(1);
    }
}
