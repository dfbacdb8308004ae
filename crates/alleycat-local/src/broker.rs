//! The embedded MQTT broker: IoT Core's stand-in, and the IoT rule's subscription.
//!
//! [`LocalBroker`] runs rumqttd in-process with two listeners speaking MQTT 3.1.1: plain TCP for
//! bikes and the simulator, WebSocket (`ws://host:port/mqtt`) for MQTT.js in browsers. The rest of
//! the stack talks to it through in-process links, with no socket in between:
//!
//! - [`LocalBroker::subscribe_batches`] is the ingest rule: it hands every message published to
//!   `alleycat-publish` to a handler, in batches, in arrival order;
//! - [`LocalBroker::publisher`] is the [`Publisher`] port the `publisher` function pushes live
//!   standings through (`alleycat-subscribe/class-<c>`, QoS 0);
//! - [`enrich`] is the rule's `SELECT *, clientid() AS clientId, timestamp() AS ingestTimestamp`.
//!
//! rumqttd facts this module is built around (all verified against rumqttd 0.20):
//!
//! - A broker cannot be stopped: its threads live as long as the process.
//! - A publisher's PUBACK is sent when the message is appended to the router's in-memory commit
//!   log, not when the ingest rule has taken it. The log of each subscription filter holds up to
//!   [`LOG_SEGMENT_COUNT`] segments of [`LOG_SEGMENT_BYTES`]; a rule that falls further behind
//!   loses the oldest messages (logged as a warning with the count), and a crash loses what the
//!   rule has not yet taken. Messages published before [`LocalBroker::subscribe_batches`]
//!   subscribes are acknowledged and dropped, as on any MQTT broker with no subscriber.
//! - rumqttd logs ordinary disconnections at `error` level (target `rumqttd`); the stack's log
//!   filter should quieten that target.
//! - Clients must use a non-zero keep-alive: rumqttd refuses keep-alive 0.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use alleycat_ports::{PortError, Publisher};
use futures::FutureExt;
use rumqttd::local::{LinkBuilder, LinkError, LinkRx, LinkTx};
use rumqttd::protocol::v4::V4;
use rumqttd::protocol::{Disconnect, DisconnectReasonCode, Packet};
use rumqttd::{
    ConnectionSettings, Forward, LinkType, Notification, Router, RouterConfig, Server,
    ServerSettings,
};
use tracing::{error, info, warn};

use crate::error::LocalError;

/// Size of one segment of a subscription filter's in-memory commit log, in bytes (topic plus
/// payload of every message).
pub const LOG_SEGMENT_BYTES: usize = 4 << 20;

/// Segments kept per subscription filter besides the one being written: with
/// [`LOG_SEGMENT_BYTES`], a filter holds up to 36 MiB, about 130,000 device messages of the
/// ingest rule's backlog, before the oldest are dropped.
pub const LOG_SEGMENT_COUNT: usize = 8;

/// In-process links (the ingest rule, publishers) the router admits on top of
/// [`BrokerConfig::max_connections`].
const IN_PROCESS_LINKS: usize = 16;

/// How long [`LocalBroker::start`] waits for both listeners to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`LocalBroker::subscribe_batches`] waits for the router to acknowledge the
/// subscription.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take between opening a connection and sending CONNECT (rumqttd takes
/// a `u16` of milliseconds).
const CONNECT_TIMEOUT_MS: u16 = 10_000;

/// Packets rumqttd reads from one connection in one go.
const READ_BATCH: usize = 500;

/// Messages the router moves to a QoS 0 subscriber in one sweep.
const FORWARD_BATCH: u64 = 200;

/// Where the broker listens and how much it admits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfig {
    /// The MQTT-over-TCP listener (bikes, the simulator).
    pub mqtt: SocketAddr,
    /// The MQTT-over-WebSocket listener (browsers, path `/mqtt`).
    pub websocket: SocketAddr,
    /// Client connections admitted at once, both listeners together.
    pub max_connections: usize,
    /// The largest MQTT packet accepted, in bytes (a whole packet, not only its payload). Keep
    /// it well above the device message limit so an oversized message reaches the rule and is
    /// counted as rejected instead of closing the device's connection.
    pub max_packet_size: usize,
}

impl Default for BrokerConfig {
    /// Loopback only: `127.0.0.1:1883` (MQTT), `127.0.0.1:9001` (WebSocket), 10,000
    /// connections, packets up to 1 MiB.
    fn default() -> Self {
        Self {
            mqtt: SocketAddr::from((Ipv4Addr::LOCALHOST, 1883)),
            websocket: SocketAddr::from((Ipv4Addr::LOCALHOST, 9001)),
            max_connections: 10_000,
            max_packet_size: 1 << 20,
        }
    }
}

