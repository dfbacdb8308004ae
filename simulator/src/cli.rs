//! Command-line arguments, and their checks beyond what clap does alone.

use std::path::PathBuf;
use std::time::Duration;

use alleycat_domain::message::{MAX_DEVICE_TIMESTAMP_MS, MAX_RACER_ID, MIN_DEVICE_TIMESTAMP_MS};
use alleycat_domain::trust::DEFAULT_CLOCK_SKEW_SECONDS;
use alleycat_ports::RetryPolicy;
use clap::{Parser, ValueEnum};

use crate::pacing::MAX_REQUEST_RECORDS;
use crate::race::{DEFAULT_FIRST_RACER_ID, DEFAULT_SEED, RacePlan};

/// Where the messages go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// The embedded stack, started in this process (the default): the race goes through the
    /// whole application, and the stack keeps serving the browser afterwards.
    Local,
    /// NDJSON on standard output, one message per line.
    Stdout,
    /// Kinesis PutRecords to --stream-name, with the standard AWS configuration.
    Kinesis,
    /// MQTT QoS 1 publishes to `alleycat-publish` on the broker at --url.
    Mqtt,
}

impl Target {
    /// The name used in summaries.
    pub fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Stdout => "stdout",
            Self::Kinesis => "kinesis",
            Self::Mqtt => "mqtt",
        }
    }
}

const ABOUT: &str = "Rides one Alleycat race: N seeded racers each send one JSON message per \
                     second, the last one `final`, through the embedded stack (started in this \
                     process), or to Kinesis, an MQTT broker or stdout.";

const AFTER_HELP: &str = "\
Examples:
  simulator --racers 1000          (the embedded stack in-process: open the URL it prints)
  simulator --racers 50 --seconds 30 --speed 10 --exit-when-done
  simulator --target stdout --racers 1000 --seconds 300 --speed 0 > race.ndjson
  simulator --target kinesis --stream-name alleycat --shards 1 --racers 1000
  AWS_ENDPOINT_URL=http://127.0.0.1:5000 simulator --target kinesis --stream-name s --create-stream
  simulator --target mqtt --url mqtt://127.0.0.1:1883 --mqtt-username operator --racers 50

Exit status: 0 every record delivered; 1 fatal error (target unreachable, stream missing,
stdout closed, the embedded stack failed to start); 2 bad arguments; 3 the race ended but
records were lost.";

