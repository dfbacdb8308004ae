//! Criterion benchmarks of the per-record hot path and the history merge.
//!
//! `cargo bench -p alleycat-domain`; figures and their meaning are in BENCHMARKS.md.

#![allow(
    missing_docs,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation
)]

use std::hint::black_box;
use std::io::Write;

use alleycat_domain::{
    ClassHistory, DeviceMessage, MaxMerge, Output, RaceClock, Reading, Standings, StandingsBatch,
    decode_delivery,
};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flate2::Compression;
use flate2::write::GzEncoder;

const RECORD: &[u8] = br#"{"uuid":"5d0b1f4e-62a2-4a1c-9d2e-6f5d1c2b3a4f","event":"update","deviceTimestamp":1620051628707,"second":13,"raceId":5400172,"name":"Adell","racerId":8,"classId":3,"cadence":74.2,"resistance":74,"clientId":"alleycat-8","ingestTimestamp":1620051628731}"#;

/// SplitMix64: a deterministic stream so every run benchmarks the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Cadence 30–90 and resistance 33–86 like the original bikes, to 1 decimal.
    fn effort(&mut self) -> (f64, f64) {
        let cadence = 30.0 + self.below(601) as f64 / 10.0;
        let resistance = 33.0 + self.below(531) as f64 / 10.0;
        (cadence, resistance)
    }
}

fn message(rng: &mut Rng, racer: u64, second: u64, race_id: u64) -> String {
    let (cadence, resistance) = rng.effort();
    let event = if second == 300 { "final" } else { "update" };
    format!(
        r#"{{"event":"{event}","deviceTimestamp":{ts},"second":{second},"raceId":{race_id},"name":"Racer {racer}","racerId":{racer},"classId":3,"cadence":{cadence},"resistance":{resistance}}}"#,
        ts = race_id * 300_000 + second * 1000,
    )
}

/// A history of `population` racers who have each ridden every second once.
fn warm_history(population: u64, rng: &mut Rng) -> ClassHistory {
    let mut history = ClassHistory::new(3, 100);
    for racer in 0..population {
        for second in 1..=300u16 {
            let (c, r) = rng.effort();
            history.record(second, racer as u32, Output::from_effort(c, r));
        }
    }
    history.touch(1);
    history
}

/// A 6,000-record delivery object: 20 racers of the population riding a full race.
fn delivery_object(population: u64, rng: &mut Rng) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    for _ in 0..20 {
        let racer = rng.below(population);
        for second in 1..=300 {
            let line = message(rng, racer, second, 5_400_172);
            gz.write_all(line.as_bytes()).unwrap();
            gz.write_all(b"\n").unwrap();
        }
    }
    gz.finish().unwrap()
}

fn per_record(c: &mut Criterion) {
    let clock = RaceClock::default();
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_validate_output", |b| {
        b.iter(|| Reading::from_json(black_box(RECORD), clock).unwrap().output);
    });
    group.bench_function("parse_validate_output_serde_only", |b| {
        b.iter(|| {
            DeviceMessage::parse_with_serde(black_box(RECORD))
                .unwrap()
                .validate(clock)
                .unwrap()
                .output
        });
    });
    let reading = Reading::from_json(RECORD, clock).unwrap();
    let mut line = Vec::with_capacity(512);
    group.bench_function("write_json_line", |b| {
        b.iter(|| {
            line.clear();
            black_box(&reading).write_json_line(&mut line);
            line.len()
        });
    });
    group.finish();
}

fn standings(c: &mut Criterion) {
    let clock = RaceClock::default();
    let mut rng = Rng(7);
    let lines: Vec<String> = (0..1000)
        .map(|r| message(&mut rng, r, 13, 5_400_172))
        .collect();
    let readings: Vec<Reading<'_>> = lines
        .iter()
        .map(|l| Reading::from_json(l.as_bytes(), clock).unwrap())
        .collect();
    let stored: Standings = (0..1000u32)
        .map(|r| (r, Output::from_ten_thousandths(1_000_000 + r)))
        .collect();
    let mut group = c.benchmark_group("standings");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("group_and_merge_1000_records", |b| {
        b.iter_batched(
            || stored.clone(),
            |mut current| {
                let mut batch = StandingsBatch::new();
                for (position, reading) in readings.iter().enumerate() {
                    batch.add(position, reading);
                }
                for (_, delta) in batch.into_races() {
                    current.merge(&delta.standings);
                }
                current
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("parse_group_and_merge_1000_records", |b| {
        b.iter_batched(
            || stored.clone(),
            |mut current| {
                let mut batch = StandingsBatch::new();
                for (position, line) in lines.iter().enumerate() {
                    batch.add(
                        position,
                        &Reading::from_json(line.as_bytes(), clock).unwrap(),
                    );
                }
                for (_, delta) in batch.into_races() {
                    current.merge(&delta.standings);
                }
                current
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn history(c: &mut Criterion) {
    let clock = RaceClock::default();
    let mut group = c.benchmark_group("history");
    group.sample_size(20);
    for population in [1_000u64, 40_000] {
        let mut rng = Rng(population);
        let warm = warm_history(population, &mut rng);
        let object = delivery_object(population, &mut rng);
        let encoded = warm.encode_gzip();
        group.throughput(Throughput::Elements(6000));
        group.bench_function(
            format!("merge_6000_records_into_{population}_racers"),
            |b| {
                b.iter_batched(
                    || warm.clone(),
                    |mut history| {
                        decode_delivery(object.as_slice(), clock, |r| {
                            history.record(r.second, r.racer_id, r.output);
                        })
                        .unwrap();
                        history
                    },
                    BatchSize::LargeInput,
                );
            },
        );
        group.throughput(Throughput::Bytes(encoded.len() as u64));
        group.bench_function(format!("decode_history_{population}_racers"), |b| {
            b.iter(|| ClassHistory::decode_gzip(black_box(&encoded), 3, 100).unwrap());
        });
        group.bench_function(format!("encode_history_{population}_racers"), |b| {
            b.iter(|| black_box(&warm).encode_gzip());
        });
        group.bench_function(format!("read_merge_write_{population}_racers"), |b| {
            b.iter(|| {
                let mut history = ClassHistory::decode_gzip(black_box(&encoded), 3, 100).unwrap();
                decode_delivery(object.as_slice(), clock, |r| {
                    history.record(r.second, r.racer_id, r.output);
                })
                .unwrap();
                history.encode_gzip()
            });
        });
        eprintln!(
            "history of {population} racers, K=100: {} entries, {} bytes JSON, {} bytes gzip; delivery object {} bytes gzip",
            warm.entries(),
            warm.to_json().len(),
            encoded.len(),
            object.len()
        );
    }
    group.finish();
}

criterion_group!(benches, per_record, standings, history);
criterion_main!(benches);
