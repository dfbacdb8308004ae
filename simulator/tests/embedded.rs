//! The default target end to end: the simulator rides 1,000 racers through the embedded stack
//! (in-process, as `cargo run -p simulator` does), and every view the stack computed — race
//! standings, finals, the class leaderboard, racer bests and traces, the top-K history object and
//! the live standings on MQTT — is compared with an oracle recomputed here, independently and
//! plainly, from the stdout dump of the same race. Its racers have the largest ids there are
//! (999,001 to 1,000,000), so the live message is measured at its largest: one IoT Core unit
//! (5 KB) or less, at most one per race per second.
//!
//! A second test publishes bad input to the broker, as a broken producer would, and checks that it
//! is counted as rejected and changes nothing else. A third rides forgeries over MQTT beside a
//! fair race, as a cheater with the page's public credentials would: none moves a view, each is
//! counted under its rule, and the fair race is exactly its oracle. A fourth rides the README's
//! flow: the main job's short form in class 1 beside a racer picked in the page, who stay apart.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alleycat_domain::views::{PUBLISH_TOPIC, subscribe_topic};
use alleycat_local::Stack;
use alleycat_local::config::StackArgs;
use alleycat_local::testing::{
    Oracle, assert_views, free_port, get, http_get, identity_options, mqtt_options,
    operator_options,
};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use serde_json::Value;
use simulator::sink::LocalSink;
use simulator::{Race, RacePlan, Stats, Stop, run};

const CLASS: u8 = 2;
const SECONDS: u16 = 20;
const RACERS: u32 = 1000;
const TOP_K: usize = 100;
/// The first racer id of the big race: its 1,000 racers end at the largest id a message may carry.
const FIRST_RACER: u32 = 1_000_000 - RACERS + 1;

async fn start_stack(dir: &std::path::Path) -> Arc<Stack> {
    start_stack_for(dir, SECONDS, 300).await
}

