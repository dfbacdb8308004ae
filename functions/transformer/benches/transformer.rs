//! The transformer on Firehose events of 500 and 18,500 records (a full 3 MB buffer), measured
//! the way BENCHMARKS.md compares it with the original Node.js handler:
//!
//! - `handler/*`: the typed handler's own work ([`handle`]), the event already deserialized;
//! - `handler_raw/*`: [`handle_raw`], the handler the Lambda serves, whose own work starts from
//!   the event's bytes (it has no deserialized form) and ends with the response's bytes;
//! - `end_to_end/*`: event bytes in, response bytes out, through [`handle_raw`] (the same work as
//!   `handler_raw/*`, kept under the name BENCHMARKS.md compares with the original's);
//! - `end_to_end_typed/*`: the same through the typed path: `serde_json` into
//!   [`LenientFirehoseEvent`], [`handle`], `serde_json` out;
//! - `function/*`: everything the Lambda runtime does around it too: the event checked and copied
//!   into a `Box<RawValue>`, the `Transformer` function, the response serialized;
//! - `record/*`: the per-record domain work alone (parse, validate, admit, line), no envelope.
//!
//! The events are also written to `$TMPDIR/alleycat-bench/firehose-<n>.json`, so the original's
//! harness (`bench/original/transformer.mjs`) measures the very same bytes.

#![allow(missing_docs, clippy::cast_precision_loss)]

use std::hint::black_box;
use std::io::Write as _;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use alleycat_domain::Reading;
use alleycat_lambda::{Function, Metrics};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::value::RawValue;
use transformer::{Config, LenientFirehoseEvent, Transformer, handle, handle_fast, handle_raw};

/// A device message as a bike sends it (~190 bytes), varied per record.
fn message(i: u64) -> String {
    let racer = i % 1000;
    let second = 1 + i % 300;
    let cadence = 30.0 + (i * 7 % 600) as f64 / 10.0;
    let resistance = 33 + i * 13 % 53;
    format!(
        r#"{{"uuid":"{:08x}-62a2-4a1c-9d2e-6f5d1c2b3a4f","event":"update","deviceTimestamp":{},"second":{second},"raceId":5400172,"name":"Racer {racer}","racerId":{racer},"classId":3,"cadence":{cadence},"resistance":{resistance}}}"#,
        i,
        // Each racer's ride starts in the race's window, so every record is plausible.
        1_620_051_600_000 + racer + (second - 1) * 1000,
    )
}

/// A Firehose transformation event with `n` records, shaped as Firehose sends it.
fn event(n: u64) -> String {
    let records: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"recordId":"49617596128959546022271020452{i:09}000000000000","approximateArrivalTimestamp":1620051628707,"data":"{}","kinesisRecordMetadata":{{"sequenceNumber":"49617596128959546022271020452{i:09}","subsequenceNumber":0,"partitionKey":"{}","shardId":"shardId-000000000000","approximateArrivalTimestamp":1620051628707}}}}"#,
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

/// `Transformer::handle`, which never waits, run to completion as `alleycat_aws::serve` would.
fn served(function: &Transformer, event: Box<RawValue>, metrics: &mut Metrics) -> Box<RawValue> {
    let future = pin!(function.handle(event, metrics));
    match future.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(response) => response.unwrap(),
        Poll::Pending => unreachable!("the transformer never waits"),
    }
}

fn transformer(c: &mut Criterion) {
    let config = Config::default();
    let mut group = c.benchmark_group("transformer");
    for n in [500u64, 18_500] {
        let json = event(n);
        write_for_the_original(n, &json);
        let parsed: LenientFirehoseEvent = serde_json::from_str(&json).unwrap();
        let mut metrics = Metrics::new("transformer");
        assert!(
            handle_fast(json.as_bytes(), &config, &mut metrics).is_some(),
            "the benchmark's events take the fast path"
        );
        assert_eq!(
            metrics.get("Ok"),
            n,
            "every record of the benchmark is valid and plausible"
        );
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
        group.bench_function(format!("handler_raw/{n}_records"), |b| {
            b.iter(|| {
                let mut metrics = Metrics::new("transformer");
                handle_raw(black_box(json.as_bytes()), &config, &mut metrics).unwrap()
            });
        });
        group.bench_function(format!("end_to_end/{n}_records"), |b| {
            b.iter(|| {
                let mut metrics = Metrics::new("transformer");
                handle_raw(black_box(json.as_bytes()), &config, &mut metrics).unwrap()
            });
        });
        group.bench_function(format!("end_to_end_typed/{n}_records"), |b| {
            b.iter(|| {
                let event: LenientFirehoseEvent =
                    serde_json::from_slice(black_box(json.as_bytes())).unwrap();
                let mut metrics = Metrics::new("transformer");
                let response = handle(event, &config, &mut metrics);
                serde_json::to_vec(&response).unwrap()
            });
        });
        let function = Transformer { config };
        group.bench_function(format!("function/{n}_records"), |b| {
            b.iter(|| {
                let event: Box<RawValue> =
                    serde_json::from_slice(black_box(json.as_bytes())).unwrap();
                let mut metrics = Metrics::new("transformer");
                let response = served(&function, event, &mut metrics);
                serde_json::to_vec(&response).unwrap()
            });
        });
    }
    group.finish();
}

/// The per-record domain work alone, on the benchmark's messages (already decoded): parse,
/// validate, admit, write the line; what the handler does per record between base64 and the
/// envelope.
fn record(c: &mut Criterion) {
    let rules = Config::default().plausibility();
    let messages: Vec<String> = (0..500).map(message).collect();
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(messages.len() as u64));
    let mut line = Vec::with_capacity(512);
    group.bench_function("parse_validate_admit_line/500_records", |b| {
        b.iter(|| {
            let mut bytes = 0;
            for message in &messages {
                let (mut reading, text) =
                    Reading::from_json_keeping_text(black_box(message.as_bytes()), rules.clock)
                        .unwrap();
                rules.admit(&mut reading, 1_620_051_628_707).unwrap();
                line.clear();
                reading.write_json_line_from(&text, &mut line);
                bytes += line.len();
            }
            bytes
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = transformer, record
}
criterion_main!(benches);
