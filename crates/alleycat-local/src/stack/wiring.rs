//! The stack wired as the SAM template wires the AWS services: the stores, the six functions
//! bound to them and configured from the environment the template gives them, and the event
//! sources between them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use alleycat_ports::HistoryObjects;
use api::Api;
use history_merger::HistoryMerger;
use leaderboard_writer::LeaderboardWriter;
use publisher::StandingsPublisher;
use race_aggregator::RaceAggregator;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use transformer::Transformer;

use super::status::Parts;
use super::{DELIVERY_BUCKET, HISTORY_BUCKET, STREAM_NAME, TABLE};
use crate::broker::{BrokerPublisher, LocalBroker};
use crate::config::{MappingConfig, StackConfig};
use crate::db::Db;
use crate::error::LocalError;
use crate::meter::{Meter, MeteredPublisher};
use crate::objects::LocalBucket;
use crate::sources::Invocations;
use crate::sources::dynamodb::ChangeShard;
use crate::sources::filter::Pattern;
use crate::sources::firehose::Firehose;
use crate::sources::kinesis::StreamShard;
use crate::sources::on_failure::OnFailure;
use crate::sources::poller::{Context, Mapping, Starting, poll};
use crate::sources::s3::{NOTIFICATIONS, NotificationShard};
use crate::stream::LocalStream;
use crate::table::LocalTable;

/// The leaderboard writer's filter: only `final` events (as in `template.yaml`).
pub const FINALS_FILTER: &str = r#"{"data": {"event": ["final"]}}"#;
/// The publisher's filter: only inserted or modified standings (as in `template.yaml`).
pub const STANDINGS_FILTER: &str =
    r#"{"eventName": ["INSERT", "MODIFY"], "dynamodb": {"Keys": {"sk": {"S": ["standings"]}}}}"#;

type Aggregator = RaceAggregator<Arc<LocalTable>>;
type Writer = LeaderboardWriter<Arc<LocalTable>>;
type Merger = HistoryMerger<Arc<LocalBucket>, HistoryObjects<Arc<LocalBucket>>, Arc<LocalTable>>;
pub(super) type LocalApi = Api<Arc<LocalTable>, Arc<LocalBucket>>;

/// The stack's durable stores under the data directory.
pub(super) struct Stores {
    pub(super) stream: Arc<LocalStream>,
    pub(super) notifications: Arc<LocalStream>,
    pub(super) table: Arc<LocalTable>,
    pub(super) delivery: Arc<LocalBucket>,
    pub(super) history: Arc<LocalBucket>,
}

impl Stores {
    /// Opens (creating) every store; presigned URLs point at `url`; `meter` counts what the
    /// stream, the table and the buckets do.
    pub(super) fn open(
        config: &StackConfig,
        url: &str,
        meter: &Arc<Meter>,
    ) -> Result<Self, LocalError> {
        let dir = &config.data_dir;
        let stream_db = Arc::new(Db::open(&dir.join("stream.db"))?);
        let stream = LocalStream::open(Arc::clone(&stream_db), STREAM_NAME, config.shards)?
            .metered(Arc::clone(meter));
        // The notifications share the stream's database: Firehose commits its checkpoints and
        // the notification of what it delivered in one transaction.
        let notifications = LocalStream::open(stream_db, NOTIFICATIONS, 1)?;
        let table = LocalTable::open(Arc::new(Db::open(&dir.join("table.db"))?))?
            .metered(Arc::clone(meter));
        let bucket = |name: &str| {
            LocalBucket::open(name, dir.join("buckets").join(name), url)
                .map(|bucket| bucket.metered(Arc::clone(meter)))
        };
        Ok(Self {
            stream: Arc::new(stream),
            notifications: Arc::new(notifications),
            table: Arc::new(table),
            delivery: Arc::new(bucket(DELIVERY_BUCKET)?),
            history: Arc::new(bucket(HISTORY_BUCKET)?),
        })
    }
}

/// The six functions with their stores bound, each configured from the environment the template
/// gives it.
pub(super) struct Functions {
    pub(super) aggregator: Arc<Aggregator>,
    pub(super) writer: Arc<Writer>,
    pub(super) publisher: Arc<StandingsPublisher<MeteredPublisher<BrokerPublisher>>>,
    pub(super) transformer: Arc<Transformer>,
    pub(super) merger: Arc<Merger>,
    pub(super) api: Arc<LocalApi>,
}

