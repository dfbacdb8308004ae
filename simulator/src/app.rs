//! The whole command: arguments to summary. `main` only parses, builds the runtime and exits.

use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::cli::{Cli, Target};
use crate::pacing::Budget;
use crate::progress::Progress;
use crate::race::Race;
use crate::run::{Stop, run};
use crate::sink::kinesis::ensure_stream;
use crate::sink::{
    Fatal, KinesisSink, KinesisSinkConfig, MqttSink, MqttSinkConfig, SdkKinesis, WriteSink,
};
use crate::stats::{Stats, Summary};

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The Kinesis sink's settings from the arguments.
pub fn kinesis_config(cli: &Cli) -> KinesisSinkConfig {
    KinesisSinkConfig {
        budget: Budget::for_shards(cli.shards),
        batch_size: cli.batch_size(),
        policy: cli.retry_policy(),
    }
}

/// Rides the race `cli` describes to `target`, and sums it up. Checked arguments only
/// ([`Cli::check`]).
pub async fn execute(cli: &Cli, target: Target, stop: &Stop) -> Summary {
    let plan = cli.plan(now_ms());
    if plan.spread_clamped() && !cli.quiet {
        eprintln!(
            "warning: --start-offset-spread {} s shortened to {:.1} s: the start window of race \
             {} closes then",
            plan.start_offset_spread,
            Duration::from_millis(plan.start_span_ms()).as_secs_f64(),
            plan.race_id()
        );
    }
    let mut race = Race::new(&plan);
    let stats = Arc::new(Stats::default());
    let progress = Progress::start(
        Arc::clone(&stats),
        plan.total_records(),
        race.ticks(),
        cli.quiet,
    );
    let started = Instant::now();
    let result = ride(cli, target, &mut race, &stats, stop).await;
    progress.finish();

    let mut summary = Summary::new(target.name(), &plan);
    summary.collect(&stats, started.elapsed(), target != Target::Stdout);
    summary.error = result.err().map(|fatal| fatal.0);
    summary
}

async fn ride(
    cli: &Cli,
    target: Target,
    race: &mut Race,
    stats: &Arc<Stats>,
    stop: &Stop,
) -> Result<(), Fatal> {
    let sink_stats = Arc::clone(stats);
    match target {
        Target::Stdout => {
            let out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            run(
                race,
                WriteSink::new(out, sink_stats),
                stats,
                cli.speed,
                stop,
            )
            .await
        }
        Target::Kinesis => {
            let stream = cli
                .stream_name
                .clone()
                .ok_or_else(|| Fatal("--stream-name is required".to_owned()))?;
            let config = alleycat_aws::load_config().await;
            let port = SdkKinesis::from_conf(&config, stream.as_str());
            if cli.create_stream {
                ensure_stream(&port.client, &stream, cli.shards, Duration::from_mins(2)).await?;
            }
            let keys = (0..race.plan().racers)
                .map(|racer| Arc::clone(race.partition_key(racer)))
                .collect();
            let sink = KinesisSink::start(port, keys, kinesis_config(cli), sink_stats);
            run(race, sink, stats, cli.speed, stop).await
        }
        Target::Mqtt => {
            let config = MqttSinkConfig {
                url: cli.url.clone(),
                client_id: format!("alleycat-sim-{:08x}", fastrand::u32(..)),
                drain_timeout: Duration::from_secs(cli.drain_timeout),
                policy: cli.retry_policy(),
            };
            let sink = MqttSink::connect(config, sink_stats).await?;
            run(race, sink, stats, cli.speed, stop).await
        }
    }
}

/// Writes the summary as pretty JSON to `path` (`-`: standard output).
pub fn write_summary_json(summary: &Summary, path: &std::path::Path) -> std::io::Result<()> {
    let mut json = serde_json::to_vec_pretty(summary).map_err(std::io::Error::other)?;
    json.push(b'\n');
    if path == std::path::Path::new("-") {
        let mut out = std::io::stdout().lock();
        out.write_all(&json)?;
        out.flush()
    } else {
        std::fs::write(path, json)
    }
}
