//! The stack: every part started under one data directory, wired as the SAM template wires the
//! AWS services, and stopped gracefully.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alleycat_cost::{Bill, PriceTable, UnknownRegion, Usage};
use alleycat_ports::HistoryObjects;
use api::Api;
use history_merger::HistoryMerger;
use leaderboard_writer::LeaderboardWriter;
use publisher::StandingsPublisher;
use race_aggregator::RaceAggregator;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use transformer::Transformer;

use crate::broker::{BrokerPublisher, LocalBroker};
use crate::config::{MappingConfig, StackConfig};
use crate::db::Db;
use crate::error::LocalError;
use crate::gate::{self, Gate};
use crate::http::{HttpState, serve};
use crate::identity::{Identities, OperatorSecret};
use crate::ingest::Ingest;
use crate::meter::{LiveTally, Meter, MeteredPublisher};
use crate::objects::LocalBucket;
use crate::sources::dynamodb::ChangeShard;
use crate::sources::filter::Pattern;
use crate::sources::firehose::Firehose;
use crate::sources::kinesis::StreamShard;
use crate::sources::on_failure::OnFailure;
use crate::sources::poller::{Context, Mapping, Starting, poll};
use crate::sources::s3::{NOTIFICATIONS, NotificationShard};
use crate::sources::{FunctionTotals, Invocations};
use crate::stream::{Appended, LocalStream, shard_id};
use crate::table::LocalTable;

/// The table's name (in ARNs and the functions' `TABLE_NAME`).
pub const TABLE: &str = "alleycat-races";
/// The stream's name (the Kinesis API accepts it, or its ARN).
pub const STREAM_NAME: &str = "alleycat";
/// The Firehose delivery bucket.
pub const DELIVERY_BUCKET: &str = "alleycat-delivery";
/// The history bucket.
pub const HISTORY_BUCKET: &str = "alleycat-history";
/// How long [`Stack::shutdown`] waits for the parts to stop.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The leaderboard writer's filter: only `final` events (as in `template.yaml`).
pub const FINALS_FILTER: &str = r#"{"data": {"event": ["final"]}}"#;
/// The publisher's filter: only inserted or modified standings (as in `template.yaml`).
pub const STANDINGS_FILTER: &str =
    r#"{"eventName": ["INSERT", "MODIFY"], "dynamodb": {"Keys": {"sk": {"S": ["standings"]}}}}"#;

type Aggregator = RaceAggregator<Arc<LocalTable>>;
type Writer = LeaderboardWriter<Arc<LocalTable>>;
type Merger = HistoryMerger<Arc<LocalBucket>, HistoryObjects<Arc<LocalBucket>>, Arc<LocalTable>>;
type LocalApi = Api<Arc<LocalTable>, Arc<LocalBucket>>;

/// One consumer's progress on one source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lag {
    /// Function (or Firehose) and shard.
    pub consumer: String,
    /// The source's newest sequence number.
    pub latest: u64,
    /// Where the consumer's checkpoint is.
    pub checkpoint: u64,
}

impl Lag {
    /// Whether the consumer has processed everything.
    pub fn caught_up(&self) -> bool {
        self.checkpoint >= self.latest
    }
}

/// What the stack is doing: `GET /_local/status`, the simulator's summary, tests.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Records in the stream.
    pub stream_records: u64,
    /// Every consumer's progress.
    pub consumers: Vec<Lag>,
    /// Every function's (and service's) totals.
    pub functions: BTreeMap<&'static str, FunctionTotals>,
    /// On-failure records written, by function.
    pub on_failure: BTreeMap<&'static str, usize>,
    /// What the run has used, in AWS's billing units.
    pub usage: Usage,
}

impl Status {
    /// Whether every consumer has processed everything there is.
    pub fn idle(&self) -> bool {
        self.consumers.iter().all(Lag::caught_up)
    }
}

/// The parts the status is read from.
#[derive(Clone)]
struct Parts {
    meter: Arc<Meter>,
    buckets: Vec<Arc<LocalBucket>>,
    stream: Arc<LocalStream>,
    notifications: Arc<LocalStream>,
    table: Arc<LocalTable>,
    invocations: Arc<Invocations>,
    on_failure: Arc<OnFailure>,
}

