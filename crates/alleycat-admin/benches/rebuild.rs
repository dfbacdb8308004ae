//! Decoding and recomputing from gzip delivery objects to merged views in memory: the part of a
//! rebuild that scales with the archive (reads and writes scale with the documents instead).
//!
//! One 1,000-racer, 300-second race of class 1 (300,000 records) in 50 objects of 6,000 lines,
//! as the transformer archives them, decoded by one worker per core into every view (per-race
//! views included: the worst case, no `--since`). `cargo bench -p alleycat-admin`; the figure is in
//! BENCHMARKS.md.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::io::Write;

use alleycat_admin::archive::{Workers, default_workers};
use alleycat_admin::{Rules, Scope};
use alleycat_domain::{Plausibility, RaceClock, Reading};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const RACERS: u64 = 1_000;
const SECONDS: u64 = 300;
const PER_OBJECT: usize = 6_000;
const START: u64 = 1_700_000_100_000;

fn objects(clock: RaceClock) -> Vec<Vec<u8>> {
    let race_id = clock.race_id_at(START);
    let mut lines = Vec::new();
    for second in 1..=SECONDS {
        for racer in 1..=RACERS {
            let event = if second == SECONDS { "final" } else { "update" };
            let cadence = 60 + (racer * 7 + second * 13) % 120;
            let resistance = 10 + (racer * 3 + second) % 80;
            let json = format!(
                r#"{{"uuid":"u-{racer}-{second}","event":"{event}","deviceTimestamp":{},"second":{second},"raceId":{race_id},"name":"Racer {racer}","racerId":{racer},"classId":1,"cadence":{cadence},"resistance":{resistance}}}"#,
                START + (second - 1) * 1000
            );
            let mut reading = Reading::from_json(json.as_bytes(), clock).expect("valid");
            reading.arrived_at = Some(START + second * 1000);
            let mut line = Vec::new();
            reading.write_json_line(&mut line);
            lines.push(line);
        }
    }
    lines
        .chunks(PER_OBJECT)
        .map(|chunk| {
            let mut gzip =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            for line in chunk {
                gzip.write_all(line).unwrap();
                if line.last() != Some(&b'\n') {
                    gzip.write_all(b"\n").unwrap();
                }
            }
            gzip.finish().unwrap()
        })
        .collect()
}

fn rebuild(c: &mut Criterion) {
    let clock = RaceClock::default();
    let rules = Rules {
        plausibility: Plausibility::new(clock, 120),
        scope: Scope::default(),
        top_k: 100,
    };
    let objects = objects(clock);
    let workers = default_workers();
    let mut group = c.benchmark_group("rebuild");
    group.throughput(Throughput::Elements(RACERS * SECONDS));
    group.sample_size(20);
    group.bench_function(
        format!("decode_recompute_300000_records_{workers}_workers"),
        |b| {
            b.iter(|| {
                let pool = Workers::start(workers, &rules);
                for object in &objects {
                    pool.send_blocking(object.clone());
                }
                let aggregate = pool.finish();
                assert_eq!(aggregate.counts.admitted, RACERS * SECONDS);
                aggregate
            });
        },
    );
    group.finish();
}

criterion_group!(benches, rebuild);
criterion_main!(benches);
