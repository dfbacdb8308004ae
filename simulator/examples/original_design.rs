//! What one race costs under the original Alleycat design: the race's messages replayed through
//! the original's access pattern, read from its code (`/work/shared/original`, the AWS sample's
//! Node.js functions and templates; `docs/cost.md` cites each fact to file and line), with every
//! item, message and object it would write built and measured by AWS's billing rules
//! (`alleycat-cost`). Prints one JSON object: the counts, the [`Usage`] and its priced bill.
//!
//! ```text
//! cargo run --release -p simulator --example original_design -- --racers 1000 --seconds 300
//! ```
//!
//! The pattern, step by step (paths under `/work/shared/original`):
//!
//! 1. **Race aggregator** (`1-streaming-kds/template.yaml`: `BatchSize: 1000`, no batching
//!    window, tumbling window commented out). Lambda polls a shard about once a second, so a
//!    batch is a second of messages (at most 1,000). Per race in a batch
//!    (`tumblingFunction/app.js` `saveCurrentRaces`): one `get` of the race item (eventually
//!    consistent, the DocumentClient's default) and one `put` of it, `results` being the JSON
//!    *string* of racer → output, where the batch's best replaces the stored value (the state
//!    starts empty on every invocation without a window). The item carries `GSI`, which both
//!    indexes of the table project (`0-setup/base-template/2-ddb/template.yaml`: `GSI_Index` and
//!    the LSI `GSI_PK_Index`, `ProjectionType: ALL`): three writes of the item.
//! 2. **Publisher** (`publishStreamFunction/app.js`): every `results` put on the table's stream is
//!    published, the results string re-embedded as a JSON string, to the one topic `TOPIC =
//!    alleycat-subscribe` (`1-streaming-kds/template.yaml`), which every bike subscribes to
//!    (`frontend/src/components/IoT.vue`): delivered to every bike of every class.
//! 3. **Final results** (`finalResultsFunction/app.js`, `BatchSize: 100`): per `final` record, a
//!    `put` of `race-<raceId>`/`racer-<id>` and a conditional `update` of `class-<c>`/`racer-<id>`,
//!    both with `GSI` (three writes each).
//! 4. **Firehose** (`2-streaming-kdf/template.yaml`: 1 MiB / 60 s, GZIP) with the transformer
//!    (`transformer/app.js`), which appends the unrounded `output` to each record.
//! 5. **S3 processor**, once per delivered object (`s3-processor/app.js`): `getObject` of the
//!    object; per racer of each race in it, a `put` of `racer-<id>`/`race-<raceId>` holding only
//!    the object's seconds (`savePerformanceByRacerID`; no `GSI`: one write); a `getObject` of
//!    `class-<c>` that never finds anything (the history is saved as `class-<c>.gz`), and a
//!    `putObject` of `class-<c>.gz` holding the gzip JSON of the module-level `history`, which a
//!    warm container keeps growing: by the race's end, every racer at every second.

// Counts of one race stay far below 2^52, where a u64 converts to f64 exactly.
#![allow(clippy::cast_precision_loss)]

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;

use alleycat_cost::{Bill, PriceTable, Usage, units};
use serde_json::{Map, Value, json};
use simulator::{Batch, Race, RacePlan};

/// The original's aggregator batch (`1-streaming-kds/template.yaml`, `BatchSize: 1000`).
const AGGREGATOR_BATCH: usize = 1000;
/// The original's final-results batch (`BatchSize: 100`).
const FINALS_BATCH: usize = 100;
/// Firehose's size hint (`2-streaming-kdf/template.yaml`, `SizeInMBs: 1`).
const FIREHOSE_BYTES: usize = 1 << 20;
/// Index copies of an item carrying `GSI`: the table, `GSI_Index` and `GSI_PK_Index`.
const COPIES_WITH_GSI: u64 = 3;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An item's size by DynamoDB's rules: each attribute's name plus its value's size.
fn item_size(attributes: &[(&str, u64)]) -> u64 {
    attributes
        .iter()
        .map(|(name, value)| name.len() as u64 + value)
        .sum()
}

fn n(text: &str) -> u64 {
    units::value_size(&serde_dynamo::AttributeValue::N(text.to_owned()))
}

/// A JavaScript number as `JSON.stringify` writes it (shortest round-trip digits).
fn js_number(x: f64) -> String {
    let text = x.to_string();
    text.strip_suffix(".0").map_or(text.clone(), str::to_owned)
}

/// Counted operations of the original.
#[derive(Default)]
struct Counts {
    aggregator_batches: u64,
    standings_puts: u64,
    final_puts: u64,
    per_object_racer_puts: u64,
    write_units: u64,
    read_half_units: u64,
    iot_published: u64,
    iot_deliveries: u64,
    largest_publish_bytes: usize,
    objects: u64,
    s3_puts: u64,
    s3_gets: u64,
    history_bytes_written: u64,
    largest_history_bytes: u64,
    finals_invocations: u64,
}