/// Opens an in-process link to the router: the one thing [`LocalBroker`] keeps of it.
type Connect = dyn Fn(&str) -> Result<(LinkTx, LinkRx), String> + Send + Sync;

/// A running rumqttd broker with its TCP and WebSocket listeners.
///
/// It is put together from rumqttd's parts (the router, one `Server` per listener on its own
/// thread) rather than with `rumqttd::Broker`, whose `start` blocks for good while holding the
/// `Broker` that in-process links are opened through: this keeps the router's handle, so links
/// can be opened whenever the stack needs one.
///
/// Dropping it does not stop the broker (rumqttd cannot be stopped): the router and listener
/// threads run until the process ends.
pub struct LocalBroker {
    config: BrokerConfig,
    connect: Box<Connect>,
}

impl std::fmt::Debug for LocalBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBroker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl LocalBroker {
    /// Checks that both ports are free, starts the router and both listeners in their own
    /// threads, and returns once both ports accept connections.
    ///
    /// Fails with [`LocalError::Bind`] naming the address when a port is taken (rumqttd itself
    /// would only log it), [`LocalError::Config`] for settings that cannot work (port 0, both
    /// listeners on one address, no connections admitted), and [`LocalError::Broker`] when a
    /// listener does not come up within 10 seconds.
    pub fn start(config: &BrokerConfig) -> Result<Self, LocalError> {
        validate(config)?;
        ensure_free(config.mqtt, "MQTT")?;
        ensure_free(config.websocket, "MQTT over WebSocket")?;

        let router = Router::new(0, router_config(config));
        let router_tx = router.spawn();
        let (failed_tx, failed) = mpsc::channel();
        for (addr, what, link_type) in [
            (config.mqtt, "MQTT", LinkType::Remote),
            (config.websocket, "MQTT over WebSocket", LinkType::Websocket),
        ] {
            let server = Server::new(server_settings(config, addr, what), router_tx.clone(), V4);
            spawn_listener(server, link_type, addr, what, failed_tx.clone())?;
        }
        drop(failed_tx);

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        wait_until_listening(config.mqtt, "MQTT", deadline, &failed)?;
        wait_until_listening(config.websocket, "MQTT over WebSocket", deadline, &failed)?;
        info!(
            mqtt = %config.mqtt,
            websocket = %websocket_url(config.websocket),
            "MQTT broker listening"
        );

        let connect = move |client_id: &str| {
            LinkBuilder::new(client_id, router_tx.clone())
                .build()
                .map(|(tx, rx, _connack)| (tx, rx))
                .map_err(|e| e.to_string())
        };
        Ok(Self {
            config: config.clone(),
            connect: Box::new(connect),
        })
    }

