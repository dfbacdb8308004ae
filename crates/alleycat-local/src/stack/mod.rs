//! The stack: every part started under one data directory, wired as the SAM template wires the
//! AWS services, and stopped gracefully.
//!
//! [`Stack::start`] opens the stores and binds the ports; `wiring` binds the functions to the
//! stores and starts the event sources as the template maps them; `status` is what the stack
//! reports of itself.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alleycat_cost::{Bill, PriceTable, UnknownRegion, Usage};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::broker::LocalBroker;
use crate::config::StackConfig;
use crate::error::LocalError;
use crate::gate::{self, Gate};
use crate::http::{HttpState, serve};
use crate::identity::{Identities, OperatorSecret};
use crate::ingest::Ingest;
use crate::meter::{LiveTally, Meter};
use crate::objects::LocalBucket;
use crate::sources::Invocations;
use crate::sources::on_failure::OnFailure;
use crate::stream::{Appended, LocalStream};
use crate::table::LocalTable;

mod status;
mod wiring;

pub use status::{Lag, Status};
pub use wiring::{CHANGE_RETENTION, FINALS_FILTER, STANDINGS_FILTER};

use status::Parts;
use wiring::{Functions, Stores, Tasks, retain};

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