#[allow(clippy::too_many_lines)] // One replay, in the order the original runs it.
fn main() {
    let racers = u32::try_from(arg("--racers", 1000)).unwrap();
    let seconds = u16::try_from(arg("--seconds", 300)).unwrap();
    let plan = RacePlan {
        racers,
        seconds,
        ..RacePlan::default()
    };
    let race_id = plan.race_id();
    let mut race = Race::new(&plan);
    let mut batch = Batch::default();
    let mut c = Counts::default();
    let mut records = 0u64;
    let mut kinesis_units = 0u64;
    let mut firehose_billed = 0u64;

    // The race item: racer → the JSON text of its stored output.
    let mut results: BTreeMap<String, String> = BTreeMap::new();
    let mut standings_old_size = 0u64;
    // Firehose's buffer of transformed lines, and what the S3 processor keeps across objects.
    let mut buffer: Vec<Value> = Vec::new();
    let mut buffered = 0usize;
    let mut history: BTreeMap<String, BTreeMap<String, Map<String, Value>>> = BTreeMap::new();
    let mut racer_items: HashMap<String, u64> = HashMap::new();
    let mut finals_pending = 0usize;

    let deliver = |buffer: &mut Vec<Value>,
                   c: &mut Counts,
                   history: &mut BTreeMap<String, BTreeMap<String, Map<String, Value>>>,
                   racer_items: &mut HashMap<String, u64>| {
        if buffer.is_empty() {
            return;
        }
        c.objects += 1;
        c.s3_puts += 1; // Firehose writes the object
        c.s3_gets += 1; // the processor reads it
        // savePerformanceByRacerID: one put per racer of the object, its seconds only.
        let mut per_racer: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        for line in buffer.iter() {
            per_racer
                .entry(line["racerId"].to_string())
                .or_default()
                .insert(line["second"].to_string(), line["output"].clone());
        }
        let ts = "1620051629000";
        for (racer, secs) in &per_racer {
            let map = 3 + secs
                .iter()
                .map(|(k, v)| 1 + k.len() as u64 + n(&v.to_string()))
                .sum::<u64>();
            let size = item_size(&[
                ("PK", format!("racer-{racer}").len() as u64),
                ("SK", format!("race-{race_id}").len() as u64),
                ("lastUpdated", n(ts)),
                (&format!("results-{ts}"), map),
            ]);
            let old = racer_items.insert(racer.clone(), size).unwrap_or(0);
            c.write_units += units::dynamodb_write_units(size.max(old));
            c.per_object_racer_puts += 1;
        }
        // The history: getObject of class-<c> (never found), merge, putObject of class-<c>.gz.
        let mut classes: Vec<String> = Vec::new();
        for line in buffer.iter() {
            let class = format!("class-{}", line["classId"]);
            let best = history
                .entry(class.clone())
                .or_default()
                .entry(line["second"].to_string())
                .or_default();
            let racer = line["racerId"].to_string();
            let keep = best
                .get(&racer)
                .and_then(Value::as_f64)
                .is_some_and(|current| current >= line["output"].as_f64().unwrap_or(0.0));
            if !keep {
                best.insert(racer, line["output"].clone());
            }
            if !classes.contains(&class) {
                classes.push(class);
            }
        }
        for class in classes {
            c.s3_gets += 1;
            let json = serde_json::to_vec(&history[&class]).unwrap();
            let mut gzip =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gzip.write_all(&json).unwrap();
            let bytes = gzip.finish().unwrap().len() as u64;
            c.s3_puts += 1;
            c.history_bytes_written += bytes;
            c.largest_history_bytes = c.largest_history_bytes.max(bytes);
        }
        buffer.clear();
    };

    while race.next_batch(&mut batch) {
        // One second of messages: Lambda's batches of at most 1,000.
        let messages: Vec<Value> = (0..batch.records.len())
            .map(|i| {
                let bytes = batch.message(i);
                records += 1;
                kinesis_units += units::kinesis_put_units(bytes.len() as u64);
                firehose_billed += units::firehose_billed_bytes(bytes.len() as u64);
                serde_json::from_slice(bytes).unwrap()
            })
            .collect();
        for chunk in messages.chunks(AGGREGATOR_BATCH) {
            c.aggregator_batches += 1;
            // getResultsByRaceId: the batch's best per racer; then get, merge, put.
            let mut best: BTreeMap<String, f64> = BTreeMap::new();
            for m in chunk {
                let output = (m["cadence"].as_f64().unwrap() + 35.0)
                    * (m["resistance"].as_f64().unwrap() + 65.0)
                    / 100.0;
                let output = (output * 10_000.0).round() / 10_000.0;
                let entry = best.entry(m["racerId"].to_string()).or_insert(output);
                if output > *entry {
                    *entry = output;
                }
            }
            c.read_half_units += units::dynamodb_read_half_units(standings_old_size, false);
            for (racer, output) in best {
                results.insert(racer, js_number(output));
            }
            let text = format!(
                "{{{}}}",
                results
                    .iter()
                    .map(|(r, o)| format!("\"{r}\":{o}"))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let size = item_size(&[
                ("PK", format!("race-{race_id}").len() as u64),
                ("SK", "results".len() as u64),
                ("GSI", n(&plan.class_id.to_string())),
                ("results", text.len() as u64),
                ("ts", n("1620051629000")),
            ]);
            c.write_units +=
                COPIES_WITH_GSI * units::dynamodb_write_units(size.max(standings_old_size));
            standings_old_size = size;
            c.standings_puts += 1;
            // The stream record, published to alleycat-subscribe and delivered to every bike.
            let payload = serde_json::to_vec(&json!({
                "msg": "results",
                "classId": plan.class_id.to_string(),
                "raceId": format!("race-{race_id}"),
                "ts": "1620051629000",
                "results": text,
            }))
            .unwrap();
            let messages = units::iot_messages(payload.len() as u64);
            c.iot_published += messages;
            c.iot_deliveries += messages * u64::from(racers);
            c.largest_publish_bytes = c.largest_publish_bytes.max(payload.len());
        }
        for m in &messages {
            // Final results: every record reaches the function, in batches of 100.
            finals_pending += 1;
            if finals_pending == FINALS_BATCH {
                c.finals_invocations += 1;
                finals_pending = 0;
            }
            if m["event"] == "final" {
                let output = (m["cadence"].as_f64().unwrap() + 35.0)
                    * (m["resistance"].as_f64().unwrap() + 65.0)
                    / 100.0;
                let output = js_number((output * 10_000.0).round() / 10_000.0);
                let racer = m["racerId"].to_string();
                let put = item_size(&[
                    ("PK", format!("race-{race_id}").len() as u64),
                    ("SK", format!("racer-{racer}").len() as u64),
                    ("GSI", n(&output)),
                    ("ts", n("1620051629000")),
                ]);
                let update = item_size(&[
                    ("PK", format!("class-{}", plan.class_id).len() as u64),
                    ("SK", format!("racer-{racer}").len() as u64),
                    ("GSI", n(&output)),
                    ("ts", n("1620051629000")),
                    ("raceId", n(&race_id.to_string())),
                ]);
                c.write_units += COPIES_WITH_GSI
                    * (units::dynamodb_write_units(put) + units::dynamodb_write_units(update));
                c.final_puts += 2;
            }
            // Firehose: the transformer's line (the unrounded output appended), buffered to 1 MiB.
            let mut line = m.clone();
            let raw = (m["cadence"].as_f64().unwrap() + 35.0)
                * (m["resistance"].as_f64().unwrap() + 65.0)
                / 100.0;
            line["output"] = json!(raw);
            buffered += serde_json::to_vec(&line).unwrap().len() + 1;
            buffer.push(line);
            if buffered >= FIREHOSE_BYTES {
                deliver(&mut buffer, &mut c, &mut history, &mut racer_items);
                buffered = 0;
            }
        }
    }
    deliver(&mut buffer, &mut c, &mut history, &mut racer_items);
    if finals_pending > 0 {
        c.finals_invocations += 1;
    }

    let usage = Usage {
        // The race and Firehose's last 60 s: shard-hours accrue over the run.
        seconds: f64::from(seconds) + 60.0,
        kinesis_shards: 1,
        kinesis_records: records,
        kinesis_put_units: kinesis_units,
        dynamodb_write_units: c.write_units,
        dynamodb_read_half_units: c.read_half_units,
        firehose_records: records,
        firehose_billed_bytes: firehose_billed,
        s3_puts: c.s3_puts,
        s3_gets: c.s3_gets,
        iot_messages_published: c.iot_published,
        iot_deliveries_modeled: c.iot_deliveries,
        iot_connection_minutes_modeled: records as f64 / 60.0,
        ..Usage::default()
    };
    let bill = Bill::new(&usage, PriceTable::builtin(), "us-east-1").unwrap();
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "race": {"racers": racers, "seconds": seconds, "records": records},
            "counts": {
                "aggregatorBatches": c.aggregator_batches,
                "standingsPuts": c.standings_puts,
                "finalWrites": c.final_puts,
                "finalsInvocations": c.finals_invocations,
                "perObjectRacerPuts": c.per_object_racer_puts,
                "dynamodbWriteUnits": c.write_units,
                "dynamodbReadUnits": c.read_half_units as f64 / 2.0,
                "finalStandingsItemBytes": standings_old_size,
                "iotMessagesPublished": c.iot_published,
                "largestPublishBytes": c.largest_publish_bytes,
                "iotDeliveries": c.iot_deliveries,
                "deliveryObjects": c.objects,
                "s3Puts": c.s3_puts,
                "s3Gets": c.s3_gets,
                "historyBytesWritten": c.history_bytes_written,
                "largestHistoryObjectBytes": c.largest_history_bytes,
            },
            "total": bill.total,
            "bill": bill,
        }))
        .unwrap()
    );
}
