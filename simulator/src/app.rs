//! The whole command: arguments to summary. `main` only parses, builds the runtime and exits.

use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::Duration;

use alleycat_domain::RaceKey;
use alleycat_local::Stack;
use tokio::time::Instant;

use crate::cli::{Cli, Target};
use crate::local;
use crate::pacing::Budget;
use crate::progress::Progress;
use crate::race::Race;
use crate::run::{Stop, run};
use crate::sink::kinesis::ensure_stream;
use crate::sink::{
    Fatal, KinesisSink, KinesisSinkConfig, MqttSink, MqttSinkConfig, SdkKinesis, WriteSink,
};
use crate::stats::{Cost, Stats, Summary};

pub use alleycat_local::now_ms;

/// The Kinesis sink's settings from the arguments.
pub fn kinesis_config(cli: &Cli) -> KinesisSinkConfig {
    KinesisSinkConfig {
        budget: Budget::for_shards(cli.shards),
        batch_size: cli.batch_size(),
        policy: cli.retry_policy(),
    }
}

/// What a run leaves behind: its summary, and the embedded stack it started (`--target local`),
/// still serving.
pub struct Run {
    /// The summary.
    pub summary: Summary,
    /// The stack of `--target local`.
    pub stack: Option<Arc<Stack>>,
}

/// Rides the race `cli` describes to its target, and sums it up. Checked arguments only
/// ([`Cli::check`]). With `--target local`, the stack is started first and has processed the race
/// (results printed) when this returns.
pub async fn execute(cli: &Cli, stop: &Stop) -> Run {
    let target = cli.target;
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
    let stack = if target == Target::Local {
        match local::start(cli).await {
            Ok(stack) => Some(stack),
            Err(fatal) => {
                let mut summary = Summary::new(target.name(), &plan);
                summary.error = Some(fatal.0);
                return Run {
                    summary,
                    stack: None,
                };
            }
        }
    } else {
        None
    };
    let stats = Arc::new(Stats::default());
    let progress = Progress::start(
        Arc::clone(&stats),
        plan.total_records(),
        race.ticks(),
        cli.quiet,
    );
    let started = Instant::now();
    let result = ride(cli, stack.as_ref(), &mut race, &stats, stop, &progress).await;
    progress.finish();
    let mut summary = Summary::new(target.name(), &plan);
    summary.collect(&stats, started.elapsed(), target != Target::Stdout);
    if let Some(stack) = &stack {
        let key = RaceKey {
            class_id: plan.class_id,
            race_id: plan.race_id(),
        };
        if let Some(bill) = local::settle(cli, stack, key).await {
            summary.cost = Some(Cost {
                region: bill.region,
                price_date: bill.price_date,
                dollars: bill.total,
            });
        }
    }
    summary.error = result.err().map(|fatal| fatal.0);
    Run { summary, stack }
}

async fn ride(
    cli: &Cli,
    stack: Option<&Arc<Stack>>,
    race: &mut Race,
    stats: &Arc<Stats>,
    stop: &Stop,
    progress: &Progress,
) -> Result<(), Fatal> {
    let sink_stats = Arc::clone(stats);
    match cli.target {
        Target::Local => {
            let stack =
                stack.ok_or_else(|| Fatal("the embedded stack is not running".to_owned()))?;
            local::ride(cli, stack, race, stats, stop, progress).await
        }
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
            let credentials = mqtt_credentials(cli)?;
            let client_id = match &credentials {
                // An identity connects under its own id, as the gate requires.
                Some((username, _)) if alleycat_local::identity::is_identity_id(username) => {
                    username.clone()
                }
                _ => format!("alleycat-sim-{:08x}", fastrand::u32(..)),
            };
            let config = MqttSinkConfig {
                url: cli.url.clone(),
                client_id,
                credentials,
                drain_timeout: Duration::from_secs(cli.drain_timeout),
                policy: cli.retry_policy(),
            };
            let sink = MqttSink::connect(config, sink_stats).await?;
            run(race, sink, stats, cli.speed, stop).await
        }
    }
}

/// The MQTT user name and password of `--target mqtt`: as given, or for `--mqtt-username
/// operator` without a password, the operator secret alleycat-local keeps in the data
/// directory.
fn mqtt_credentials(cli: &Cli) -> Result<Option<(String, String)>, Fatal> {
    let Some(username) = cli.mqtt_username.clone() else {
        return Ok(None);
    };
    let password = match &cli.mqtt_password {
        Some(password) => password.clone(),
        None if username == alleycat_local::identity::OPERATOR_USERNAME => {
            let path = cli
                .local
                .data_dir
                .join(alleycat_local::identity::OPERATOR_SECRET_FILE);
            std::fs::read_to_string(&path)
                .map(|secret| secret.trim().to_owned())
                .map_err(|e| {
                    Fatal(format!(
                        "--mqtt-username operator without --mqtt-password: reading {}: {e}",
                        path.display()
                    ))
                })?
        }
        None => String::new(),
    };
    Ok(Some((username, password)))
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
