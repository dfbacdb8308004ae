//! `alleycat-admin`: operator commands. `alleycat-admin rebuild --help` says what a rebuild
//! does; the crate docs say why.

use std::path::PathBuf;
use std::time::Duration;

use alleycat_admin::{Options, Report, Rules, Scope, parse_time};
use alleycat_domain::{DEFAULT_TOP_K, Plausibility, RaceClock};
use alleycat_ports::HistoryObjects;
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

/// Operator commands for Alleycat.
#[derive(Parser, Debug)]
#[command(name = "alleycat-admin", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Recompute every view from the delivery archive under today's rules and write it back:
    /// all-time views (leaderboard, bests, class histories) from the whole archive, per-race
    /// views (standings, finals, traces) for races in --since/--until. Stored documents are
    /// replaced (conditionally, as the functions write); races still receiving data keep what the
    /// archive does not hold yet.
    Rebuild(RebuildArgs),
}

#[derive(Args, Debug)]
struct RebuildArgs {
    /// An embedded stack's data directory (the stack must be stopped: its LOCK is taken).
    #[arg(long, conflicts_with_all = ["table", "delivery_bucket", "history_bucket"])]
    data_dir: Option<PathBuf>,
    /// The DynamoDB table (AWS; standard AWS configuration, AWS_ENDPOINT_URL for moto).
    #[arg(long, requires_all = ["delivery_bucket", "history_bucket"])]
    table: Option<String>,
    /// The bucket Firehose delivers raw/ to.
    #[arg(long)]
    delivery_bucket: Option<String>,
    /// The bucket of class histories.
    #[arg(long)]
    history_bucket: Option<String>,
    /// A racer whose records move no view (repeatable).
    #[arg(long = "exclude-racer", value_name = "RACER_ID")]
    exclude_racers: Vec<u32>,
    /// A class to rebuild (repeatable; default: every class).
    #[arg(long = "class", value_name = "CLASS_ID", value_parser = clap::value_parser!(u8).range(1..=6))]
    classes: Vec<u8>,
    /// Rebuild per-race views of races starting from this time (RFC 3339 or epoch ms).
    #[arg(long, value_parser = parse_time)]
    since: Option<u64>,
    /// … and before this time.
    #[arg(long, value_parser = parse_time)]
    until: Option<u64>,
    /// Print what would change, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Race length, as deployed (RACE_SECONDS).
    #[arg(long, default_value_t = 300)]
    race_seconds: u16,
    /// Start window, as deployed (WINDOW_SECONDS).
    #[arg(long, default_value_t = 300)]
    window_seconds: u32,
    /// Clock skew allowed, as deployed (CLOCK_SKEW_SECONDS).
    #[arg(long, default_value_t = alleycat_domain::trust::DEFAULT_CLOCK_SKEW_SECONDS)]
    clock_skew_seconds: u32,
    /// Racers per second in class histories, as deployed (HISTORY_TOP_K).
    #[arg(long, default_value_t = DEFAULT_TOP_K)]
    top_k: u32,
    /// How long after a race closes its records may still be buffered on their way to the
    /// archive (Firehose buffers up to 900 s); such races keep their stored data.
    #[arg(long, default_value_t = 900)]
    settle_seconds: u32,
    /// Rebuild even though stored records are older than the archive (they are lost).
    #[arg(long)]
    allow_archive_gaps: bool,
    /// Reads and writes in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Hide the progress bar.
    #[arg(long)]
    no_progress: bool,
}

impl RebuildArgs {
    fn options(&self) -> Options {
        let rules = Rules {
            plausibility: Plausibility::new(
                RaceClock::new(self.race_seconds, self.window_seconds),
                self.clock_skew_seconds,
            ),
            scope: Scope {
                classes: self.classes.iter().copied().collect(),
                excluded: self.exclude_racers.iter().copied().collect(),
                since_ms: self.since,
                until_ms: self.until,
            },
            top_k: self.top_k,
        };
        let mut options = Options::new(rules, alleycat_local::now_ms());
        options.settle_seconds = self.settle_seconds;
        options.dry_run = self.dry_run;
        options.allow_archive_gaps = self.allow_archive_gaps;
        options.concurrency = self.concurrency;
        options
    }

    fn progress(&self) -> ProgressBar {
        if self.no_progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} archive {bytes}/{total_bytes} {wide_bar} {binary_bytes_per_sec} {eta}",
            )
            .expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }
}

async fn rebuild(args: RebuildArgs) -> anyhow::Result<Report> {
    let options = args.options();
    let progress = args.progress();
    let report = if let Some(dir) = &args.data_dir {
        let data = alleycat_local::repair::DataDir::open(dir)
            .with_context(|| format!("opening {}", dir.display()))?;
        let histories = HistoryObjects::new(data.history.clone(), args.top_k);
        alleycat_admin::rebuild(&data.delivery, &data.table, &histories, &options, &progress)
            .await?
    } else {
        let (Some(table), Some(delivery), Some(history)) =
            (&args.table, &args.delivery_bucket, &args.history_bucket)
        else {
            anyhow::bail!(
                "say where: --data-dir <DIR>, or --table, --delivery-bucket and --history-bucket"
            );
        };
        let config = alleycat_aws::load_config().await;
        let table = alleycat_aws::DynamoTable::from_conf(&config, table);
        let delivery = alleycat_aws::S3Objects::from_conf(&config, delivery);
        let histories = HistoryObjects::new(
            alleycat_aws::S3Objects::from_conf(&config, history),
            args.top_k,
        );
        alleycat_admin::rebuild(&delivery, &table, &histories, &options, &progress).await?
    };
    progress.finish_and_clear();
    Ok(report)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Rebuild(args) => {
            let report = rebuild(args).await?;
            println!("{report}");
        }
    }
    Ok(())
}