/// A stack on free ports in `dir` whose races last `race_seconds` in start windows of
/// `window_seconds`, quick to flush (Firehose every second, leaderboard batches of 100 ms).
async fn start_stack_for(
    dir: &std::path::Path,
    race_seconds: u16,
    window_seconds: u32,
) -> Arc<Stack> {
    let args = StackArgs {
        data_dir: dir.join("data"),
        http_port: free_port(),
        mqtt_port: free_port(),
        ws_port: free_port(),
        race_seconds,
        window_seconds,
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
    // more copy for each index listing the item, and twice for the leaderboard's rows and rank
    // counts, which the writer changes together in transactions (DynamoDB bills a
    // `TransactWriteItems` item twice); no condition was refused in this race.
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
            let transactional = matches!(
                new.get("pk"),
                Some(serde_dynamo::AttributeValue::S(pk)) if pk.starts_with("class#")
            );
            let units = units::dynamodb_write_units(size.max(old))
                + indexes * units::dynamodb_write_units(size);
            if transactional { 2 * units } else { units }
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
        first_racer_id: FIRST_RACER,
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
    // Four seconds of riding at least, so that the race changes after its first live message
    // and pacing has something to pace.
    run(&mut race, sink, &stats, 5.0, &Stop::default())
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
    assert_live_message_is_the_oracles(&last, &expected_live);
    // Measured as the publisher handed them to the broker: each message one IoT Core unit, and
    // never two of the race within a second.
    let tally = stack.live()[&(CLASS, race_id)];
    eprintln!(
        "live messages of {RACERS} racers with ids up to 1,000,000: {} messages, largest {} \
         bytes, shortest gap {:?}",
        tally.messages, tally.largest_bytes, tally.shortest_gap
    );
    assert!(
        tally.largest_bytes <= 5 * 1024,
        "{} bytes",
        tally.largest_bytes
    );
    assert!(
        tally.messages >= 2,
        "the race changed after its first message"
    );
    // The meter stamps a message a moment after the publisher's pacer does (the pacer at the
    // start of the publish, the meter inside it): a few milliseconds of slack for that moment.
    let gap = tally.shortest_gap.expect("two messages or more");
    assert!(
        gap >= Duration::from_millis(990),
        "two messages {gap:?} apart"
    );
    Arc::try_unwrap(stack)
        .ok()
        .expect("one owner")
        .shutdown()
        .await;
}

/// A live message (`msg: standings`) holds what a bike shows, as the oracle says: how many ride,
/// the top 20 exactly, and every racer's best counted so that each racer's rank computed from
/// the counts is its rank in the race (equal outputs share the best rank of the tie).
fn assert_live_message_is_the_oracles(message: &Value, standings: &BTreeMap<u64, f64>) {
    use alleycat_domain::Output;
    use alleycat_domain::live::Bests;

    assert_eq!(message["msg"], "standings");
    assert_eq!(message["riders"].as_u64(), Some(standings.len() as u64));
    let mut ranked: Vec<(u64, f64)> = standings.iter().map(|(r, o)| (*r, *o)).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let top: Vec<(u64, f64)> = message["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| (pair[0].as_u64().unwrap(), pair[1].as_f64().unwrap()))
        .collect();
    assert_eq!(top, ranked[..20], "the top 20");
    let bests: Bests = serde_json::from_value(message["bests"].clone()).unwrap();
    let step = u64::from(bests.step);
    let bucket =
        |output: f64| u64::from(Output::from_f64(output).unwrap().ten_thousandths()) / step;
    for (racer, output) in &ranked {
        let above = ranked
            .iter()
            .filter(|(_, o)| bucket(*o) > bucket(*output))
            .count();
        let own = Output::from_f64(*output).unwrap();
        assert_eq!(
            bests.rank_of(own).unwrap(),
            above as u64 + 1,
            "racer {racer}'s rank at step {step}"
        );
    }
    let counted: u64 = bests.buckets().unwrap().iter().map(|(_, n)| n).sum();
    assert_eq!(counted, standings.len() as u64);
}

/// Bad messages of every kind, and two good ones (racer 1, seconds 1 and the final).
fn payloads(now: u64) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let race_id = now / 300_000;
    let good = |racer: u32, second: u16| {
        serde_json::json!({
            "event": if second == SECONDS { "final" } else { "update" },
            "deviceTimestamp": now + (u64::from(second) - 1) * 1000, "second": second,
            "raceId": race_id, "name": "Good",
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

/// Waits until the stream holds `records` records (MQTT publishes arrive through the broker's
/// rule a moment after their ack) and every consumer has processed them.
async fn wait_processed(stack: &Stack, records: u64) {
    for _ in 0..400 {
        if stack.status().stream_records == records {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stack.status().stream_records, records);
    assert!(
        stack.wait_idle(Duration::from_secs(120)).await,
        "{:?}",
        stack.status()
    );
}

/// One device message of `racer` at `second` of a ride in [`CLASS`] that started at `start_ms`,
/// in race `race_id` (consistent unless a forgery makes it not).
fn message(racer: u32, second: u16, start_ms: u64, race_id: u64, effort: (f64, f64)) -> Vec<u8> {
    let ride = Ride {
        class_id: CLASS,
        seconds: SECONDS,
        start_ms,
        race_id,
    };
    ride.message(racer, second, effort)
}

/// A ride of one racer as a bike (or the page) sends it: its class, length, start and race.
struct Ride {
    class_id: u8,
    seconds: u16,
    start_ms: u64,
    race_id: u64,
}

impl Ride {
    /// The device message of `racer` at `second`, the last one `final`.
    fn message(&self, racer: u32, second: u16, effort: (f64, f64)) -> Vec<u8> {
        serde_json::json!({
            "event": if second == self.seconds { "final" } else { "update" },
            "deviceTimestamp": self.start_ms + (u64::from(second) - 1) * 1000, "second": second,
            "raceId": self.race_id, "name": format!("Racer {racer}"), "racerId": racer,
            "classId": self.class_id, "cadence": effort.0, "resistance": effort.1
        })
        .to_string()
        .into_bytes()
    }
}

/// Publishes `payloads` to `alleycat-publish` as `options`' client, QoS 1, waiting for every ack.
async fn publish_all(options: rumqttc::MqttOptions, payloads: Vec<Vec<u8>>) {
    let (client, mut events) = AsyncClient::new(options, 100);
    let expected = payloads.len();
    let acks = tokio::spawn(async move {
        let mut acks = 0;
        while acks < expected {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acks += 1,
                Ok(_) => {}
                Err(error) => panic!("the connection failed: {error}"),
            }
        }
    });
    for payload in payloads {
        client
            .publish(PUBLISH_TOPIC, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
    tokio::time::timeout(Duration::from_secs(30), acks)
        .await
        .expect("every publish acknowledged")
        .unwrap();
}

/// Mallory's forgeries, each breaking one rule: for Alice's racer 7 (held by Alice) or Mallory's
/// own racer 99, in the fair race `race_id` that started at `now`.
fn forgeries(now: u64, race_id: u64) -> Vec<Vec<u8>> {
    let window = 300_000;
    let year = 365 * 86_400_000;
    vec![
        // The highest final the schema allows, for Alice's racer.
        message(7, SECONDS, now, race_id, (250.0, 100.0)),
        // Alice's racer ridden by someone else, second by second.
        message(7, 3, now, race_id, (200.0, 90.0)),
        // A race a year ahead, consistently forged: its start is in the future.
        message(99, 1, now + year, (now + year) / window, (90.0, 50.0)),
        // "Race 1" (1970), with today's clock: not the race of the ride's start.
        message(99, 2, now, 1, (90.0, 50.0)),
        // A ride starting 10 minutes from now: beyond the clock-skew allowance.
        message(99, 1, now + 600_000, (now + 600_000) / window, (90.0, 50.0)),
        // A race that closed long ago, consistently forged.
        message(
            99,
            5,
            now - 3_600_000,
            (now - 3_600_000) / window,
            (90.0, 50.0),
        ),
    ]
}

/// Each of [`forgeries`] counted under its rule, by every function that judged it.
fn assert_forgeries_counted(stack: &Stack) {
    let counter = |function: &str, name: &str| stack.invocations().counter(function, name);
    let rules = |function: &str| -> Vec<(&str, u64)> {
        alleycat_lambda::rejection_metrics()
            .map(|metric| (metric.name(), counter(function, metric.name())))
            .filter(|(_, n)| *n > 0)
            .collect()
    };
    eprintln!("race-aggregator rejections: {:?}", rules("race-aggregator"));
    eprintln!("transformer rejections: {:?}", rules("transformer"));
    eprintln!(
        "race-aggregator: {:?}",
        stack.status().functions.get("race-aggregator")
    );
    assert_eq!(counter("race-aggregator", "Rejected"), 6);
    assert_eq!(counter("transformer", "Rejected"), 4);
    for function in ["race-aggregator", "transformer"] {
        assert_eq!(counter(function, "Rejected.future"), 2, "{function}");
        assert_eq!(counter(function, "Rejected.race_mismatch"), 1, "{function}");
        assert_eq!(counter(function, "Rejected.closed"), 1, "{function}");
    }
    // The transformer cannot read claims: the history merger applies the holder rule.
    assert_eq!(counter("race-aggregator", "Rejected.not_holder"), 2);
    assert_eq!(counter("history-merger", "Rejected.not_holder"), 2);
    // The leaderboard writer sees finals only: the fair race's, and Mallory's forged one.
    assert_eq!(counter("leaderboard-writer", "Rejected.not_holder"), 1);
    assert_eq!(counter("leaderboard-writer", "Finals"), 51);
}

/// `POST /api/racers/{racer}/claim` as `identity`: the status.
fn claim(api: &str, identity: &alleycat_local::identity::Identity, racer: u32) -> u16 {
    let authorization = format!("Alleycat {}:{}", identity.identity_id, identity.token);
    alleycat_local::testing::http(
        "POST",
        &format!("{api}/racers/{racer}/claim"),
        &[("Authorization", &authorization)],
        b"",
    )
    .unwrap()
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgeries_beside_a_fair_race_move_no_view_and_are_counted_by_rule() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(dir.path()).await;
    let api = stack.api_url();
    let alice = stack.identities().issue().unwrap();
    let mallory = stack.identities().issue().unwrap();
    // Alice holds racer 7, Mallory racer 99; Mallory cannot take racer 7.
    let (a, m, taken) = {
        let (api, alice, mallory) = (api.clone(), alice.clone(), mallory.clone());
        tokio::task::spawn_blocking(move || {
            (
                claim(&api, &alice, 7),
                claim(&api, &mallory, 99),
                claim(&api, &mallory, 7),
            )
        })
        .await
        .unwrap()
    };
    assert_eq!((a, m, taken), (200, 200, 409));

    // The fair race: 50 simulated racers (the trusted producer) and Alice on racer 7 over MQTT.
    let now = alleycat_local::now_ms();
    let window = 300_000;
    let race_id = now / window;
    let plan = RacePlan {
        seed: 5,
        class_id: CLASS,
        racers: 50,
        first_racer_id: 100,
        seconds: SECONDS,
        window_seconds: 300,
        start_ms: now,
        start_offset_spread: 0,
    };
    let mut dump = common::oracle(&plan);
    let alice_ride: Vec<Vec<u8>> = (1..=SECONDS)
        .map(|second| message(7, second, now, race_id, (80.0, 60.0)))
        .collect();
    dump.extend(alice_ride.iter().cloned());

    let forgeries = forgeries(now, race_id);

    let mut race = Race::new(&plan);
    let stats = Arc::new(Stats::default());
    let keys = (0..plan.racers)
        .map(|racer| Arc::clone(race.partition_key(racer)))
        .collect();
    let sink = LocalSink::new(Arc::clone(&stack), keys, Arc::clone(&stats));
    let stop = Stop::default();
    let (fair, (), ()) = tokio::join!(
        run(&mut race, sink, &stats, 20.0, &stop),
        publish_all(identity_options(&stack, &alice), alice_ride),
        publish_all(identity_options(&stack, &mallory), forgeries),
    );
    fair.expect("the fair race is delivered");
    wait_processed(&stack, dump.len() as u64 + 6).await;

    assert_forgeries_counted(&stack);

    let oracle = Oracle::of(&dump, SECONDS, TOP_K);
    tokio::task::spawn_blocking(move || {
        assert_views(&api, &oracle);
        // No forged race exists anywhere: the class's only race is the fair one.
        let races = get(&format!("{api}/races?classId={CLASS}"));
        let ids: Vec<u64> = races["races"]
            .as_array()
            .unwrap()
            .iter()
            .map(|race| race["raceId"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [race_id]);
        let (status, _) = http_get(&format!("{api}/racers/99/bests?classId={CLASS}")).unwrap();
        assert_eq!(status, 404, "Mallory's racer has no bests");
    })
    .await
    .expect("every view is the fair race's");
    Arc::try_unwrap(stack)
        .ok()
        .expect("one owner")
        .shutdown()
        .await;
}

/// The racers the browser page offers (`frontend/src/roster.ts`).
const PAGE_RACERS: std::ops::RangeInclusive<u32> = 1..=100;

/// The README's flow: the main job's short form (`--racers 1000 --seconds 30 --speed 10
/// --exit-when-done`, parsed as its command line) rides class 1 while a person picks racer 42 in
/// the page and rides it in the same race, as the page does (its identity's claim, then a
/// message a second over MQTT). The two stay apart: the simulator's racers are none of the
/// page's, racer 42's standings row, final, trace and leaderboard row are its ride alone, every
/// simulated racer's views are exactly their oracle, and the race's standings show the page
/// racer 42 as its only racer riding now, which is what the page lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_flow_keeps_the_pages_racer_apart_from_the_simulators() {
    use clap::Parser;
    const PAGE_RACER: u32 = 42;
    let cli = simulator::Cli::try_parse_from([
        "simulator",
        "--racers",
        "1000",
        "--seconds",
        "30",
        "--speed",
        "10",
        "--exit-when-done",
    ])
    .unwrap();
    cli.check().expect("the README's command is valid");
    let now = alleycat_local::now_ms();
    let plan = cli.plan(now);
    assert_eq!(plan.class_id, 1, "the main job rides class 1");
    let simulated = plan.first_racer_id..plan.first_racer_id + plan.racers;
    assert!(
        PAGE_RACERS.clone().all(|id| !simulated.contains(&id)),
        "the simulator rides racers {simulated:?}, some of them the page's"
    );

    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack_for(dir.path(), plan.seconds, plan.window_seconds).await;
    let api = stack.api_url();
    let rider = stack.identities().issue().unwrap();
    let claimed = {
        let (api, rider) = (api.clone(), rider.clone());
        tokio::task::spawn_blocking(move || claim(&api, &rider, PAGE_RACER))
            .await
            .unwrap()
    };
    assert_eq!(claimed, 200, "the page claims its racer");

    let ride = Ride {
        class_id: plan.class_id,
        seconds: plan.seconds,
        start_ms: now,
        race_id: plan.race_id(),
    };
    let page_ride: Vec<Vec<u8>> = (1..=plan.seconds)
        .map(|second| ride.message(PAGE_RACER, second, (70.0 + f64::from(second % 7), 55.0)))
        .collect();
    let simulated_dump = common::oracle(&plan);
    let mut dump = simulated_dump.clone();
    dump.extend(page_ride.iter().cloned());

    let mut race = Race::new(&plan);
    let stats = Arc::new(Stats::default());
    let keys = (0..plan.racers)
        .map(|racer| Arc::clone(race.partition_key(racer)))
        .collect();
    let sink = LocalSink::new(Arc::clone(&stack), keys, Arc::clone(&stats));
    let stop = Stop::default();
    let (simulator, ()) = tokio::join!(
        run(&mut race, sink, &stats, cli.speed, &stop),
        publish_all(identity_options(&stack, &rider), page_ride.clone()),
    );
    simulator.expect("the simulator's race is delivered");
    wait_processed(&stack, dump.len() as u64).await;
    assert_eq!(
        stack.invocations().counter("race-aggregator", "Rejected"),
        0
    );

    let everyone = Oracle::of(&dump, plan.seconds, TOP_K);
    let simulated_only = Oracle::of(&simulated_dump, plan.seconds, TOP_K);
    let page_only = Oracle::of(&page_ride, plan.seconds, TOP_K);
    let page = u64::from(PAGE_RACER);
    // Had the two shared a racer, its row would be the better of both rides, not the page's.
    assert_eq!(
        everyone.standings.get(&page),
        page_only.standings.get(&page)
    );
    for (racer, best) in &simulated_only.standings {
        assert_eq!(everyone.standings.get(racer), Some(best), "racer {racer}");
    }
    let race = (plan.class_id, plan.race_id());
    tokio::task::spawn_blocking(move || {
        assert_views(&api, &everyone);
        assert_page_racer_apart(&api, race, page, &page_only);
    })
    .await
    .expect("the page's racer and the simulator's racers stay apart");
    Arc::try_unwrap(stack)
        .ok()
        .expect("one owner")
        .shutdown()
        .await;
}

/// The views of the page's racer `page` in race `(class, race_id)` are its own ride
/// (`page_only`), and it is the only one of the page's racers in the race's standings (which is
/// what the page lists as riding now).
fn assert_page_racer_apart(api: &str, (class, race_id): (u8, u64), page: u64, page_only: &Oracle) {
    let standings = get(&format!("{api}/races/{race_id}?classId={class}"));
    let rows = standings["standings"].as_array().unwrap();
    let riding_page_racers: Vec<u64> = rows
        .iter()
        .map(|row| row["racerId"].as_u64().unwrap())
        .filter(|id| PAGE_RACERS.contains(&u32::try_from(*id).unwrap()))
        .collect();
    assert_eq!(riding_page_racers, [page], "the page's racers riding now");
    let own = rows.iter().find(|row| row["racerId"] == page).unwrap();
    assert_eq!(own["output"].as_f64(), Some(page_only.standings[&page]));
    let finals = get(&format!("{api}/races/{race_id}/finals?classId={class}"));
    let own = finals["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["racerId"] == page)
        .expect("the page's racer finished");
    assert_eq!(own["output"].as_f64(), Some(page_only.finals[&page].1));
    let trace = get(&format!(
        "{api}/racers/{page}/races/{race_id}?classId={class}"
    ));
    let seconds: Vec<Option<f64>> = trace["seconds"]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::as_f64)
        .collect();
    assert_eq!(seconds, page_only.seconds[&page], "the page racer's trace");
}