/// The simulator's command line.
#[derive(Clone, Debug, Parser)]
#[command(name = "simulator", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    /// Where to send the messages.
    #[arg(long, value_enum, default_value_t = Target::Local, help_heading = "Target")]
    pub target: Target,

    /// The embedded stack of `--target local`.
    #[command(flatten)]
    pub local: LocalArgs,

    /// Kinesis stream name (or ARN) to put the records into. Required with --target kinesis.
    /// Region, credentials and endpoint come from the standard AWS configuration and
    /// environment (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, ...).
    #[arg(long, required_if_eq("target", "kinesis"), help_heading = "Kinesis")]
    pub stream_name: Option<String>,

    /// Shards of the stream: records are paced to stay within this many times 1,000 records/s
    /// and 1 MiB/s, spread over each second in 100 ms slots.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000),
          help_heading = "Kinesis")]
    pub shards: u32,

    /// Most records in one PutRecords request (Kinesis allows 1-500; requests also stay under
    /// 5 MiB).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=500),
          help_heading = "Kinesis")]
    pub batch_size: u16,

    /// Attempts per record, the first included: a record refused this many times (a failed
    /// entry, throttling, a 5xx) is lost. Also: this many failed requests in a row (other than
    /// throttling), or MQTT connection attempts, end the run.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100),
          help_heading = "Kinesis")]
    pub max_attempts: u32,

    /// Backoff ceiling of the first retry, in milliseconds; it doubles with each retry, and
    /// the wait is drawn uniformly below it (full jitter).
    #[arg(long, default_value_t = 100, help_heading = "Kinesis")]
    pub retry_base_ms: u64,

    /// Largest backoff ceiling, in milliseconds.
    #[arg(long, default_value_t = 5_000, help_heading = "Kinesis")]
    pub retry_max_ms: u64,

    /// Create the stream with --shards shards if it does not exist, and wait until it is
    /// active (for moto, LocalStack or a scratch account).
    #[arg(long, help_heading = "Kinesis")]
    pub create_stream: bool,

    /// MQTT broker to publish to, as mqtt://host:port (plain TCP).
    #[arg(long, default_value = "mqtt://127.0.0.1:1883", help_heading = "MQTT")]
    pub url: String,

    /// MQTT user name. A running alleycat-local takes publishes from `operator` (the trusted
    /// producer, whose records need no claim) or from an identity (its `local:…` id, which then
    /// is the client id too, with its token as password); anonymous clients may only subscribe.
    #[arg(long, help_heading = "MQTT")]
    pub mqtt_username: Option<String>,

    /// MQTT password. With --mqtt-username operator and no password, the operator secret is read
    /// from <--data-dir>/operator-secret, where alleycat-local keeps it.
    #[arg(
        long,
        env = "ALLEYCAT_MQTT_PASSWORD",
        hide_env_values = true,
        help_heading = "MQTT"
    )]
    pub mqtt_password: Option<String>,

    /// Seconds to wait at the end for the broker's last acknowledgements; publishes still
    /// unacknowledged then are lost.
    #[arg(long, default_value_t = 30, help_heading = "MQTT")]
    pub drain_timeout: u64,

    /// Racers in the race (1-1,000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000),
          help_heading = "Race")]
    pub racers: u32,

    /// Racer id of the first racer; the others follow (ids must stay within 0-1,000,000).
    /// A racer id is always the same person: same name, same ability. The default, 101, keeps
    /// clear of racers 1-100, which the browser page offers: a lower id rides as one of the
    /// page's racers, whose rider then shares standings, final and leaderboard row with it.
    #[arg(long, default_value_t = DEFAULT_FIRST_RACER_ID,
          value_parser = clap::value_parser!(u32).range(0..=MAX_RACER_ID), help_heading = "Race")]
    pub first_racer_id: u32,

    /// Class raced (1-6).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=6),
          help_heading = "Race")]
    pub class_id: u8,

    /// Race length in seconds: each racer sends seconds 1 to this, the last one as `final`.
    /// Must not exceed the race length the receiving stack is configured with.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u16).range(1..),
          help_heading = "Race")]
    pub seconds: u16,

    /// Start window of races in seconds: raceId = floor(start ms / (window x 1000)), as the
    /// stack computes it.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..),
          help_heading = "Race")]
    pub window_seconds: u32,

    /// Spread the racers' starts uniformly over this many seconds (0: everyone starts within
    /// the first second). Shortened, with a warning, so that every start stays in the start
    /// window of the race.
    #[arg(long, default_value_t = 0, help_heading = "Race")]
    pub start_offset_spread: u32,

    /// Seed of the race: each racer's form, pacing style, start offset and noise, the course,
    /// the uuids. The same seed and --start-ms give byte-identical messages.
    #[arg(long, default_value_t = DEFAULT_SEED, help_heading = "Race")]
    pub seed: u64,

    /// Start of the race, epoch milliseconds (default: now). Fix it for reproducible output.
    #[arg(long, value_parser = clap::value_parser!(u64)
          .range(MIN_DEVICE_TIMESTAMP_MS.unsigned_abs()..MAX_DEVICE_TIMESTAMP_MS.unsigned_abs()),
          help_heading = "Race")]
    pub start_ms: Option<u64>,

    /// Time compression: 1 rides in real time, 10 ten times faster, 0 as fast as possible
    /// (Kinesis still keeps to the --shards budget).
    #[arg(long, default_value_t = 1.0, value_parser = parse_speed, help_heading = "Race")]
    pub speed: f64,

    /// No progress bar and no summary on stderr (errors are still printed).
    #[arg(long, short, help_heading = "Output")]
    pub quiet: bool,

    /// Write the summary as JSON to this file at exit (`-`: standard output, not with
    /// --target stdout).
    #[arg(long, value_name = "PATH", help_heading = "Output")]
    pub summary_json: Option<PathBuf>,
}

/// The embedded stack's settings when the simulator starts it (`--target local`); the race's own
/// settings (`--seconds`, `--window-seconds`, `--shards`) configure it too. `alleycat-local
/// --help` documents the stack's other knobs.
#[derive(Clone, Debug, clap::Args)]
pub struct LocalArgs {
    /// Directory of the stack's state; it survives the run, so races accumulate (leaderboard,
    /// history).
    #[arg(long, default_value = "alleycat-data", help_heading = "Embedded stack")]
    pub data_dir: PathBuf,

    /// Delete the data directory first.
    #[arg(long, help_heading = "Embedded stack")]
    pub reset: bool,

    /// HTTP port of the frontend and the API.
    #[arg(long, default_value_t = 8080, help_heading = "Embedded stack")]
    pub http_port: u16,

