//! The default target end to end: the simulator rides 1,000 racers through the embedded stack
//! (in-process, as `cargo run -p simulator` does), and every view the stack computed — race
//! standings, finals, the class leaderboard, racer bests and traces, the top-K history object and
//! the live standings on MQTT — is compared with an oracle recomputed here, independently and
//! plainly, from the stdout dump of the same race.
//!
//! A second test publishes bad input to the broker, as a broken producer would, and checks that it
//! is counted as rejected and changes nothing else.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alleycat_domain::views::{PUBLISH_TOPIC, subscribe_topic};
use alleycat_local::Stack;
use alleycat_local::config::StackArgs;
use alleycat_local::testing::{
    Oracle, assert_views, free_port, get, http_get, mqtt_options, operator_options,
};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use serde_json::Value;
use simulator::sink::LocalSink;
use simulator::{Race, RacePlan, Stats, Stop, run};

const CLASS: u8 = 2;
const SECONDS: u16 = 20;
const RACERS: u32 = 1000;
const TOP_K: usize = 100;

async fn start_stack(dir: &std::path::Path) -> Arc<Stack> {
    let args = StackArgs {
        data_dir: dir.join("data"),
        http_port: free_port(),
        mqtt_port: free_port(),
        ws_port: free_port(),
        race_seconds: SECONDS,
        firehose_interval_seconds: 1,
        leaderboard_batching_window_ms: 100,
        ..StackArgs::default()
    };
    Arc::new(Stack::start(args.config()).await.expect("the stack starts"))
}

/// Subscribes to a class's realtime topic; returns every message received.
async fn subscribe(stack: &Stack, topic: String) -> Arc<Mutex<Vec<Value>>> {
    // Anonymous, as a browser before it has an identity: listening is all it may do.
    let options = mqtt_options(stack, &format!("watcher-{}", fastrand::u32(..)));
    let (client, mut events) = AsyncClient::new(options, 100);
    client.subscribe(topic, QoS::AtMostOnce).await.unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&received);
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _client = client;
        let mut subscribed_tx = Some(subscribed_tx);
        while let Ok(event) = events.poll().await {
            match event {
                Event::Incoming(Packet::SubAck(_)) => {
                    if let Some(tx) = subscribed_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Event::Incoming(Packet::Publish(publish)) => {
                    sink.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&publish.payload).unwrap());
                }
                _ => {}
            }
        }
    });
    subscribed.await.expect("subscribed");
    received
}

