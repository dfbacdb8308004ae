//! The embedded MQTT broker: IoT Core's message broker, for the live standings.
//!
//! [`LocalBroker`] runs rumqttd in-process with one MQTT 3.1.1 listener on a loopback port of
//! its own, which only the [gate](crate::gate) connects to: the gate owns the public ports (TCP
//! and WebSocket), checks who connects and what they may publish and subscribe to, and relays
//! the rest. The `publisher` function pushes live standings (`alleycat-subscribe/class-<c>`,
//! QoS 0) through [`LocalBroker::publisher`], the [`Publisher`] port on an in-process link, with
//! no socket in between.
//!
//! Device messages do not pass through the broker: the gate hands every publish to
//! `alleycat-publish` to the IoT rule itself ([`crate::ingest`]), because of the next point.
//!
//! rumqttd facts this module is built around (all verified against rumqttd 0.20):
//!
//! - A broker cannot be stopped: its threads live as long as the process.
//! - A publisher's PUBACK is sent when the message is appended to the router's in-memory commit
//!   log, not when a subscriber has taken it; the log of each subscription filter holds up to
//!   [`LOG_SEGMENT_COUNT`] segments of [`LOG_SEGMENT_BYTES`] besides the one being written, and
//!   a subscriber that falls further behind loses the oldest messages. Nothing acknowledged
//!   should go through it, then; the standings (snapshots, each superseding the last) may.
//! - Those logs are never shrunk while a filter has ever been subscribed: their bound is the
//!   broker's memory. Hence small segments (see [`LOG_SEGMENT_BYTES`]).
//! - rumqttd has no useful permissions, and handshakes WebSockets inside its accept loop with no
//!   deadline: hence the gate, and no listener of rumqttd's on a public port.
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
use rumqttd::local::{LinkBuilder, LinkRx, LinkTx};
use rumqttd::protocol::v4::V4;
use rumqttd::protocol::{Disconnect, DisconnectReasonCode, Packet};
use rumqttd::{
    ConnectionSettings, LinkType, Notification, Router, RouterConfig, Server, ServerSettings,
};
use tracing::{error, info, warn};

use crate::error::LocalError;

/// Size of one segment of a subscription filter's in-memory commit log, in bytes (topic plus
/// payload of every message). Only the standings go through the broker: one message of a race
/// at its cap is about 32 KB, and IoT Core's largest is 128 KB, so a segment holds a few dozen.
pub const LOG_SEGMENT_BYTES: usize = 1 << 20;

/// Segments kept per subscription filter besides the one being written. With
/// [`LOG_SEGMENT_BYTES`], a filter holds at most 3 MiB (rumqttd keeps a filter's log for the
/// life of the process, so this is what each filter ever subscribed to, `alleycat-subscribe/+`
/// and one per class, costs in memory); a subscriber more than 2 MiB of standings behind skips
/// the oldest, which newer standings supersede anyway.
pub const LOG_SEGMENT_COUNT: usize = 2;

/// In-process links (the publishers) the router admits on top of
/// [`BrokerConfig::max_connections`].
const IN_PROCESS_LINKS: usize = 16;

/// How long [`LocalBroker::start`] waits for its listener to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take between opening a connection and sending CONNECT (rumqttd takes
/// a `u16` of milliseconds).
const CONNECT_TIMEOUT_MS: u16 = 10_000;

/// Packets rumqttd reads from one connection in one go.
const READ_BATCH: usize = 500;

/// Messages the router moves to a QoS 0 subscriber in one sweep.
const FORWARD_BATCH: u64 = 200;

/// Where the broker is reached (through the gate) and how much it admits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfig {
    /// The public MQTT-over-TCP listener (bikes, the simulator), the gate's.
    pub mqtt: SocketAddr,
    /// The public MQTT-over-WebSocket listener (browsers, path `/mqtt`), the gate's.
    pub websocket: SocketAddr,
    /// Client connections admitted at once, both listeners together.
    pub max_connections: usize,
    /// The largest MQTT packet rumqttd accepts, in bytes (a whole packet, not only its
    /// payload). The gate refuses payloads over 128 KB before this; keep it above, so that
    /// what the gate lets through is never refused behind it.
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

/// A running rumqttd broker with its loopback MQTT listener, for the gate.
///
/// It is put together from rumqttd's parts (the router, a `Server` on its own thread) rather
/// than with `rumqttd::Broker`, whose `start` blocks for good while holding the `Broker` that
/// in-process links are opened through: this keeps the router's handle, so links can be opened
/// whenever the stack needs one.
///
/// Dropping it does not stop the broker (rumqttd cannot be stopped): the router and listener
/// threads run until the process ends.
pub struct LocalBroker {
    /// rumqttd's own listener: loopback, a port chosen at start.
    internal: SocketAddr,
    connect: Box<Connect>,
}

