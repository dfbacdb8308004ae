//! The transformer on Firehose events of 500 and 18,500 records (a full 3 MB buffer), measured
//! the way BENCHMARKS.md compares it with the original Node.js handler:
//!
//! - `handler/*`: the handler's own work, the event already deserialized;
//! - `end_to_end/*`: event bytes in, response bytes out (envelope parsing, base64 both ways).
//!
//! The events are also written to `$TMPDIR/alleycat-bench/firehose-<n>.json`, so the original's
//! harness (`bench/original/transformer.mjs`) measures the very same bytes.

#![allow(missing_docs, clippy::cast_precision_loss)]

use std::hint::black_box;
use std::io::Write as _;

use alleycat_lambda::Metrics;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use transformer::{Config, LenientFirehoseEvent, handle};

/// A device message as a bike sends it (~190 bytes), varied per record.
fn message(i: u64) -> String {
    let racer = i % 1000;
    let second = 1 + i % 300;
    let cadence = 30.0 + (i * 7 % 600) as f64 / 10.0;
    let resistance = 33 + i * 13 % 53;
    format!(
        r#"{{"uuid":"{:08x}-62a2-4a1c-9d2e-6f5d1c2b3a4f","event":"update","deviceTimestamp":{},"second":{second},"raceId":5400172,"name":"Racer {racer}","racerId":{racer},"classId":3,"cadence":{cadence},"resistance":{resistance}}}"#,
        i,
        1_620_051_600_000 + i,
    )
}

/// A Firehose transformation event with `n` records, shaped as Firehose sends it.
fn event(n: u64) -> String {
    let records: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"recordId":"49617596128959546022271020452{i:09}000000000000","approximateArrivalTimestamp":1619185789847,"data":"{}","kinesisRecordMetadata":{{"sequenceNumber":"49617596128959546022271020452{i:09}","subsequenceNumber":0,"partitionKey":"{}","shardId":"shardId-000000000000","approximateArrivalTimestamp":1619185789847}}}}"#,
                STANDARD.encode(message(i)),
                i % 1000
            )
        })
        .collect();
    format!(
        r#"{{"invocationId":"0a6f5c5c-1a3f-4f4e-9d1c-5f3c1c0b7b1a","sourceKinesisStreamArn":"arn:aws:kinesis:us-east-1:123456789012:stream/alleycat","deliveryStreamArn":"arn:aws:firehose:us-east-1:123456789012:deliverystream/alleycat","region":"us-east-1","records":[{}]}}"#,
        records.join(",")
    )
}

fn write_for_the_original(n: u64, json: &str) {
    let dir = std::env::temp_dir().join("alleycat-bench");
    if std::fs::create_dir_all(&dir).is_ok()
        && let Ok(mut file) = std::fs::File::create(dir.join(format!("firehose-{n}.json")))
    {
        let _ = file.write_all(json.as_bytes());
    }
}

fn transformer(c: &mut Criterion) {
    let config = Config::default();
    let mut group = c.benchmark_group("transformer");
    for n in [500u64, 18_500] {
        let json = event(n);
        write_for_the_original(n, &json);
        let parsed: LenientFirehoseEvent = serde_json::from_str(&json).unwrap();
        group.throughput(Throughput::Elements(n));
        group.bench_function(format!("handler/{n}_records"), |b| {
            b.iter_batched(
                || parsed.clone(),
                |event| {
                    let mut metrics = Metrics::new("transformer");
                    handle(event, &config, &mut metrics)
                },
                BatchSize::LargeInput,
            );
        });
        group.bench_function(format!("end_to_end/{n}_records"), |b| {
            b.iter(|| {
                let event: LenientFirehoseEvent =
                    serde_json::from_slice(black_box(json.as_bytes())).unwrap();
                let mut metrics = Metrics::new("transformer");
                let response = handle(event, &config, &mut metrics);
                serde_json::to_vec(&response).unwrap()
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = transformer
}
criterion_main!(benches);
