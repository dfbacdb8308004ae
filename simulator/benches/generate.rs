//! Generation rate: a 1,000-racer race generated into batches (pure), and through the runner into
//! the stdout sink writing to `io::sink()` (the `--target stdout --speed 0` path without the
//! terminal). Target: at least 500,000 messages/s.
//!
//! `cargo bench -p simulator --bench generate -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs)] // criterion_group! generates an undocumented function.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use simulator::{Batch, Race, RacePlan, Stats, WriteSink, run_to_end};

fn generate(c: &mut Criterion) {
    let plan = RacePlan {
        racers: 1000,
        seconds: 60,
        start_offset_spread: 30,
        ..RacePlan::default()
    };
    let mut group = c.benchmark_group("generate");
    group.throughput(Throughput::Elements(plan.total_records()));
    group.sample_size(10);

    group.bench_function("1000 racers x 60 s, batches", |b| {
        b.iter(|| {
            let mut race = Race::new(&plan);
            let mut batch = Batch::default();
            let mut bytes = 0;
            while race.next_batch(&mut batch) {
                bytes += batch.buf.len();
            }
            black_box(bytes)
        });
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    group.bench_function("1000 racers x 60 s, stdout sink", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut race = Race::new(&plan);
                let stats = Arc::new(Stats::default());
                let sink = WriteSink::new(std::io::sink(), Arc::clone(&stats));
                run_to_end(&mut race, sink, Arc::clone(&stats))
                    .await
                    .unwrap();
                black_box(Stats::get(&stats.sent))
            });
        });
    });
    group.finish();
}

criterion_group!(benches, generate);
criterion_main!(benches);
