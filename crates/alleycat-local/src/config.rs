//! The stack's settings: [`StackArgs`] is the command line (every knob documented in `--help`),
//! [`StackConfig`] the resolved configuration the [`crate::Stack`] starts from.
//!
//! Defaults are the SAM template's wherever they change what AWS would bill (batch sizes, batching
//! windows, Firehose buffering; memory sizes are the meter's), so the bill the stack counts for a
//! run is the bill the template's deployment would get for it (`docs/cost.md`). Lower them for a
//! livelier laptop demo (`--aggregator-batching-window-ms 0`, `--firehose-interval-seconds 10`),
//! and the bill counts what that configuration would cost instead.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use alleycat_domain::trust::{DEFAULT_CLAIM_TTL_SECONDS, DEFAULT_CLOCK_SKEW_SECONDS};
use alleycat_domain::{DEFAULT_TOP_K, RaceClock};
use clap::Args;

use crate::broker::BrokerConfig;

/// How an event source mapping feeds a function (the template's `Events` properties).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappingConfig {
    /// Most records per invocation (`BatchSize`).
    pub batch_size: usize,
    /// How long to gather records before invoking with less than a full batch
    /// (`MaximumBatchingWindowInSeconds`).
    pub batching_window: Duration,
    /// Retries of a failing batch before its records go to the on-failure destination
    /// (`MaximumRetryAttempts`).
    pub max_retry_attempts: u32,
    /// Split a batch in two when the function fails as a whole (`BisectBatchOnFunctionError`).
    pub bisect: bool,
}

/// Firehose's buffering and its data transformation (`BufferingHints`, `ProcessingConfiguration`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirehoseConfig {
    /// Deliver when the oldest buffered record is this old (`IntervalInSeconds`).
    pub interval: Duration,
    /// Deliver when this many bytes are buffered (`SizeInMBs`).
    pub size_bytes: usize,
    /// Most bytes of records per transformer invocation (processor `BufferSizeInMBs`).
    pub processor_bytes: usize,
    /// Retries of a failed transformer invocation (processor `NumberOfRetries`).
    pub retries: u32,
}

/// The trust rules' settings (`alleycat_domain::trust`), as the template's parameters give them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustConfig {
    /// How far device clocks may be off, in seconds (`CLOCK_SKEW_SECONDS`).
    pub clock_skew_seconds: u32,
    /// Racers a race admits (`MAX_RACERS_PER_RACE`).
    pub max_racers_per_race: u32,
    /// How long a claim lasts unless renewed, in seconds (`CLAIM_TTL_SECONDS`).
    pub claim_ttl_seconds: u32,
}

/// Everything the stack needs to start.
#[derive(Clone, Debug)]
pub struct StackConfig {
    /// Where all state lives: stream, table, buckets, on-failure records.
    pub data_dir: PathBuf,
    /// Delete the data directory first.
    pub reset: bool,
    /// The HTTP server (API, history objects, frontend, Kinesis API).
    pub http: SocketAddr,
    /// The MQTT broker.
    pub broker: BrokerConfig,
    /// Shards of the stream.
    pub shards: u32,
    /// Race length and start window.
    pub clock: RaceClock,
    /// K of the class histories.
    pub top_k: u32,
    /// Who may ride as whom and what a plausible ride is.
    pub trust: TrustConfig,
    /// The race aggregator's event source.
    pub aggregator: MappingConfig,
    /// The leaderboard writer's event source.
    pub leaderboard: MappingConfig,
    /// The publisher's event source (the table's change stream).
    pub publisher: MappingConfig,
    /// Least time between two live messages of a race (the publisher's `PUBLISH_INTERVAL_MS`).
    pub publish_interval: Duration,
    /// Firehose.
    pub firehose: FirehoseConfig,
    /// Retries of a failed history-merger invocation (S3 notifications invoke asynchronously).
    pub merger_retry_attempts: u32,
    /// How long the stream and the change stream keep records.
    pub retention: Duration,
    /// The built frontend to serve at `/` (`frontend/dist`).
    pub frontend: Option<PathBuf>,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackArgs::default().config()
    }
}