impl Functions {
    pub(super) fn bind(
        config: &StackConfig,
        broker: &LocalBroker,
        websocket_url: &str,
        stores: &Stores,
        meter: &Arc<Meter>,
    ) -> Result<Self, LocalError> {
        let environment = environment(config, websocket_url);
        let lookup = |name: &str| environment.get(name).cloned();
        let invalid = |e: &dyn std::fmt::Display| LocalError::Config(e.to_string());
        let merger = history_merger::Config::from_lookup(lookup).map_err(|e| invalid(&e))?;
        Ok(Self {
            aggregator: Arc::new(RaceAggregator {
                store: Arc::clone(&stores.table),
                config: race_aggregator::Config::from_lookup(lookup).map_err(|e| invalid(&e))?,
            }),
            writer: Arc::new(LeaderboardWriter {
                finals: Arc::clone(&stores.table),
                config: leaderboard_writer::Config::from_lookup(lookup).map_err(|e| invalid(&e))?,
            }),
            publisher: Arc::new(StandingsPublisher::new(
                MeteredPublisher {
                    inner: broker.publisher()?,
                    meter: Arc::clone(meter),
                },
                publisher::Config::from_lookup(lookup).map_err(|e| invalid(&e))?,
            )),
            transformer: Arc::new(Transformer {
                config: transformer::Config::from_lookup(lookup).map_err(|e| invalid(&e))?,
            }),
            merger: Arc::new(HistoryMerger {
                delivery: Arc::clone(&stores.delivery),
                histories: merger.histories(Arc::clone(&stores.history)),
                table: Arc::clone(&stores.table),
                config: merger,
            }),
            api: Arc::new(Api {
                table: Arc::clone(&stores.table),
                history: Arc::clone(&stores.history),
                config: api::Config::from_lookup(lookup).map_err(|e| invalid(&e))?,
            }),
        })
    }
}

/// The stack's background tasks; the first one to fail reports why on `fatal`.
pub(super) struct Tasks {
    pub(super) handles: Vec<JoinHandle<()>>,
    pub(super) fatal: mpsc::UnboundedSender<LocalError>,
    pub(super) fatal_rx: mpsc::UnboundedReceiver<LocalError>,
    pub(super) shutdown: watch::Receiver<bool>,
    pub(super) invocations: Arc<Invocations>,
    pub(super) on_failure: Arc<OnFailure>,
}

impl Tasks {
    pub(super) fn new(parts: &Parts, shutdown: watch::Receiver<bool>) -> Self {
        let (fatal, fatal_rx) = mpsc::unbounded_channel();
        Self {
            handles: Vec::new(),
            fatal,
            fatal_rx,
            shutdown,
            invocations: Arc::clone(&parts.invocations),
            on_failure: Arc::clone(&parts.on_failure),
        }
    }

    pub(super) fn spawn(
        &mut self,
        name: String,
        task: impl Future<Output = Result<(), LocalError>> + Send + 'static,
    ) {
        let fatal = self.fatal.clone();
        self.handles.push(tokio::spawn(async move {
            if let Err(error) = task.await {
                tracing::error!(%error, "{name} stopped");
                let _ = fatal.send(error);
            }
        }));
    }

    fn context(&self) -> Context {
        Context {
            invocations: Arc::clone(&self.invocations),
            on_failure: Arc::clone(&self.on_failure),
            shutdown: self.shutdown.clone(),
        }
    }