const FUNCTIONS: [&str; 6] = [
    race_aggregator::FUNCTION_NAME,
    leaderboard_writer::FUNCTION_NAME,
    publisher::FUNCTION_NAME,
    transformer::FUNCTION_NAME,
    history_merger::FUNCTION_NAME,
    <LocalApi as alleycat_lambda::Function>::NAME,
];

impl Parts {
    fn lag(db: &Db, consumer: String, latest: Option<u64>) -> Lag {
        let checkpoint = db
            .checkpoint(&consumer)
            .ok()
            .flatten()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        Lag {
            consumer,
            latest: latest.unwrap_or(0),
            checkpoint,
        }
    }

    fn usage(&self) -> Usage {
        let stored = self.buckets.iter().map(|b| b.stored_bytes()).sum();
        self.meter.usage(self.stream.shards(), stored)
    }

    fn status(&self) -> Status {
        let mut consumers = Vec::new();
        for shard in 0..self.stream.shards() {
            let latest = self.stream.last_sequence(shard);
            for consumer in [
                race_aggregator::FUNCTION_NAME,
                leaderboard_writer::FUNCTION_NAME,
                "firehose",
            ] {
                consumers.push(Self::lag(
                    self.stream.db(),
                    format!("{consumer}/{}", shard_id(shard)),
                    latest,
                ));
            }
        }
        consumers.push(Self::lag(
            self.table.db(),
            ChangeShard::consumer_name(publisher::FUNCTION_NAME),
            self.table.last_change(),
        ));
        consumers.push(Self::lag(
            self.notifications.db(),
            format!("{}/{NOTIFICATIONS}", history_merger::FUNCTION_NAME),
            self.notifications.last_sequence(0),
        ));
        Status {
            usage: self.usage(),
            stream_records: self.stream.count().unwrap_or_default(),
            consumers,
            functions: self.invocations.snapshot(),
            on_failure: FUNCTIONS
                .into_iter()
                .map(|f| (f, self.on_failure.records(f).len()))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

/// The running stack.
pub struct Stack {
    url: String,
    /// The gate's public MQTT address.
    mqtt_addr: SocketAddr,
    /// The gate's public WebSocket URL.
    websocket_url: String,
    /// Kept for what it is: the broker runs until the process ends either way.
    _broker: LocalBroker,
    identities: Identities,
    operator: OperatorSecret,
    parts: Parts,
    history: Arc<LocalBucket>,
    delivery: Arc<LocalBucket>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    fatal: mpsc::UnboundedReceiver<LocalError>,
    _lock: File,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LocalError + '_ {
    move |source| LocalError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Deletes a data directory for `--reset`: only one that holds a stack's state (or nothing), so
/// a mistyped `--data-dir` never deletes someone's files.
fn reset(dir: &Path) -> Result<(), LocalError> {
    let ours = ["LOCK", "stream.db", "table.db"]
        .iter()
        .any(|name| dir.join(name).exists());
    let empty = std::fs::read_dir(dir).map_err(io(dir))?.next().is_none();
    if !ours && !empty {
        return Err(LocalError::Config(format!(
            "--reset: {} does not look like an alleycat-local data directory (no LOCK, \
             stream.db or table.db); not deleting it",
            dir.display()
        )));
    }
    lock(dir)?;
    std::fs::remove_dir_all(dir).map_err(io(dir))
}

/// Takes the data directory for this process: two stacks on one directory would corrupt each
/// other's checkpoints. The lock goes with the process, however it ends.
pub(crate) fn lock(data_dir: &Path) -> Result<File, LocalError> {
    let path = data_dir.join("LOCK");
    let file = File::create(&path).map_err(io(&path))?;
    file.try_lock().map_err(|_| {
        LocalError::Config(format!(
            "{} is in use by another alleycat-local (or simulator): stop it, or pass another \
             --data-dir",
            data_dir.display()
        ))
    })?;
    Ok(file)
}

impl Stack {
    /// Starts every part; returns once all listen. Errors say what to fix (a port in use, a
    /// data directory of another shard count, one in use).
    pub async fn start(config: StackConfig) -> Result<Self, LocalError> {
        let dir = &config.data_dir;
        if config.reset && dir.exists() {
            reset(dir)?;
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let lock = lock(dir)?;
        let listener = tokio::net::TcpListener::bind(config.http)
            .await
            .map_err(|source| LocalError::Bind {
                addr: config.http,
                what: "HTTP",
                source,
            })?;
        let http_addr = listener.local_addr().map_err(io(dir))?;
        let url = format!("http://{http_addr}");

        let meter = Arc::new(Meter::default());
        let stores = Stores::open(&config, &url, &meter)?;
        let parts = Parts {
            meter: Arc::clone(&meter),
            buckets: vec![Arc::clone(&stores.delivery), Arc::clone(&stores.history)],
            stream: Arc::clone(&stores.stream),
            notifications: Arc::clone(&stores.notifications),
            table: Arc::clone(&stores.table),
            invocations: Arc::new(Invocations::metered(Arc::clone(&meter))),
            on_failure: Arc::new(OnFailure::open(dir.join("on-failure"))?),
        };
        let identities = Identities::open(dir)?;
        let operator = OperatorSecret::open(dir)?;
        // The public ports first: the broker cannot be stopped once started.
        let gate = Gate::bind(&config.broker).await?;
        let mqtt_addr = gate.mqtt_addr();
        let websocket_url = crate::broker::websocket_url(gate.websocket_addr());
        let broker = LocalBroker::start(&config.broker)?;
        let ingest = Ingest::start(Arc::clone(&stores.stream), Arc::clone(&parts.invocations))?;
        let functions = Functions::bind(&config, &broker, &websocket_url, &stores, &meter)?;

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Tasks::new(&parts, shutdown_rx);
        tasks.sources(&config, &stores, &functions)?;
        let shared = gate::Shared {
            identities: identities.clone(),
            operator: operator.clone(),
            upstream: broker.internal_addr(),
            origins: gate::websocket::own_origins(http_addr),
            ingest,
        };
        tasks.spawn(
            "MQTT gate".to_owned(),
            gate.run(shared, tasks.shutdown.clone()),
        );
        tasks.spawn(
            "retention".to_owned(),
            retain(parts.clone(), config.retention, tasks.shutdown.clone()),
        );
        let status_parts = parts.clone();
        let state = HttpState {
            api: Arc::clone(&functions.api),
            buckets: vec![Arc::clone(&stores.history), Arc::clone(&stores.delivery)],
            stream: Arc::clone(&stores.stream),
            invocations: Arc::clone(&parts.invocations),
            frontend: config.frontend.clone(),
            identities: identities.clone(),
            status: Arc::new(move || {
                serde_json::to_value(status_parts.status()).unwrap_or_default()
            }),
        };
        let mut http_shutdown = tasks.shutdown.clone();
        tasks.spawn("HTTP server".to_owned(), async move {
            serve(listener, state, async move {
                let _ = http_shutdown.wait_for(|stop| *stop).await;
            })
            .await
            .map_err(|source| LocalError::Bind {
                addr: http_addr,
                what: "HTTP",
                source,
            })
        });
        Ok(Self {
            url,
            mqtt_addr,
            websocket_url,
            _broker: broker,
            identities,
            operator,
            parts,
            history: stores.history,
            delivery: stores.delivery,
            shutdown,
            tasks: tasks.handles,
            fatal: tasks.fatal_rx,
            _lock: lock,
        })
    }

    /// The HTTP server's URL (the frontend; the API is under `/api`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The API's base URL, as the frontend is configured with.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.url)
    }

    /// The broker's public MQTT (TCP) address (the gate's).
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt_addr
    }

    /// The broker's public WebSocket URL, for browsers (the gate's).
    pub fn websocket_url(&self) -> String {
        self.websocket_url.clone()
    }

    /// The operator's MQTT password (user name [`crate::identity::OPERATOR_USERNAME`]): the
    /// trusted producer's, whose messages carry no `identityId`. Also in
    /// `<data-dir>/operator-secret`.
    pub fn operator_secret(&self) -> &str {
        self.operator.expose()
    }

    /// The stack's identities (what `POST /_local/identity` mints from).
    pub fn identities(&self) -> &Identities {
        &self.identities
    }

    /// Puts records (partition key, data) into the stream, as Kinesis `PutRecords` does: on `Ok`
    /// they are durable. The simulator's in-process target.
    pub fn put_records<K: AsRef<str>, D: AsRef<[u8]>>(
        &self,
        records: &[(K, D)],
    ) -> Result<Vec<Appended>, LocalError> {
        self.parts.stream.append(records, crate::now_ms())
    }

    /// The stream (what the ingest rule and `put_records` append to).
    pub fn stream(&self) -> &Arc<LocalStream> {
        &self.parts.stream
    }

    /// The table.
    pub fn table(&self) -> &Arc<LocalTable> {
        &self.parts.table
    }

    /// The history bucket.
    pub fn history(&self) -> &Arc<LocalBucket> {
        &self.history
    }

    /// The Firehose delivery bucket.
    pub fn delivery(&self) -> &Arc<LocalBucket> {
        &self.delivery
    }

    /// Every invocation's totals.
    pub fn invocations(&self) -> &Arc<Invocations> {
        &self.parts.invocations
    }

    /// The on-failure records.
    pub fn on_failure(&self) -> &Arc<OnFailure> {
        &self.parts.on_failure
    }

    /// What the stack has used since it started, in AWS's billing units.
    pub fn usage(&self) -> Usage {
        self.parts.usage()
    }

    /// The live messages published about each race, by `(classId, raceId)`.
    pub fn live(&self) -> BTreeMap<(u8, u64), LiveTally> {
        self.parts.meter.live()
    }

    /// What the same work would cost on AWS in `region`, at the checked-in list prices.
    pub fn bill(&self, region: &str) -> Result<Bill, UnknownRegion> {
        Bill::new(&self.usage(), PriceTable::builtin(), region)
    }

    /// What the stack is doing.
    pub fn status(&self) -> Status {
        self.parts.status()
    }

    /// Waits until every consumer has processed everything (Firehose included, so up to its
    /// buffer interval), or `timeout`; `false` on timeout.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.status().idle() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resolves with the first error that stopped a part of the stack (the stack is then
    /// broken: shut it down and report).
    pub async fn failed(&mut self) -> LocalError {
        match self.fatal.recv().await {
            Some(error) => error,
            None => std::future::pending().await,
        }
    }

    /// Stops gracefully: every poller finishes its invocation in flight and checkpoints,
    /// Firehose delivers its buffer, the HTTP server finishes its requests. Gives up waiting
    /// after [`SHUTDOWN_GRACE`] (a browser holding a connection open, say): everything durable
    /// is already committed, so what is cut short is only redone at the next start.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let tasks = futures::future::join_all(self.tasks);
        if tokio::time::timeout(SHUTDOWN_GRACE, tasks).await.is_err() {
            tracing::warn!(
                "parts of the stack did not stop within {} s; leaving them",
                SHUTDOWN_GRACE.as_secs()
            );
        }
    }
}

/// The stack's durable stores under the data directory.
struct Stores {
    stream: Arc<LocalStream>,
    notifications: Arc<LocalStream>,
    table: Arc<LocalTable>,
    delivery: Arc<LocalBucket>,
    history: Arc<LocalBucket>,
}

impl Stores {
    /// Opens (creating) every store; presigned URLs point at `url`; `meter` counts what the
    /// stream, the table and the buckets do.
    fn open(config: &StackConfig, url: &str, meter: &Arc<Meter>) -> Result<Self, LocalError> {
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
struct Functions {
    aggregator: Arc<Aggregator>,
    writer: Arc<Writer>,
    publisher: Arc<StandingsPublisher<MeteredPublisher<BrokerPublisher>>>,
    transformer: Arc<Transformer>,
    merger: Arc<Merger>,
    api: Arc<LocalApi>,
}

impl Functions {
    fn bind(
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
struct Tasks {
    handles: Vec<JoinHandle<()>>,
    fatal: mpsc::UnboundedSender<LocalError>,
    fatal_rx: mpsc::UnboundedReceiver<LocalError>,
    shutdown: watch::Receiver<bool>,
    invocations: Arc<Invocations>,
    on_failure: Arc<OnFailure>,
}

impl Tasks {
    fn new(parts: &Parts, shutdown: watch::Receiver<bool>) -> Self {
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

    fn spawn(
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
    fn sources(
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
async fn retain(
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
        let template = include_str!("../../../template.yaml");
        for filter in [FINALS_FILTER, STANDINGS_FILTER] {
            assert!(
                template.contains(&format!("Pattern: '{filter}'")),
                "template.yaml has no filter {filter}"
            );
        }
    }
}