    /// MQTT (TCP) port of the broker.
    #[arg(long, default_value_t = 1883, help_heading = "Embedded stack")]
    pub mqtt_port: u16,

    /// MQTT over WebSocket port, for browsers.
    #[arg(long, default_value_t = 9001, help_heading = "Embedded stack")]
    pub ws_port: u16,

    /// Firehose buffer interval in seconds (template: 60, so the bill is the deployment's; lower
    /// makes the all-time history follow the race closer, and bills more objects).
    #[arg(long, default_value_t = 60, help_heading = "Embedded stack")]
    pub firehose_interval_seconds: u64,

    /// Stop the stack once the race is processed, instead of serving the browser until Ctrl-C.
    #[arg(long, help_heading = "Embedded stack")]
    pub exit_when_done: bool,

    /// After the race, print what it would have cost on AWS: `text` (a table on stderr), `json`
    /// (the bill on stdout), or `off`. The summary (and --summary-json) carries the total.
    #[arg(long, value_enum, default_value_t = CostReport::Text, help_heading = "Embedded stack")]
    pub cost_report: CostReport,

    /// Region whose list prices the cost report uses.
    #[arg(long, default_value = "us-east-1", help_heading = "Embedded stack")]
    pub cost_region: String,
}

/// How the cost of a race on the embedded stack is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CostReport {
    /// A table on stderr.
    Text,
    /// The bill as JSON on stdout.
    Json,
    /// Only the total, in the summary.
    Off,
}

impl Cli {
    /// The embedded stack's configuration for this race.
    pub fn stack_config(&self) -> alleycat_local::StackConfig {
        let mut args = alleycat_local::config::StackArgs::default();
        args.data_dir.clone_from(&self.local.data_dir);
        args.reset = self.local.reset;
        args.http_port = self.local.http_port;
        args.mqtt_port = self.local.mqtt_port;
        args.ws_port = self.local.ws_port;
        args.firehose_interval_seconds = self.local.firehose_interval_seconds;
        args.shards = self.shards;
        args.race_seconds = self.seconds;
        args.window_seconds = self.window_seconds;
        args.config()
    }
}

fn parse_speed(value: &str) -> Result<f64, String> {
    let speed: f64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    if speed.is_finite() && speed >= 0.0 {
        Ok(speed)
    } else {
        Err(format!(
            "{value} is not a speed: use 1 for real time, 10 for ten times faster, 0 for as fast \
             as possible"
        ))
    }
}