/// The command line of `alleycat-local` (and of the simulator's in-process target).
#[derive(Clone, Debug, Args)]
pub struct StackArgs {
    /// Directory holding all state (stream, table, buckets, on-failure records). It survives
    /// restarts: every consumer resumes from its checkpoint.
    #[arg(long, default_value = "alleycat-data", help_heading = "State")]
    pub data_dir: PathBuf,

    /// Delete the data directory before starting.
    #[arg(long, help_heading = "State")]
    pub reset: bool,

    /// Hours the stream and the table's change stream keep records (as Kinesis and DynamoDB
    /// Streams: 24).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..),
          help_heading = "State")]
    pub retention_hours: u64,

    /// Address every listener binds to. Keep the loopback default unless other machines
    /// should reach the stack: only MQTT checks who connects (the HTTP server's Kinesis API
    /// and `/_local` routes are open to anyone who can reach them).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST), help_heading = "Network")]
    pub host: IpAddr,

    /// HTTP port: the frontend at /, the API at /api, history objects, the Kinesis API at /.
    #[arg(long, default_value_t = 8080, help_heading = "Network")]
    pub http_port: u16,

    /// MQTT port (TCP) of the broker's gate, for bikes and the simulator's mqtt target. Publishing
    /// takes the operator's secret (<data-dir>/operator-secret) or an identity's token.
    #[arg(long, default_value_t = 1883, help_heading = "Network")]
    pub mqtt_port: u16,

    /// MQTT over WebSocket port (ws://HOST:PORT/mqtt), for browsers: only from the stack's own
    /// pages (no Origin, or http://127.0.0.1:HTTP_PORT / http://localhost:HTTP_PORT).
    #[arg(long, default_value_t = 9001, help_heading = "Network")]
    pub ws_port: u16,

    /// Shards of the stream: partition keys (racer ids) spread over them by MD5 range; each
    /// shard has its own pollers and checkpoints. Fixed when the data directory is created.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64),
          help_heading = "Races")]
    pub shards: u32,

    /// Race length in seconds (`second` runs 1 to this).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u16).range(1..),
          help_heading = "Races")]
    pub race_seconds: u16,

    /// Start window in seconds: raceId = floor(start ms / (window x 1000)).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..),
          help_heading = "Races")]
    pub window_seconds: u32,

    /// Racers kept per second in the class histories (0: all).
    #[arg(long, default_value_t = DEFAULT_TOP_K, help_heading = "Races")]
    pub top_k: u32,

    /// How far a device's clock may be ahead of or behind the stack's, in seconds: a ride
    /// starting further in the future of its arrival, or arriving this long after its race
    /// closed, is rejected.
    #[arg(long, default_value_t = DEFAULT_CLOCK_SKEW_SECONDS,
          value_parser = clap::value_parser!(u32).range(0..=86_400), help_heading = "Trust")]
    pub clock_skew_seconds: u32,

    /// Racers one race admits; a racer beyond it is rejected and the race goes on.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=100_000),
          help_heading = "Trust")]
    pub max_racers_per_race: u32,

    /// Seconds a racer's claim lasts after its holder last claimed it.
    #[arg(long, default_value_t = DEFAULT_CLAIM_TTL_SECONDS,
          value_parser = clap::value_parser!(u32).range(60..=2_592_000), help_heading = "Trust")]
    pub claim_ttl_seconds: u32,

    /// Most records per race-aggregator invocation.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000),
          help_heading = "Event sources")]
    pub aggregator_batch_size: u32,

    /// Milliseconds the race aggregator's source gathers records before invoking with a partial
    /// batch (template: 1 s, which makes about one standings write per race a second). 0
    /// invokes as soon as records arrive, and writes and bills more.
    #[arg(long, default_value_t = 1000, help_heading = "Event sources")]
    pub aggregator_batching_window_ms: u64,

    /// Most records per leaderboard-writer invocation (only `final` events reach it).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000),
          help_heading = "Event sources")]
    pub leaderboard_batch_size: u32,

    /// Milliseconds the leaderboard writer's source gathers records (template: 5 s).
    #[arg(long, default_value_t = 5000, help_heading = "Event sources")]
    pub leaderboard_batching_window_ms: u64,

    /// Most change records per publisher invocation.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000),
          help_heading = "Event sources")]
    pub publisher_batch_size: u32,

    /// Least milliseconds between two live messages of a race (template: 1,000; IoT Core bills
    /// every message once per bike). 0 publishes every standings change.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=60_000),
          help_heading = "Event sources")]
    pub publish_interval_ms: u64,

    /// Retries of a failing Kinesis batch before it goes to the on-failure records (template: 10).
    #[arg(long, default_value_t = 10, help_heading = "Event sources")]
    pub stream_retry_attempts: u32,

    /// Retries of a failing publisher batch (template: 2; stale standings help no one).
    #[arg(long, default_value_t = 2, help_heading = "Event sources")]
    pub publisher_retry_attempts: u32,

    /// Retries of a failed history-merger invocation (asynchronous invocation: 2).
    #[arg(long, default_value_t = 2, help_heading = "Event sources")]
    pub merger_retry_attempts: u32,

    /// Firehose buffer interval in seconds: a raw/ object is written when the oldest buffered
    /// record is this old (template: 60). Lower, histories follow races closer and each object
    /// costs a history merge and its table writes.
    #[arg(long, default_value_t = 60, help_heading = "Firehose")]
    pub firehose_interval_seconds: u64,

    /// Firehose buffer size hint in MiB: a raw/ object is written when this much is buffered
    /// (template: 128, so the interval decides; each object costs a merge of every racer in it).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=128),
          help_heading = "Firehose")]
    pub firehose_size_mb: u32,

    /// Most MiB of records per transformer invocation (the processor's BufferSizeInMBs).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=3),
          help_heading = "Firehose")]
    pub firehose_processor_mb: u32,

    /// Built frontend to serve at / (default: frontend/dist when it exists).
    #[arg(long, help_heading = "HTTP")]
    pub frontend_dir: Option<PathBuf>,
}