    /// The event sources of the template: per shard, the race aggregator's and the leaderboard
    /// writer's mappings; the publisher's on the change stream; S3 notifications to the history
    /// merger; Firehose.
    pub(super) fn sources(
        &mut self,
        config: &StackConfig,
        stores: &Stores,
        functions: &Functions,
    ) -> Result<(), LocalError> {
        let finals = Pattern::parse(FINALS_FILTER).map_err(LocalError::Config)?;
        let standings = Pattern::parse(STANDINGS_FILTER).map_err(LocalError::Config)?;
        let stream = &stores.stream;
        for shard in 0..config.shards {
            let mapping = Mapping {
                config: config.aggregator,
                filters: Vec::new(),
                starting: Starting::TrimHorizon,
            };
            let source =
                StreamShard::new(Arc::clone(stream), shard, race_aggregator::FUNCTION_NAME);
            let task = poll(
                source,
                Arc::clone(&functions.aggregator),
                mapping,
                self.context(),
            );
            self.spawn(format!("race-aggregator on shard {shard}"), task);
            let mapping = Mapping {
                config: config.leaderboard,
                filters: vec![finals.clone()],
                starting: Starting::TrimHorizon,
            };
            let source =
                StreamShard::new(Arc::clone(stream), shard, leaderboard_writer::FUNCTION_NAME);
            let task = poll(
                source,
                Arc::clone(&functions.writer),
                mapping,
                self.context(),
            );
            self.spawn(format!("leaderboard-writer on shard {shard}"), task);
        }
        let mapping = Mapping {
            config: config.publisher,
            filters: vec![standings],
            starting: Starting::Latest,
        };
        let source = ChangeShard::new(Arc::clone(&stores.table), TABLE, publisher::FUNCTION_NAME);
        let task = poll(
            source,
            Arc::clone(&functions.publisher),
            mapping,
            self.context(),
        );
        self.spawn("publisher on the change stream".to_owned(), task);
        // S3 invokes asynchronously: one event per object, retried, then on-failure.
        let mapping = Mapping {
            config: MappingConfig {
                batch_size: 1,
                batching_window: Duration::ZERO,
                max_retry_attempts: config.merger_retry_attempts,
                bisect: false,
            },
            filters: Vec::new(),
            starting: Starting::TrimHorizon,
        };
        let source = NotificationShard::new(
            Arc::clone(&stores.notifications),
            history_merger::FUNCTION_NAME,
        );
        let task = poll(
            source,
            Arc::clone(&functions.merger),
            mapping,
            self.context(),
        );
        self.spawn("history-merger on bucket notifications".to_owned(), task);
        let firehose = Firehose {
            name: STREAM_NAME.to_owned(),
            stream: Arc::clone(stream),
            notifications: Arc::clone(&stores.notifications),
            delivery: Arc::clone(&stores.delivery),
            transformer: Arc::clone(&functions.transformer),
            config: config.firehose,
        };
        let task = firehose.run(self.context());
        self.spawn("firehose".to_owned(), task);
        Ok(())
    }
}

/// The functions' environment, as the template's `Environment.Variables` set it.
fn environment(config: &StackConfig, websocket_url: &str) -> HashMap<&'static str, String> {
    HashMap::from([
        (alleycat_lambda::env::TABLE_NAME, TABLE.to_owned()),
        ("DELIVERY_BUCKET", DELIVERY_BUCKET.to_owned()),
        ("HISTORY_BUCKET", HISTORY_BUCKET.to_owned()),
        ("RACE_SECONDS", config.clock.race_seconds.to_string()),
        ("WINDOW_SECONDS", config.clock.window_seconds.to_string()),
        ("HISTORY_TOP_K", config.top_k.to_string()),
        (
            "CLOCK_SKEW_SECONDS",
            config.trust.clock_skew_seconds.to_string(),
        ),
        (
            "MAX_RACERS_PER_RACE",
            config.trust.max_racers_per_race.to_string(),
        ),
        (
            "CLAIM_TTL_SECONDS",
            config.trust.claim_ttl_seconds.to_string(),
        ),
        ("IOT_ENDPOINT", websocket_url.to_owned()),
        (
            publisher::PUBLISH_INTERVAL_MS,
            config.publish_interval.as_millis().to_string(),
        ),
        ("PLATFORM", "local".to_owned()),
    ])
}

/// How long the table's change log keeps changes. DynamoDB Streams keep 24 hours, but every
/// standings change carries two full images (about 40 KB in a 1,000-racer race, several a
/// second), which would fill a laptop's disk; the publisher, the only consumer, reads them within
/// milliseconds.
pub const CHANGE_RETENTION: Duration = Duration::from_secs(600);

/// Trims the stream and the notifications to the retention period, and the change log to
/// [`CHANGE_RETENTION`], every minute.
pub(super) async fn retain(
    parts: Parts,
    retention: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), LocalError> {
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    loop {
        let now = crate::now_ms();
        parts.stream.trim(now.saturating_sub(millis(retention)))?;
        parts
            .notifications
            .trim(now.saturating_sub(millis(retention)))?;
        parts
            .table
            .trim_changes(now.saturating_sub(millis(CHANGE_RETENTION.min(retention))))?;
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_the_templates() {
        let template = include_str!("../../../../template.yaml");
        for filter in [FINALS_FILTER, STANDINGS_FILTER] {
            assert!(
                template.contains(&format!("Pattern: '{filter}'")),
                "template.yaml has no filter {filter}"
            );
        }
    }
}
