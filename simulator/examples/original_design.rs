//! What one race costs under the original Alleycat design, counted by replaying the race's
//! messages through that design's access pattern (the model of `docs/cost.md`) and measuring
//! every item and object it would write, in AWS's billing units (`alleycat-cost`).
//!
//! ```text
//! cargo run --release -p simulator --example original_design -- --racers 1000 --seconds 300
//! ```
//!
//! The model, as `docs/cost.md` states it: the race aggregator reads and rewrites the race's
//! whole standings item once per Kinesis batch of `--batch-size` records (Lambda's default
//! batch of 100; no batching window); every record also updates the racer's item of the race,
//! which grows by one second each time; the history object of the class holds every racer's
//! best at every second, for all `--customers` of the service spread over 6 classes, and is read
//! and rewritten for every Firehose object (1 MiB of records). Prints one JSON object of counts.

use std::collections::HashMap;

use alleycat_cost::units;
use alleycat_domain::{ClassHistory, Output, Reading};
use serde_dynamo::AttributeValue;
use simulator::{Batch, Race, RacePlan};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn n(value: &impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn main() {
    let racers = u32::try_from(arg("--racers", 1000)).unwrap();
    let seconds = u16::try_from(arg("--seconds", 300)).unwrap();
    let batch_size = usize::try_from(arg("--batch-size", 100)).unwrap();
    let customers = u32::try_from(arg("--customers", 40_000)).unwrap();
    let plan = RacePlan {
        racers,
        seconds,
        ..RacePlan::default()
    };
    let clock = plan.clock();
    let mut race = Race::new(&plan);
    let mut batch = Batch::default();
    let mut messages = Vec::new();
    while race.next_batch(&mut batch) {
        messages.extend((0..batch.records.len()).map(|i| batch.message(i).to_vec()));
    }

    // Sizes are kept as running sums, by DynamoDB's rules (`units::value_size`): a map or list
    // is 3 bytes plus, per element, 1 byte, its key (maps) and its value.
    let key_bytes = |pk: &str, sk: &str| ("pk".len() + pk.len() + "sk".len() + sk.len()) as u64;
    let standings_key = key_bytes("race#5400172", "standings") + "results".len() as u64;
    // Standings: one read and one write of the whole item per batch.
    let mut standings: HashMap<u32, Output> = HashMap::new();
    let mut standings_map = 3u64;
    let (mut wru, mut rru_halves) = (0u64, 0u64);
    let mut batches = 0u64;
    // Per-racer items of the race: the seconds ridden so far, one more each record.
    let mut traces: HashMap<u32, u64> = HashMap::new();
    let mut per_racer_writes = 0u64;
    let mut delivery_bytes = 0u64;
    let (mut published, mut deliveries) = (0u64, 0u64);
    for chunk in messages.chunks(batch_size) {
        batches += 1;
        rru_halves += units::dynamodb_read_half_units(standings_key + standings_map, true);
        for message in chunk {
            delivery_bytes += message.len() as u64 + 20; // the transformer adds `"output":…`
            let reading = Reading::from_json(message, clock).expect("valid messages");
            let output = reading.output;
            let entry = |output: Output| {
                1 + reading.racer_id.to_string().len() as u64 + units::value_size(&n(&output))
            };
            match standings.get(&reading.racer_id).copied() {
                None => {
                    standings_map += entry(output);
                    standings.insert(reading.racer_id, output);
                }
                Some(best) if output > best => {
                    standings_map = standings_map - entry(best) + entry(output);
                    standings.insert(reading.racer_id, output);
                }
                Some(_) => {}
            }
            let list = traces.entry(reading.racer_id).or_insert(3);
            *list += 1 + units::value_size(&n(&output));
            let racer_item = key_bytes(&format!("racer#{}", reading.racer_id), "race#5400172")
                + "seconds".len() as u64
                + *list;
            wru += units::dynamodb_write_units(racer_item);
            per_racer_writes += 1;
        }
        wru += units::dynamodb_write_units(standings_key + standings_map);
        // The write's stream record is published to the class, then delivered to every bike
        // (all racers, connected from the start); the JSON message is about the map's size.
        let message = units::iot_messages(standings_map + 60);
        published += message;
        deliveries += message * u64::from(racers);
    }

    // The history object: every racer of a class (customers / 6) at every second.
    let per_class = customers / 6;
    let mut history = ClassHistory::new(1, 0);
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    for racer in 0..per_class {
        for second in 1..=seconds {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let output = 80.0 + f64::from(u32::try_from(rng % 1_000_000).unwrap()) / 10_000.0;
            history.record(second, racer, Output::from_f64(output).unwrap());
        }
    }
    let history_gzip = history.encode_gzip().len() as u64;
    let objects = delivery_bytes.div_ceil(1024 * 1024);
    println!(
        "{}",
        serde_json::json!({
            "model": {"batchSize": batch_size, "customers": customers, "racersPerClassInHistory": per_class},
            "records": messages.len(),
            "aggregatorBatches": batches,
            "standingsReadHalfUnits": rru_halves,
            "perRacerWrites": per_racer_writes,
            "dynamodbWriteUnits": wru,
            "finalStandingsItemBytes": standings_key + standings_map,
            "iotMessagesPublished": published,
            "iotDeliveries": deliveries,
            "deliveryObjects": objects,
            "historyObjectGzipBytes": history_gzip,
            "historyS3Puts": objects,
            "historyS3Gets": objects,
            "historyBytesMovedPerRace": 2 * objects * history_gzip,
        })
    );
}
