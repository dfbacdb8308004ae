//! The race aggregator on a full 1,000-record Kinesis batch (1,000 racers, two classes racing in
//! the same window):
//!
//! - `handler` and `end_to_end` against the in-memory table: the handler's compute (validation,
//!   grouping, merging, one write per race), without network time;
//! - `against_moto`: the handler with the real DynamoDB adapter writing to a local moto server
//!   (a fresh race per iteration, so every iteration really writes), the set-up the original
//!   Node.js aggregator's ~29 ms was measured in. Needs moto: run `bash scripts/moto-venv` first.
//!
//! `cargo bench -p race-aggregator`; figures in BENCHMARKS.md.

#![allow(missing_docs, clippy::cast_precision_loss)]

use alleycat_lambda::Metrics;
use alleycat_lambda::testing::{KinesisEventBuilder, Message};
use alleycat_ports::memory::MemoryTable;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use race_aggregator::{Config, handle};

fn batch() -> KinesisEventBuilder {
    batch_of_race(5_400_172)
}

fn batch_of_race(race_id: i64) -> KinesisEventBuilder {
    let messages: Vec<Message> = (0..1000i64)
        .map(|i| {
            Message::new(if i % 10 == 0 { 5 } else { 3 }, race_id, i)
                .second(13)
                .effort(30.0 + (i % 600) as f64 / 10.0, 33.0 + (i % 53) as f64)
        })
        .collect();
    KinesisEventBuilder::new().messages(&messages)
}

fn aggregator(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = Config::default();
    let builder = batch();
    let event = builder.build();
    let json = builder.to_json();
    let mut group = c.benchmark_group("race_aggregator");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("handler/1000_records", |b| {
        b.iter_batched(
            || (event.clone(), MemoryTable::new()),
            |(event, table)| {
                let mut metrics = Metrics::new("race-aggregator");
                runtime.block_on(handle(event, &table, &config, &mut metrics))
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("end_to_end/1000_records", |b| {
        b.iter_batched(
            MemoryTable::new,
            |table| {
                let event = serde_json::from_str(&json).unwrap();
                let mut metrics = Metrics::new("race-aggregator");
                let response = runtime.block_on(handle(event, &table, &config, &mut metrics));
                serde_json::to_vec(&response).unwrap()
            },
            BatchSize::LargeInput,
        );
    });
    let table = runtime.block_on(alleycat_aws::moto::table());
    let mut race_id = 6_000_000;
    group.bench_function("against_moto/1000_records", |b| {
        b.iter_batched(
            || {
                race_id += 1;
                batch_of_race(race_id).build()
            },
            |event| {
                let mut metrics = Metrics::new("race-aggregator");
                runtime.block_on(handle(event, &table, &config, &mut metrics))
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, aggregator);
criterion_main!(benches);
