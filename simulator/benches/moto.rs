//! End to end against moto: the Kinesis sink, the AWS SDK and a local moto server, for a
//! 1,000-racer race. Prints records/s and PutRecords latency. Needs moto (`ALLEYCAT_MOTO_SERVER`,
//! see `scripts/moto-venv`).
//!
//! `ALLEYCAT_MOTO_SERVER=$(bash scripts/moto-venv) cargo bench -p simulator --bench moto`
//!
//! Two runs: paced for 1 shard (the production stream: about 1,000 records/s whatever moto
//! could take), and paced for 100 shards, which moto does not enforce: that measures the sink,
//! the SDK and moto (one request at a time, see `alleycat_aws::moto`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use alleycat_aws::moto::{sdk_config, unique};
use alleycat_ports::RetryPolicy;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::retry::RetryConfig;
use simulator::pacing::Budget;
use simulator::sink::kinesis::ensure_stream;
use simulator::sink::{KinesisSinkConfig, SdkKinesis};
use simulator::{KinesisSink, Race, RacePlan, Stats, run_to_end};

#[allow(clippy::cast_precision_loss)] // A rate for display.
async fn ride(client: &Client, shards: u32, plan: &RacePlan) {
    let stream = unique("alleycat-sim-bench");
    ensure_stream(client, &stream, 4, Duration::from_secs(30))
        .await
        .expect("create the stream");
    let mut race = Race::new(plan);
    let keys = (0..plan.racers)
        .map(|r| Arc::clone(race.partition_key(r)))
        .collect();
    let stats = Arc::new(Stats::default());
    let config = KinesisSinkConfig {
        budget: Budget::for_shards(shards),
        batch_size: 500,
        policy: RetryPolicy::default(),
    };
    let sink = KinesisSink::start(
        SdkKinesis::new(client.clone(), stream.as_str()),
        keys,
        config,
        Arc::clone(&stats),
    );
    let started = Instant::now();
    run_to_end(&mut race, sink, Arc::clone(&stats))
        .await
        .expect("delivered");
    let elapsed = started.elapsed().as_secs_f64();
    let sent = Stats::get(&stats.sent);
    let latency = stats.latency();
    let ms = |q| latency.quantile(q).unwrap_or_default().as_secs_f64() * 1000.0;
    println!(
        "moto, paced for {shards} shard(s): {sent} records ({} racers x {} s) in {elapsed:.2} s = \
         {:.0} records/s; PutRecords p50 {:.1} ms, p99 {:.1} ms ({} requests); retried {}, lost {}",
        plan.racers,
        plan.seconds,
        sent as f64 / elapsed,
        ms(0.5),
        ms(0.99),
        latency.count(),
        Stats::get(&stats.retried),
        Stats::get(&stats.lost),
    );
}

fn main() {
    // `cargo test --benches` runs this too: keep that to a token race.
    let quick = !std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = sdk_config().await;
        let client = Client::from_conf(
            aws_sdk_kinesis::config::Builder::from(&config)
                .retry_config(RetryConfig::disabled())
                .build(),
        );
        let plan = |seconds| RacePlan {
            racers: if quick { 10 } else { 1000 },
            seconds,
            ..RacePlan::default()
        };
        ride(&client, 1, &plan(if quick { 2 } else { 10 })).await;
        ride(&client, 100, &plan(if quick { 2 } else { 30 })).await;
    });
}