    /// The MQTT-over-TCP address, as configured.
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.config.mqtt
    }

    /// The URL MQTT.js connects to, e.g. `ws://127.0.0.1:9001/mqtt` (a listener on all
    /// interfaces is given as loopback).
    pub fn websocket_url(&self) -> String {
        websocket_url(self.config.websocket)
    }

    /// The ingest rule's subscription: a dedicated thread subscribes to `topic` through an
    /// in-process link and hands `handler` every batch of messages it has received: everything
    /// available without waiting, at most `max_batch` (at least 1), in arrival order. Returns once
    /// the router has acknowledged the subscription, so every message published from then on is
    /// delivered.
    ///
    /// The router reads the filter's commit log at its own pace (the in-process link is a QoS 0
    /// subscriber: acknowledging the router would buy nothing, since devices are acknowledged on
    /// append to that log). A handler slower than the publishers lets the log absorb the backlog;
    /// beyond [`LOG_SEGMENT_COUNT`] × [`LOG_SEGMENT_BYTES`], the oldest messages are lost and the
    /// loss is logged with its count.
    pub fn subscribe_batches(
        &self,
        topic: &str,
        max_batch: usize,
        handler: impl FnMut(Vec<Ingested>) + Send + 'static,
    ) -> Result<(), LocalError> {
        let (mut tx, rx) = self.link("ingest")?;
        tx.subscribe(topic)
            .map_err(|e| LocalError::Broker(format!("subscribing to {topic}: {e}")))?;
        let (subscribed_tx, subscribed) = mpsc::sync_channel(1);
        let rule = IngestRule {
            rx,
            topic: topic.to_owned(),
            max_batch: max_batch.max(1),
            subscribed: Some(subscribed_tx),
            last_offset: None,
        };
        thread::Builder::new()
            .name("alleycat-ingest".to_owned())
            .spawn(move || {
                // The thread owns the whole link, though its sending half has nothing more to send.
                let _tx = tx;
                rule.run(handler);
            })
            .map_err(|e| LocalError::Broker(format!("starting the ingest thread: {e}")))?;
        subscribed.recv_timeout(SUBSCRIBE_TIMEOUT).map_err(|_| {
            LocalError::Broker(format!(
                "the subscription to {topic} was not acknowledged (is it a valid topic filter?)"
            ))
        })
    }

    /// A [`Publisher`] publishing QoS 0 through its own in-process link. The link closes when
    /// the publisher is dropped.
    pub fn publisher(&self) -> Result<BrokerPublisher, LocalError> {
        let (tx, mut rx) = self.link("publisher")?;
        let open = Arc::new(AtomicBool::new(true));
        let drain_open = Arc::clone(&open);
        // The link subscribes to nothing, so the router only ever sends it acks; read them all
        // the same, answering `Unschedule` with `ready`, so the link can never stall.
        thread::Builder::new()
            .name("alleycat-publisher-link".to_owned())
            .spawn(move || {
                loop {
                    match rx.recv() {
                        Ok(Some(Notification::Unschedule)) => {
                            if rx.ready().is_err() {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                if drain_open.swap(false, Ordering::AcqRel) {
                    warn!("the broker closed the publisher's link");
                }
            })
            .map_err(|e| LocalError::Broker(format!("starting the publisher link thread: {e}")))?;
        Ok(BrokerPublisher {
            tx: Mutex::new(tx),
            open,
        })
    }

    /// Opens an in-process link under a client id no device can take by accident (a device
    /// connecting with the same id would disconnect the link).
    fn link(&self, role: &str) -> Result<(LinkTx, LinkRx), LocalError> {
        let client_id = format!("alleycat-local-{role}-{:016x}", fastrand::u64(..));
        (self.connect)(&client_id).map_err(|e| {
            LocalError::Broker(format!(
                "opening the {role} link: {e} (is the broker at its connection limit?)"
            ))
        })
    }
}

/// One message the ingest rule received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ingested {
    /// The topic it was published to.
    pub topic: String,
    /// Its payload, as published.
    pub payload: Vec<u8>,
    /// The publishing client's id. Always `None` here: rumqttd's commit log keeps only the
    /// packet, so no subscriber, in-process or not, can learn who published it. IoT Core knows
    /// it; on the embedded stack [`enrich`] then leaves `clientId` out, as the IoT rule does
    /// when the id is unknown.
    pub client_id: Option<String>,
    /// When the rule received it, in milliseconds since the epoch (the rule's `timestamp()`).
    pub received_ms: u64,
}

/// The ingest rule's thread: reads the link, hands batches to the handler.
struct IngestRule {
    rx: LinkRx,
    topic: String,
    max_batch: usize,
    /// Told once the router acknowledged the subscription.
    subscribed: Option<mpsc::SyncSender<()>>,
    /// The commit log offset of the last message received, to detect messages the log dropped.
    last_offset: Option<u64>,
}

impl IngestRule {
    /// Runs until the link closes, which only happens if the router drops it.
    fn run(mut self, mut handler: impl FnMut(Vec<Ingested>)) {
        let mut batch = Vec::with_capacity(self.max_batch);
        loop {
            // Wait for the first notification, then take whatever else is there already.
            let mut next = match self.rx.recv() {
                Ok(notification) => notification,
                Err(e) => return self.closed(&e.to_string()),
            };
            while let Some(notification) = next {
                if let Err(e) = self.take(notification, &mut batch) {
                    return self.closed(&e.to_string());
                }
                if batch.len() >= self.max_batch {
                    break;
                }
                next = self.rx.recv_deadline(Instant::now()).unwrap_or(None);
            }
            if !batch.is_empty() {
                handler(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(self.max_batch),
                ));
            }
        }
    }

    /// Adds a forwarded message to `batch`; answers the router's other notifications.
    fn take(
        &mut self,
        notification: Notification,
        batch: &mut Vec<Ingested>,
    ) -> Result<(), Box<LinkError>> {
        match notification {
            Notification::Forward(forward) => batch.push(self.ingested(forward)),
            // The router paused this link because its buffer is full: it resumes on `ready`.
            Notification::Unschedule => self.rx.ready().map_err(Box::new)?,
            // The only ack this link gets is the SUBACK.
            Notification::DeviceAck(_) => {
                if let Some(subscribed) = self.subscribed.take() {
                    subscribed.send(()).ok();
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn ingested(&mut self, forward: Forward) -> Ingested {
        // The offsets of one filter's log are consecutive: a gap is messages the log dropped
        // before this link read them. (Retained messages come without an offset.)
        if let Some((_, offset)) = forward.cursor {
            if let Some(last) = self.last_offset
                && offset > last + 1
            {
                warn!(
                    topic = %self.topic,
                    lost = offset - last - 1,
                    "the ingest rule fell behind: the broker dropped messages it had acknowledged"
                );
            }
            self.last_offset = Some(offset);
        }
        let publish = forward.publish;
        Ingested {
            topic: String::from_utf8_lossy(&publish.topic).into_owned(),
            payload: publish.payload.to_vec(),
            client_id: None,
            received_ms: crate::now_ms(),
        }
    }

    fn closed(&self, reason: &str) {
        error!(topic = %self.topic, reason, "the ingest rule's link closed: ingestion stopped");
    }
}

/// The [`Publisher`] port on the embedded broker: QoS 0, through an in-process link.
pub struct BrokerPublisher {
    /// Publishing needs `&mut LinkTx`.
    tx: Mutex<LinkTx>,
    /// Cleared when the link closes.
    open: Arc<AtomicBool>,
}

impl std::fmt::Debug for BrokerPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerPublisher")
            .field("open", &self.open.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

impl BrokerPublisher {
    /// Publishes at once (the router's queue has room for 1,000 events: this never waits for
    /// long).
    fn publish_now(&self, topic: &str, payload: Vec<u8>) -> Result<(), PortError> {
        if !self.open.load(Ordering::Acquire) {
            return Err(PortError::Permanent(
                "the broker closed the publisher's link".to_owned(),
            ));
        }
        let mut tx = self
            .tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tx.publish(topic.to_owned(), payload)
            .map(drop)
            .map_err(|e| PortError::Permanent(format!("publishing to {topic}: {e}")))
    }
}

impl Publisher for BrokerPublisher {
    async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), PortError> {
        self.publish_now(topic, payload)
    }
}

impl Drop for BrokerPublisher {
    /// Closes the link, which frees its connection slot and ends its thread.
    fn drop(&mut self) {
        if !self.open.swap(false, Ordering::AcqRel) {
            return;
        }
        let tx = self
            .tx
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let disconnect = Disconnect {
            reason_code: DisconnectReasonCode::NormalDisconnection,
        };
        // `send` is async in name only: it completes on its first poll.
        tx.send(Packet::Disconnect(disconnect, None)).now_or_never();
    }
}

/// The IoT rule's `SELECT *, clientid() AS clientId, timestamp() AS ingestTimestamp`: adds
/// `clientId` (when known) and `ingestTimestamp` to a JSON object payload, keeping every other
/// field as it is. Any other payload (not JSON, or JSON but not an object) comes back unchanged,
/// for the stream's consumers to reject and count.
///
/// The fields are written in before the closing `}`, leaving the rest of the bytes untouched;
/// only a payload that already has one of the two fields is re-serialized, so the rule's values
/// replace the device's as `SELECT` does.
pub fn enrich(payload: &[u8], client_id: Option<&str>, ingest_ms: u64) -> Vec<u8> {
    let is_object = payload
        .iter()
        .find(|b| !is_json_whitespace(**b))
        .is_some_and(|b| *b == b'{');
    if !is_object || serde_json::from_slice::<serde::de::IgnoredAny>(payload).is_err() {
        return payload.to_vec();
    }
    if contains(payload, br#""clientId""#) || contains(payload, br#""ingestTimestamp""#) {
        return reserialized(payload, client_id, ingest_ms);
    }

    // A valid object: its last non-whitespace byte is its closing brace.
    let close = payload
        .iter()
        .rposition(|b| *b == b'}')
        .unwrap_or(payload.len());
    let empty = payload[..close]
        .iter()
        .rfind(|b| !is_json_whitespace(**b))
        .is_some_and(|b| *b == b'{');
    let mut out = Vec::with_capacity(payload.len() + 80);
    out.extend_from_slice(&payload[..close]);
    if !empty {
        out.push(b',');
    }
    if let Some(id) = client_id {
        out.extend_from_slice(br#""clientId":"#);
        serde_json::to_writer(&mut out, id).expect("a string serializes into a Vec");
        out.push(b',');
    }
    out.extend_from_slice(br#""ingestTimestamp":"#);
    out.extend_from_slice(ingest_ms.to_string().as_bytes());
    out.extend_from_slice(&payload[close..]);
    out
}

/// [`enrich`] for a payload that already has `clientId` or `ingestTimestamp`: the rule's values
/// replace them.
fn reserialized(payload: &[u8], client_id: Option<&str>, ingest_ms: u64) -> Vec<u8> {
    let Ok(mut object) =
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(payload)
    else {
        return payload.to_vec();
    };
    if let Some(id) = client_id {
        object.insert("clientId".to_owned(), id.into());
    }
    object.insert("ingestTimestamp".to_owned(), ingest_ms.into());
    serde_json::to_vec(&object).unwrap_or_else(|_| payload.to_vec())
}

fn is_json_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn validate(config: &BrokerConfig) -> Result<(), LocalError> {
    if config.mqtt.port() == 0 || config.websocket.port() == 0 {
        return Err(LocalError::Config(
            "the MQTT and WebSocket ports must be given (0 is not a port clients can find)"
                .to_owned(),
        ));
    }
    if config.mqtt == config.websocket {
        return Err(LocalError::Config(format!(
            "the MQTT and WebSocket listeners cannot share {}",
            config.mqtt
        )));
    }
    if config.max_connections == 0 {
        return Err(LocalError::Config(
            "the broker's connection limit must be at least 1".to_owned(),
        ));
    }
    if config.max_packet_size == 0 {
        return Err(LocalError::Config(
            "the broker's packet size limit must be at least 1 byte".to_owned(),
        ));
    }
    Ok(())
}

/// Fails with a clear error if `addr` cannot be listened on: rumqttd would only log it.
fn ensure_free(addr: SocketAddr, what: &'static str) -> Result<(), LocalError> {
    TcpListener::bind(addr)
        .map(drop)
        .map_err(|source| LocalError::Bind { addr, what, source })
}

fn router_config(config: &BrokerConfig) -> RouterConfig {
    RouterConfig {
        // The default, 0, admits nobody; in-process links count too.
        max_connections: config.max_connections + IN_PROCESS_LINKS,
        max_outgoing_packet_count: FORWARD_BATCH,
        max_segment_size: LOG_SEGMENT_BYTES,
        max_segment_count: LOG_SEGMENT_COUNT,
        ..RouterConfig::default()
    }
}

fn server_settings(config: &BrokerConfig, listen: SocketAddr, name: &str) -> ServerSettings {
    ServerSettings {
        name: name.to_owned(),
        listen,
        tls: None,
        next_connection_delay_ms: 0,
        connections: ConnectionSettings {
            connection_timeout_ms: CONNECT_TIMEOUT_MS,
            // rumqttd names it a payload size but applies it to whole packets.
            max_payload_size: config.max_packet_size,
            max_inflight_count: READ_BATCH,
            auth: None,
            external_auth: None,
            dynamic_filters: false,
        },
    }
}

/// Runs one rumqttd listener on its own thread and single-threaded runtime, as `Broker::start`
/// does; reports on `failed` if it stops (it only does on error).
fn spawn_listener(
    mut server: Server<V4>,
    link_type: LinkType,
    addr: SocketAddr,
    what: &'static str,
    failed: mpsc::Sender<String>,
) -> Result<(), LocalError> {
    let thread_name = match link_type {
        LinkType::Remote => "alleycat-mqtt",
        LinkType::Websocket => "alleycat-mqtt-ws",
    };
    thread::Builder::new()
        .name(thread_name.to_owned())
        .spawn(move || {
            let outcome = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|runtime| {
                    runtime
                        .block_on(server.start(link_type))
                        .map_err(|e| e.to_string())
                });
            let reason = outcome.err().unwrap_or_else(|| "stopped".to_owned());
            error!(%addr, reason, "the {what} listener stopped");
            failed
                .send(format!("the {what} listener on {addr}: {reason}"))
                .ok();
        })
        .map(drop)
        .map_err(|e| LocalError::Broker(format!("starting the {what} listener thread: {e}")))
}

/// Waits until `addr` accepts connections, a listener reports a failure, or `deadline`.
fn wait_until_listening(
    addr: SocketAddr,
    what: &str,
    deadline: Instant,
    failed: &mpsc::Receiver<String>,
) -> Result<(), LocalError> {
    let probe = reachable(addr);
    loop {
        if let Ok(reason) = failed.try_recv() {
            return Err(LocalError::Broker(reason));
        }
        let Err(error) = TcpStream::connect_timeout(&probe, Duration::from_millis(200)) else {
            return Ok(());
        };
        if Instant::now() >= deadline {
            return Err(LocalError::Broker(format!(
                "the {what} listener on {addr} did not come up: {error}"
            )));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The address a local client connects to: loopback for a listener on all interfaces.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

fn websocket_url(addr: SocketAddr) -> String {
    format!("ws://{}/mqtt", reachable(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::{self, Read, Write};

    use rumqttc::{Client, Event, MqttOptions, Packet as ClientPacket, QoS};
    use serde_json::{Value, json};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const WAIT: Duration = Duration::from_secs(10);

    /// Two distinct free loopback ports.
    fn free_config() -> BrokerConfig {
        let mqtt = TcpListener::bind("127.0.0.1:0").unwrap();
        let websocket = TcpListener::bind("127.0.0.1:0").unwrap();
        BrokerConfig {
            mqtt: mqtt.local_addr().unwrap(),
            websocket: websocket.local_addr().unwrap(),
            ..BrokerConfig::default()
        }
    }

    /// A rumqttc client on the broker's TCP port, its event loop driven by a thread that
    /// forwards incoming publishes and tells when the first SUBACK arrives.
    fn client(
        broker: &LocalBroker,
        id: &str,
    ) -> (Client, mpsc::Receiver<rumqttc::Publish>, mpsc::Receiver<()>) {
        let addr = broker.mqtt_addr();
        let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut connection) = Client::new(options, 100);
        let (publishes_tx, publishes) = mpsc::channel();
        let (subacks_tx, subacks) = mpsc::channel();
        thread::spawn(move || {
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(ClientPacket::Publish(publish))) => {
                        if publishes_tx.send(publish).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Incoming(ClientPacket::SubAck(_))) => {
                        subacks_tx.send(()).ok();
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        (client, publishes, subacks)
    }

    #[test]
    fn device_messages_reach_the_ingest_handler_in_order_and_in_batches() -> TestResult {
        let broker = LocalBroker::start(&free_config())?;
        let (batches_tx, batches) = mpsc::channel();
        broker.subscribe_batches("alleycat-publish", 25, move |batch| {
            // A handler slower than the device: the router fills the link's buffer and pauses
            // it, which the rule must answer.
            thread::sleep(Duration::from_millis(1));
            batches_tx.send(batch).ok();
        })?;

        let (device, _, _) = client(&broker, "bike-8");
        let big = vec![b'x'; 100 * 1024];
        let mut expected = Vec::new();
        for n in 0..2000 {
            let payload = if n == 1000 {
                big.clone()
            } else {
                format!(r#"{{"n":{n}}}"#).into_bytes()
            };
            device.publish("alleycat-publish", QoS::AtLeastOnce, false, payload.clone())?;
            expected.push(payload);
        }
        // Another topic is not the rule's.
        device.publish("elsewhere", QoS::AtLeastOnce, false, b"{}".to_vec())?;

        let mut received = Vec::new();
        while received.len() < expected.len() {
            let batch = batches
                .recv_timeout(WAIT)
                .map_err(|_| format!("only {} messages arrived", received.len()))?;
            assert!(
                !batch.is_empty() && batch.len() <= 25,
                "{} messages",
                batch.len()
            );
            received.extend(batch);
        }
        assert!(batches.recv_timeout(Duration::from_millis(200)).is_err());
        for message in &received {
            assert_eq!(message.topic, "alleycat-publish");
            assert_eq!(message.client_id, None);
            assert!(message.received_ms >= 1_600_000_000_000);
        }
        let payloads: Vec<_> = received.into_iter().map(|m| m.payload).collect();
        assert!(
            payloads == expected,
            "payloads lost, duplicated or out of order"
        );
        Ok(())
    }

    #[test]
    fn the_publisher_reaches_subscribed_browsers() -> TestResult {
        let broker = LocalBroker::start(&free_config())?;
        let (browser, publishes, subacks) = client(&broker, "browser");
        browser.subscribe("alleycat-subscribe/class-3", QoS::AtMostOnce)?;
        subacks.recv_timeout(WAIT)?;

        let publisher = broker.publisher()?;
        let other = broker.publisher()?;
        for n in 0..50 {
            let message = format!(r#"{{"msg":"results","n":{n}}}"#);
            futures::executor::block_on(
                publisher.publish("alleycat-subscribe/class-3", message.into_bytes()),
            )?;
        }
        futures::executor::block_on(other.publish("alleycat-subscribe/class-4", b"{}".to_vec()))?;
        drop(other);
        futures::executor::block_on(
            publisher.publish("alleycat-subscribe/class-3", b"{}".to_vec()),
        )?;

        for n in 0..50 {
            let publish = publishes.recv_timeout(WAIT)?;
            assert_eq!(publish.topic, "alleycat-subscribe/class-3");
            assert_eq!(publish.qos, QoS::AtMostOnce);
            assert_eq!(
                publish.payload,
                format!(r#"{{"msg":"results","n":{n}}}"#).as_bytes()
            );
        }
        assert_eq!(publishes.recv_timeout(WAIT)?.payload, b"{}".as_slice());
        assert!(publishes.recv_timeout(Duration::from_millis(200)).is_err());
        Ok(())
    }

    #[test]
    fn links_count_against_the_limit_until_dropped() -> TestResult {
        let broker = LocalBroker::start(&BrokerConfig {
            max_connections: 1,
            ..free_config()
        })?;
        let slots = 1 + IN_PROCESS_LINKS;
        let held = (0..slots)
            .map(|_| broker.publisher())
            .collect::<Result<Vec<_>, _>>()?;
        let refused = broker.publisher().unwrap_err();
        assert!(
            refused.to_string().contains("connection limit"),
            "{refused}"
        );

        drop(held);
        for _ in 0..3 * slots {
            drop(broker.publisher()?);
        }
        let publisher = broker.publisher()?;
        futures::executor::block_on(publisher.publish("alleycat-subscribe/class-1", vec![]))?;
        Ok(())
    }

    #[test]
    fn a_port_in_use_is_an_error_naming_it() {
        for websocket_taken in [false, true] {
            let mut config = free_config();
            let taken = if websocket_taken {
                &mut config.websocket
            } else {
                &mut config.mqtt
            };
            let squatter = TcpListener::bind("127.0.0.1:0").unwrap();
            *taken = squatter.local_addr().unwrap();
            let port = taken.port();

            let error = LocalBroker::start(&config).unwrap_err();
            assert!(
                matches!(&error, LocalError::Bind { addr, .. } if addr.port() == port),
                "{error:?}"
            );
            assert!(error.to_string().contains(&format!(":{port}")), "{error}");
        }
    }

    #[test]
    fn settings_that_cannot_work_are_refused() {
        let config = free_config();
        for bad in [
            BrokerConfig {
                websocket: config.mqtt,
                ..config.clone()
            },
            BrokerConfig {
                mqtt: "127.0.0.1:0".parse().unwrap(),
                ..config.clone()
            },
            BrokerConfig {
                max_connections: 0,
                ..config.clone()
            },
        ] {
            let error = LocalBroker::start(&bad).unwrap_err();
            assert!(matches!(error, LocalError::Config(_)), "{error:?}");
        }
    }

    /// One client-to-server WebSocket frame (binary, final, masked as clients must).
    fn ws_frame(payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut frame = vec![0x82, 0x80 | u8::try_from(payload.len()).unwrap()];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
        frame
    }

    /// Reads one unmasked server frame with a payload under 126 bytes.
    fn read_ws_frame(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
        let mut header = [0; 2];
        stream.read_exact(&mut header)?;
        assert_eq!(header[0], 0x82, "a final binary frame");
        let mut payload = vec![0; usize::from(header[1])];
        stream.read_exact(&mut payload)?;
        Ok(payload)
    }

    #[test]
    fn browsers_speak_mqtt_3_1_1_over_websocket_at_mqtt() -> TestResult {
        let broker = LocalBroker::start(&free_config())?;
        let url = broker.websocket_url();
        let host = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.strip_suffix("/mqtt"))
            .ok_or(url.clone())?;
        let (batches_tx, batches) = mpsc::channel();
        broker.subscribe_batches("alleycat-publish", 10, move |batch| {
            batches_tx.send(batch).ok();
        })?;

        let mut stream = TcpStream::connect(host)?;
        stream.set_read_timeout(Some(WAIT))?;
        write!(
            stream,
            "GET /mqtt HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: mqtt\r\n\r\n"
        )?;
        let mut response = Vec::new();
        while !response.ends_with(b"\r\n\r\n") {
            let mut byte = [0];
            stream.read_exact(&mut byte)?;
            response.push(byte[0]);
        }
        let response = String::from_utf8(response)?.to_ascii_lowercase();
        assert!(response.starts_with("http/1.1 101"), "{response}");
        assert!(response.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="));
        assert!(response.contains("sec-websocket-protocol: mqtt"));

        // CONNECT (MQTT 3.1.1, clean session, keep-alive 60 s, client id "browser-1")...
        let mut connect = vec![0x10, 21, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 9];
        connect.extend_from_slice(b"browser-1");
        stream.write_all(&ws_frame(&connect))?;
        assert_eq!(
            read_ws_frame(&mut stream)?,
            [0x20, 2, 0, 0],
            "CONNACK accepted"
        );
        // ...then a QoS 1 PUBLISH (packet id 1) to the rule's topic.
        let mut publish = vec![0x32, 0, 0, 16];
        publish.extend_from_slice(b"alleycat-publish");
        publish.extend_from_slice(&[0, 1]);
        publish.extend_from_slice(br#"{"ws":true}"#);
        publish[1] = u8::try_from(publish.len() - 2)?;
        stream.write_all(&ws_frame(&publish))?;
        assert_eq!(read_ws_frame(&mut stream)?, [0x40, 2, 0, 1], "PUBACK");

        let batch = batches.recv_timeout(WAIT)?;
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].payload, br#"{"ws":true}"#);
        Ok(())
    }

    fn enriched(payload: &[u8], client_id: Option<&str>) -> Value {
        serde_json::from_slice(&enrich(payload, client_id, 1_620_051_628_731)).unwrap()
    }

    #[test]
    fn enrich_adds_the_rules_fields_to_an_object_keeping_the_rest() {
        let payload = br#"{"uuid":"u","racerId":8,"cadence":74.20,"future":[1,{"a":null}]}"#;
        assert_eq!(
            enrich(payload, Some("bike-8"), 1_620_051_628_731),
            br#"{"uuid":"u","racerId":8,"cadence":74.20,"future":[1,{"a":null}],"clientId":"bike-8","ingestTimestamp":1620051628731}"#
        );
        assert_eq!(
            enrich(payload, None, 7),
            br#"{"uuid":"u","racerId":8,"cadence":74.20,"future":[1,{"a":null}],"ingestTimestamp":7}"#
        );
    }

    #[test]
    fn enrich_handles_whitespace_empty_objects_and_odd_client_ids() {
        assert_eq!(
            enriched(b" {\"a\": 1 ,\n \"b\":\"}\" }\r\n", Some("bike-8")),
            json!({"a": 1, "b": "}", "clientId": "bike-8", "ingestTimestamp": 1_620_051_628_731_u64})
        );
        assert_eq!(enrich(b"{ \n}", None, 5), b"{ \n\"ingestTimestamp\":5}");
        assert_eq!(
            enriched(b"{}", Some(r#"a"quote\and"#)),
            json!({"clientId": r#"a"quote\and"#, "ingestTimestamp": 1_620_051_628_731_u64})
        );
    }

    #[test]
    fn enrich_replaces_fields_the_device_sent() {
        assert_eq!(
            enriched(
                br#"{"clientId":"forged","ingestTimestamp":1,"n":2}"#,
                Some("bike-8")
            ),
            json!({"clientId": "bike-8", "ingestTimestamp": 1_620_051_628_731_u64, "n": 2})
        );
    }

    #[test]
    fn enrich_leaves_anything_but_a_json_object_unchanged() {
        for payload in [
            b"not json".as_slice(),
            b"{\"unterminated\":1",
            b"{\"a\":1}}",
            b"{oops}",
            b"[{\"a\":1}]",
            b"\"{}\"",
            b"42",
            b"",
            &[0xff, b'{', b'}'],
        ] {
            assert_eq!(enrich(payload, Some("bike-8"), 1), payload, "{payload:?}");
        }
    }

    #[test]
    fn the_websocket_url_is_reachable_from_this_machine() {
        assert_eq!(
            websocket_url("0.0.0.0:9001".parse().unwrap()),
            "ws://127.0.0.1:9001/mqtt"
        );
        assert_eq!(
            websocket_url("[::]:9001".parse().unwrap()),
            "ws://[::1]:9001/mqtt"
        );
        assert_eq!(
            websocket_url("10.0.0.2:9001".parse().unwrap()),
            "ws://10.0.0.2:9001/mqtt"
        );
    }
}