impl Default for StackArgs {
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: StackArgs,
        }
        <Wrapper as clap::Parser>::parse_from(["alleycat-local"]).args
    }
}

impl StackArgs {
    /// The configuration these arguments describe.
    pub fn config(&self) -> StackConfig {
        let mib = |n: u32| n as usize * 1024 * 1024;
        let frontend = self.frontend_dir.clone().or_else(|| {
            let built = PathBuf::from("frontend/dist");
            built.join("index.html").is_file().then_some(built)
        });
        StackConfig {
            data_dir: self.data_dir.clone(),
            reset: self.reset,
            http: SocketAddr::new(self.host, self.http_port),
            broker: BrokerConfig {
                mqtt: SocketAddr::new(self.host, self.mqtt_port),
                websocket: SocketAddr::new(self.host, self.ws_port),
                ..BrokerConfig::default()
            },
            shards: self.shards,
            clock: RaceClock::new(self.race_seconds, self.window_seconds),
            top_k: self.top_k,
            trust: TrustConfig {
                clock_skew_seconds: self.clock_skew_seconds,
                max_racers_per_race: self.max_racers_per_race,
                claim_ttl_seconds: self.claim_ttl_seconds,
            },
            aggregator: MappingConfig {
                batch_size: self.aggregator_batch_size as usize,
                batching_window: Duration::from_millis(self.aggregator_batching_window_ms),
                max_retry_attempts: self.stream_retry_attempts,
                bisect: true,
            },
            leaderboard: MappingConfig {
                batch_size: self.leaderboard_batch_size as usize,
                batching_window: Duration::from_millis(self.leaderboard_batching_window_ms),
                max_retry_attempts: self.stream_retry_attempts,
                bisect: true,
            },
            publisher: MappingConfig {
                batch_size: self.publisher_batch_size as usize,
                batching_window: Duration::ZERO,
                max_retry_attempts: self.publisher_retry_attempts,
                bisect: true,
            },
            publish_interval: Duration::from_millis(self.publish_interval_ms),
            firehose: FirehoseConfig {
                interval: Duration::from_secs(self.firehose_interval_seconds),
                size_bytes: mib(self.firehose_size_mb),
                processor_bytes: mib(self.firehose_processor_mb),
                retries: 3,
            },
            merger_retry_attempts: self.merger_retry_attempts,
            retention: Duration::from_secs(self.retention_hours * 3600),
            frontend,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_mirror_the_template_where_they_should() {
        let config = StackConfig::default();
        assert_eq!(config.http.to_string(), "127.0.0.1:8080");
        assert_eq!(config.broker.mqtt.to_string(), "127.0.0.1:1883");
        assert_eq!(config.broker.websocket.to_string(), "127.0.0.1:9001");
        assert_eq!(config.clock, RaceClock::default());
        assert_eq!(config.aggregator.batch_size, 1000);
        assert_eq!(config.aggregator.batching_window, Duration::from_secs(1));
        assert_eq!(config.leaderboard.batching_window, Duration::from_secs(5));
        assert_eq!(config.publish_interval, Duration::from_secs(1));
        assert_eq!(
            (
                config.publisher.batch_size,
                config.publisher.max_retry_attempts
            ),
            (1000, 2)
        );
        assert_eq!(config.aggregator.max_retry_attempts, 10);
        assert_eq!(config.firehose.size_bytes, 128 << 20);
        assert_eq!(config.firehose.interval, Duration::from_secs(60));
        assert_eq!(config.firehose.processor_bytes, 1 << 20);
        assert_eq!(config.retention, Duration::from_secs(86_400));
    }

    /// The lines of `template.yaml` from `start` up to the next line indented as little.
    fn template_section(start: &str) -> Vec<&'static str> {
        let template = include_str!("../../../template.yaml");
        let indent = start.len() - start.trim_start().len();
        template
            .lines()
            .skip_while(|line| *line != start)
            .skip(1)
            .take_while(|line| {
                line.trim().is_empty() || line.len() - line.trim_start().len() > indent
            })
            .collect()
    }

    /// What the template sets where it changes the bill, read from `template.yaml` itself: the
    /// stack counts what that deployment would be billed only while its defaults are these.
    #[test]
    fn billed_defaults_are_the_templates() {
        let has = |section: &[&str], line: &str| section.iter().any(|l| l.trim() == line);
        let aggregator = template_section("  RaceAggregatorFunction:");
        assert!(has(&aggregator, "BatchSize: 1000"), "{aggregator:?}");
        assert!(has(&aggregator, "MaximumBatchingWindowInSeconds: 1"));
        let writer = template_section("  LeaderboardWriterFunction:");
        assert!(has(&writer, "MaximumBatchingWindowInSeconds: 5"));
        let publisher = template_section("  PublisherFunction:");
        assert!(has(&publisher, "BatchSize: 1000"));
        assert!(has(
            &template_section("  FirehoseBufferIntervalSeconds:"),
            "Default: 60"
        ));
        assert!(has(
            &template_section("  FirehoseBufferSizeMB:"),
            "Default: 128"
        ));
        assert!(has(&template_section("  ShardCount:"), "Default: 1"));

        let config = StackConfig::default();
        assert_eq!(config.aggregator.batch_size, 1000);
        assert_eq!(config.aggregator.batching_window, Duration::from_secs(1));
        assert_eq!(config.leaderboard.batching_window, Duration::from_secs(5));
        assert_eq!(config.publisher.batch_size, 1000);
        assert_eq!(config.firehose.interval, Duration::from_secs(60));
        assert_eq!(config.firehose.size_bytes, 128 << 20);
        assert_eq!(config.shards, 1);
    }
}