/// Arguments that parse but do not go together.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl Cli {
    /// Checks what clap cannot check alone.
    pub fn check(&self) -> Result<(), UsageError> {
        let last_id = u64::from(self.first_racer_id) + u64::from(self.racers) - 1;
        if last_id > MAX_RACER_ID.unsigned_abs() {
            return Err(UsageError(format!(
                "--first-racer-id {} with --racers {} gives racer ids up to {last_id}, past the \
                 largest valid racer id {MAX_RACER_ID}",
                self.first_racer_id, self.racers
            )));
        }
        if self.target == Target::Stdout
            && self.summary_json.as_deref() == Some(std::path::Path::new("-"))
        {
            return Err(UsageError(
                "--summary-json - would mix the summary into the messages of --target stdout: \
                 give a file"
                    .to_owned(),
            ));
        }
        if let Some(start) = self.start_ms {
            // The last message: the latest start in the window, plus the race.
            let last = start + (u64::from(self.window_seconds) + u64::from(self.seconds)) * 1000;
            if last > MAX_DEVICE_TIMESTAMP_MS.unsigned_abs() {
                return Err(UsageError(format!(
                    "--start-ms {start} is too late: the race's deviceTimestamps would pass \
                     {MAX_DEVICE_TIMESTAMP_MS} (2100-01-01), which the stack rejects"
                )));
            }
        }
        // A stack of ours (in-process or over MQTT) would reject an implausible race whole; a
        // Kinesis stream may be anything (moto, a test harness): `warnings` says it there.
        if matches!(self.target, Target::Local | Target::Mqtt) {
            self.check_plausible()?;
        }
        if self.target == Target::Local
            && let Err(error) = alleycat_cost::PriceTable::builtin().region(&self.local.cost_region)
        {
            return Err(UsageError(format!("--cost-region: {error}")));
        }
        if self.retry_base_ms > self.retry_max_ms {
            return Err(UsageError(format!(
                "--retry-base-ms {} is larger than --retry-max-ms {}",
                self.retry_base_ms, self.retry_max_ms
            )));
        }
        Ok(())
    }

    /// What the user should know before the race: for `--target kinesis`, why a deployed stack
    /// would reject the race ([`Self::check`] refuses it outright for the embedded stack).
    pub fn warnings(&self) -> Vec<String> {
        match (self.target, self.check_plausible()) {
            (Target::Kinesis, Err(UsageError(reason))) => vec![reason],
            _ => Vec::new(),
        }
    }

    /// A race sent to a stack must be plausible when it arrives (`alleycat_domain::trust`): not
    /// a race that has closed, and no ride starting beyond the clock-skew allowance after its
    /// records arrive. Only `--target stdout` replays any race.
    fn check_plausible(&self) -> Result<(), UsageError> {
        let skew_ms = u64::from(DEFAULT_CLOCK_SKEW_SECONDS) * 1000;
        let now = alleycat_local::now_ms();
        if let Some(start) = self.start_ms {
            let closes =
                start + (u64::from(self.window_seconds) + u64::from(self.seconds)) * 1000 + skew_ms;
            if closes < now {
                return Err(UsageError(format!(
                    "--start-ms {start} is a race that closed before now: a stack rejects records \
                     that arrive after their race closed (rule closed); replay old races with \
                     --target stdout"
                )));
            }
            if start > now + skew_ms {
                return Err(UsageError(format!(
                    "--start-ms {start} is more than {DEFAULT_CLOCK_SKEW_SECONDS} s in the future: \
                     a stack rejects rides starting after their records arrive (rule future)"
                )));
            }
        }
        // Compressed time sends a late starter's first second early: its start lies
        // `offset × (1 − 1/speed)` after that second arrives.
        let compressed = self.speed == 0.0 || self.speed > 1.0;
        if compressed && u64::from(self.start_offset_spread) * 1000 > skew_ms {
            return Err(UsageError(format!(
                "--start-offset-spread {} with --speed {} would start rides further ahead of \
                 their first message than the stack's {DEFAULT_CLOCK_SKEW_SECONDS} s allowance \
                 (rule future): spread starts over at most {DEFAULT_CLOCK_SKEW_SECONDS} s, or \
                 ride in real time",
                self.start_offset_spread, self.speed
            )));
        }
        Ok(())
    }

    /// The race these arguments describe, starting at `now_ms` unless `--start-ms` is given.
    pub fn plan(&self, now_ms: u64) -> RacePlan {
        RacePlan {
            seed: self.seed,
            class_id: self.class_id,
            racers: self.racers,
            first_racer_id: self.first_racer_id,
            seconds: self.seconds,
            window_seconds: self.window_seconds,
            start_ms: self.start_ms.unwrap_or(now_ms),
            start_offset_spread: self.start_offset_spread,
        }
    }

    /// Retries: attempts and backoff.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts,
            base_delay: Duration::from_millis(self.retry_base_ms),
            max_delay: Duration::from_millis(self.retry_max_ms),
        }
    }

    /// Most records per PutRecords request.
    pub fn batch_size(&self) -> usize {
        usize::from(self.batch_size).min(MAX_REQUEST_RECORDS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["simulator", "--target", "stdout"]).unwrap();
        assert_eq!(cli.racers, 100);
        assert_eq!(cli.first_racer_id, 101, "past the page's racers 1-100");
        assert_eq!(cli.plan(0).first_racer_id, 101);
        assert_eq!(cli.seconds, 300);
        assert_eq!(cli.seed, DEFAULT_SEED);
        assert!((cli.speed - 1.0).abs() < f64::EPSILON);
        cli.check().unwrap();
    }

    #[test]
    fn cross_checks() {
        let cli = Cli::try_parse_from([
            "simulator",
            "--target",
            "stdout",
            "--first-racer-id",
            "999999",
            "--racers",
            "10",
        ])
        .unwrap();
        assert!(cli.check().unwrap_err().0.contains("1000008"));
        let cli = Cli::try_parse_from(["simulator", "--target", "stdout", "--summary-json", "-"])
            .unwrap();
        assert!(cli.check().is_err());
        assert!(Cli::try_parse_from(["simulator", "--target", "kinesis"]).is_err());
        assert!(Cli::try_parse_from(["simulator", "--first-racer-id", "1000001"]).is_err());
        assert!(Cli::try_parse_from(["simulator", "--first-racer-id", "-1"]).is_err());
        assert!(Cli::try_parse_from(["simulator", "--speed", "-1"]).is_err());
        assert!(Cli::try_parse_from(["simulator", "--speed", "inf"]).is_err());
    }
}