/// The race's cost breakdown counts what the stack did, in AWS's units: checked here against
/// what can be recounted independently (the dump, the buckets, the table's change log, the
/// functions' own counters).
fn assert_counted_operations(stack: &Stack, records: u64) {
    use alleycat_cost::units;

    let usage = stack.usage();
    // Every record one Kinesis PUT payload unit (they are far below 25 KB) and one Firehose
    // record billed as 5 KB.
    assert_eq!(
        (usage.kinesis_records, usage.kinesis_put_units),
        (records, records)
    );
    assert_eq!(usage.firehose_records, records);
    assert_eq!(usage.firehose_billed_bytes, records * 5 * 1024);
    // No bike published over MQTT: the simulator put the records directly.
    assert_eq!(usage.iot_messages_in, 0);
    // Every invocation the sources made is billed once, at the template's memory.
    let totals = stack.invocations().snapshot();
    for (function, lambda) in &usage.lambda {
        assert_eq!(
            lambda.invocations,
            totals[function.as_str()].invocations,
            "{function}"
        );
        assert!(lambda.billed_ms >= lambda.invocations, "{function}");
    }
    assert_eq!(usage.lambda["history-merger"].memory_mb, 1024);
    assert_eq!(usage.lambda["race-aggregator"].memory_mb, 256);
    // Every table write is in the change log: recount its write units from the images, with one
    // more copy for each index listing the item; no condition was refused in this race.
    let counter = |f: &str, c: &str| stack.invocations().counter(f, c);
    assert_eq!(counter("race-aggregator", "Conflicts"), 0);
    assert_eq!(counter("leaderboard-writer", "NoNewRecord"), 0);
    assert_eq!(counter("history-merger", "Conflicts"), 0);
    let changes = stack.table().changes_after(0, usize::MAX).unwrap();
    let recounted: u64 = changes
        .iter()
        .map(|change| {
            let new = change.new_image.as_ref().unwrap();
            let size = units::item_size(new);
            let old = change.old_image.as_ref().map_or(0, units::item_size);
            let indexes =
                u64::from(new.contains_key("gsi1pk")) + u64::from(new.contains_key("best"));
            units::dynamodb_write_units(size.max(old)) + indexes * units::dynamodb_write_units(size)
        })
        .sum();
    assert_eq!(usage.dynamodb_write_units, recounted);
    // S3: every delivery object was written once and read once by the merger; every history
    // write is a PUT.
    let delivered = stack.delivery().keys("raw/").len() as u64;
    let history_writes = counter("history-merger", "HistoryWrites");
    assert_eq!(usage.s3_puts, delivered + history_writes);
    assert!(usage.s3_gets >= delivered, "{} GETs", usage.s3_gets);
    // Each standings message is at least one IoT message, delivered (modeled) to every racer.
    let published = counter("publisher", "Published");
    assert!(usage.iot_messages_published >= published && published > 0);
    assert!(usage.iot_deliveries_modeled >= usage.iot_messages_published);
    let bill = stack.bill("us-east-1").unwrap();
    assert!(bill.total > 0.0);
    assert!(bill.render().contains("PUT payload units"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_race_through_the_embedded_stack_matches_the_oracle_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(dir.path()).await;
    let live = subscribe(&stack, subscribe_topic(CLASS)).await;
    let plan = RacePlan {
        seed: 11,
        class_id: CLASS,
        racers: RACERS,
        first_racer_id: 1,
        seconds: SECONDS,
        window_seconds: 300,
        start_ms: alleycat_local::now_ms(),
        start_offset_spread: 0,
    };
    let dump = common::oracle(&plan);
    assert_eq!(dump.len(), (RACERS * u32::from(SECONDS)) as usize);

    let mut race = Race::new(&plan);
    let stats = Arc::new(Stats::default());
    let keys = (0..RACERS)
        .map(|racer| Arc::clone(race.partition_key(racer)))
        .collect();
    let sink = LocalSink::new(Arc::clone(&stack), keys, Arc::clone(&stats));
    run(&mut race, sink, &stats, 20.0, &Stop::default())
        .await
        .expect("the race is delivered");
    assert_eq!(Stats::get(&stats.sent), dump.len() as u64);
    assert!(
        stack.wait_idle(Duration::from_secs(120)).await,
        "the stack did not catch up: {:?}",
        stack.status()
    );
    let status = stack.status();
    assert!(status.on_failure.is_empty(), "{:?}", status.on_failure);
    assert_eq!(
        stack.invocations().counter("race-aggregator", "RecordsIn"),
        dump.len() as u64
    );
    assert_eq!(
        stack.invocations().counter("race-aggregator", "Rejected"),
        0
    );

    assert_counted_operations(&stack, dump.len() as u64);
    let oracle = Oracle::of(&dump, SECONDS, TOP_K);
    let api = stack.api_url();
    let race_id = plan.race_id();
    let expected_live = oracle.standings.clone();
    tokio::task::spawn_blocking(move || assert_views(&api, &oracle))
        .await
        .expect("every view matches the oracle");

    // The live standings converge to the race's results.
    let last = live
        .lock()
        .unwrap()
        .iter()
        .rfind(|m| m["raceId"].as_u64() == Some(race_id))
        .cloned()
        .expect("standings were published on MQTT");
    assert_eq!(last["classId"], CLASS);
    assert_eq!(last["msg"], "results");
    let results: BTreeMap<u64, f64> = last["results"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(racer, output)| (racer.parse().unwrap(), output.as_f64().unwrap()))
        .collect();
    assert_eq!(results, expected_live, "the last realtime message");
    Arc::try_unwrap(stack)
        .ok()
        .expect("one owner")
        .shutdown()
        .await;
}

/// Bad messages of every kind, and two good ones (racer 1, seconds 1 and the final).
fn payloads(now: u64) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let race_id = now / 300_000;
    let good = |racer: u32, second: u16| {
        serde_json::json!({
            "event": if second == SECONDS { "final" } else { "update" },
            "deviceTimestamp": now, "second": second, "raceId": race_id, "name": "Good",
            "racerId": racer, "classId": CLASS, "cadence": 80.0, "resistance": 50.0
        })
        .to_string()
        .into_bytes()
    };
    let mut wrong_types: Value = serde_json::from_slice(&good(2, 3)).unwrap();
    wrong_types["cadence"] = Value::from("fast");
    let mut out_of_range: Value = serde_json::from_slice(&good(3, 3)).unwrap();
    out_of_range["resistance"] = Value::from(400);
    let mut huge: Value = serde_json::from_slice(&good(4, 3)).unwrap();
    huge["name"] = Value::from("x".repeat(100 * 1024));
    let bad: Vec<Vec<u8>> = vec![
        vec![0xff, 0x00, 0x13, 0x37],
        b"{\"racerId\": ".to_vec(),
        wrong_types.to_string().into_bytes(),
        out_of_range.to_string().into_bytes(),
        huge.to_string().into_bytes(),
        b"[1,2,3]".to_vec(),
    ];
    (bad, vec![good(1, 1), good(1, SECONDS)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_the_broker_is_rejected_and_changes_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(dir.path()).await;
    // As the operator (the trusted producer): the gate lets it publish anything to
    // alleycat-publish, so the bad input reaches the stream and is counted there.
    let options = operator_options(&stack, "broken-bike");
    let (client, mut events) = AsyncClient::new(options, 100);
    let acks = tokio::spawn(async move {
        let mut acks = 0;
        while acks < 8 {
            if let Ok(Event::Incoming(Packet::PubAck(_))) = events.poll().await {
                acks += 1;
            }
        }
    });
    let now = alleycat_local::now_ms();
    let race_id = now / 300_000;
    let (bad, good) = payloads(now);
    let payloads: Vec<Vec<u8>> = bad.iter().cloned().chain(good).collect();
    for payload in payloads {
        client
            .publish(PUBLISH_TOPIC, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
    tokio::time::timeout(Duration::from_secs(30), acks)
        .await
        .expect("the broker acknowledged every publish")
        .unwrap();
    // Wait until the ingest rule has appended all eight, then until everything is processed.
    for _ in 0..200 {
        if stack.status().stream_records == 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stack.status().stream_records, 8);
    assert!(
        stack.wait_idle(Duration::from_secs(60)).await,
        "{:?}",
        stack.status()
    );

    let invocations = stack.invocations();
    assert_eq!(invocations.counter("race-aggregator", "RecordsIn"), 8);
    assert_eq!(
        invocations.counter("race-aggregator", "Rejected"),
        bad.len() as u64
    );
    assert_eq!(invocations.counter("transformer", "RecordsIn"), 8);
    assert_eq!(
        invocations.counter("firehose", "ProcessingFailed"),
        bad.len() as u64
    );
    assert!(stack.status().on_failure.is_empty());
    assert_eq!(stack.delivery().keys("processing-failed/").len(), 1);

    // Only the good racer is anywhere.
    let api = stack.api_url();
    tokio::task::spawn_blocking(move || {
        let view = get(&format!("{api}/races/{race_id}?classId={CLASS}"));
        let racers: Vec<u64> = view["standings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["racerId"].as_u64().unwrap())
            .collect();
        assert_eq!(racers, [1]);
        assert_eq!(view["standings"][0]["output"].as_f64(), Some(132.25));
        let board = get(&format!("{api}/leaderboard?classId={CLASS}"));
        assert_eq!(board["entries"].as_array().unwrap().len(), 1);
        for racer in [2, 3, 4] {
            let (status, _) =
                http_get(&format!("{api}/racers/{racer}/bests?classId={CLASS}")).unwrap();
            assert_eq!(status, 404, "racer {racer} has no bests");
        }
    })
    .await
    .unwrap();
    Arc::try_unwrap(stack)
        .ok()
        .expect("one owner")
        .shutdown()
        .await;
}