impl std::fmt::Debug for LocalBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBroker")
            .field("internal", &self.internal)
            .finish_non_exhaustive()
    }
}

impl LocalBroker {
    /// Starts the router, and its MQTT listener on a free loopback port in its own thread;
    /// returns once that port accepts connections.
    ///
    /// Fails with [`LocalError::Config`] for settings that cannot work (port 0, both public
    /// listeners on one address, no connections admitted), and [`LocalError::Broker`] when the
    /// listener does not come up within 10 seconds. The public ports are the gate's.
    pub fn start(config: &BrokerConfig) -> Result<Self, LocalError> {
        validate(config)?;
        let router = Router::new(0, router_config(config));
        let router_tx = router.spawn();
        // rumqttd binds the port itself and cannot say which one it got from port 0: take a
        // free one, and try another if someone takes it in between.
        let mut attempts = 0;
        let internal = loop {
            attempts += 1;
            let addr = free_loopback_port()?;
            let (failed_tx, failed) = mpsc::channel();
            let server = Server::new(server_settings(config, addr), router_tx.clone(), V4);
            spawn_listener(server, addr, failed_tx)?;
            match wait_until_listening(addr, Instant::now() + STARTUP_TIMEOUT, &failed) {
                Ok(()) => break addr,
                Err(error) if attempts >= 3 => return Err(error),
                Err(error) => warn!(%error, "retrying the broker's listener on another port"),
            }
        };
        info!(%internal, "MQTT broker listening (loopback, for the gate)");

        let connect = move |client_id: &str| {
            LinkBuilder::new(client_id, router_tx.clone())
                .build()
                .map(|(tx, rx, _connack)| (tx, rx))
                .map_err(|e| e.to_string())
        };
        Ok(Self {
            internal,
            connect: Box::new(connect),
        })
    }

    /// rumqttd's own MQTT listener (loopback), which the gate relays clients to.
    pub fn internal_addr(&self) -> SocketAddr {
        self.internal
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

/// Refuses settings that cannot work: port 0, both public listeners on one address, no
/// connections or packets admitted.
pub(crate) fn validate(config: &BrokerConfig) -> Result<(), LocalError> {
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

/// A loopback address with a port free right now.
fn free_loopback_port() -> Result<SocketAddr, LocalError> {
    let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    TcpListener::bind(any)
        .and_then(|listener| listener.local_addr())
        .map_err(|source| LocalError::Bind {
            addr: any,
            what: "MQTT (the broker's loopback listener)",
            source,
        })
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

fn server_settings(config: &BrokerConfig, listen: SocketAddr) -> ServerSettings {
    ServerSettings {
        name: "MQTT".to_owned(),
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

/// Runs rumqttd's listener on its own thread and single-threaded runtime, as `Broker::start`
/// does; reports on `failed` if it stops (it only does on error).
fn spawn_listener(
    mut server: Server<V4>,
    addr: SocketAddr,
    failed: mpsc::Sender<String>,
) -> Result<(), LocalError> {
    thread::Builder::new()
        .name("alleycat-mqtt".to_owned())
        .spawn(move || {
            let outcome = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|runtime| {
                    runtime
                        .block_on(server.start(LinkType::Remote))
                        .map_err(|e| e.to_string())
                });
            let reason = outcome.err().unwrap_or_else(|| "stopped".to_owned());
            error!(%addr, reason, "the broker's MQTT listener stopped");
            failed
                .send(format!("the broker's MQTT listener on {addr}: {reason}"))
                .ok();
        })
        .map(drop)
        .map_err(|e| LocalError::Broker(format!("starting the broker's listener thread: {e}")))
}

/// Waits until `addr` accepts connections, the listener reports a failure, or `deadline`.
fn wait_until_listening(
    addr: SocketAddr,
    deadline: Instant,
    failed: &mpsc::Receiver<String>,
) -> Result<(), LocalError> {
    loop {
        if let Ok(reason) = failed.try_recv() {
            return Err(LocalError::Broker(reason));
        }
        let Err(error) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
            return Ok(());
        };
        if Instant::now() >= deadline {
            return Err(LocalError::Broker(format!(
                "the broker's MQTT listener on {addr} did not come up: {error}"
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

/// The URL MQTT.js connects to for a WebSocket listener on `addr`, e.g.
/// `ws://127.0.0.1:9001/mqtt` (a listener on all interfaces is given as loopback).
pub fn websocket_url(addr: SocketAddr) -> String {
    format!("ws://{}/mqtt", reachable(addr))
}

#[cfg(test)]
mod tests;
