//! The broker's front door: IoT Core's authentication and policies, in front of rumqttd.
//!
//! rumqttd has no permissions worth the name (any client may publish anywhere, retain, subscribe
//! to `#`) and performs WebSocket handshakes inside its accept loop with no deadline, so one
//! silent connection to its WebSocket port stalls every browser. So rumqttd listens on a
//! loopback port of its own ([`crate::broker`]), and the gate owns the public ports (MQTT over
//! TCP, MQTT over WebSocket at `/mqtt`). Each connection is served by its own task:
//!
//! 1. WebSocket only: the handshake, within 5 s, from the stack's own origins or none
//!    ([`websocket`]);
//! 2. CONNECT, within 10 s: who the client is ([`policy::authenticate`]): a rider's identity
//!    with its token, the operator with its secret, or anonymous; refused credentials get their
//!    CONNACK code and the connection closes;
//! 3. then a connection to rumqttd, and packets relayed both ways ([`session`]): publishes only
//!    to exactly `alleycat-publish` (QoS 0/1, no retain, up to 128 KB; anything else closes the
//!    connection, as IoT Core does), handed to the [ingest rule](crate::ingest) with the
//!    publisher's identity instead of to rumqttd, and acknowledged (QoS 1) once appended to the
//!    stream; subscriptions only to the standings (`0x80` for any other filter); the broker's
//!    packets go back unchanged.
//!
//! What the gate does not do: TLS, and MQTT 5. The broker behind still enforces its connection
//! limit and its packet size on what reaches it.

pub mod policy;
pub mod session;
pub mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tracing::{debug, info, warn};

use crate::broker::BrokerConfig;
use crate::error::LocalError;
use crate::identity::{Identities, OperatorSecret};
use crate::ingest::Ingest;

/// What every connection is checked against, and where its publishes go.
pub struct Shared {
    /// Verifies identities' tokens.
    pub identities: Identities,
    /// The operator's password.
    pub operator: OperatorSecret,
    /// rumqttd's own (loopback) MQTT listener.
    pub upstream: SocketAddr,
    /// The origins browsers may connect from.
    pub origins: Vec<String>,
    /// The ingest rule, which takes every allowed publish.
    pub ingest: Ingest,
}

/// The gate, bound to the public ports, not yet serving.
pub struct Gate {
    mqtt: TcpListener,
    websocket: TcpListener,
    /// Client connections served at once, both listeners together (as the broker's limit).
    slots: Arc<Semaphore>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("mqtt", &self.mqtt.local_addr().ok())
            .field("websocket", &self.websocket.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// Binds the public MQTT and WebSocket ports of `config`; a port in use is
    /// [`LocalError::Bind`] naming it, settings that cannot work [`LocalError::Config`]. Bind
    /// before starting the broker: a broker cannot be stopped once started.
    pub async fn bind(config: &BrokerConfig) -> Result<Self, LocalError> {
        crate::broker::validate(config)?;
        let bind = async |addr: SocketAddr, what: &'static str| {
            TcpListener::bind(addr)
                .await
                .map_err(|source| LocalError::Bind { addr, what, source })
        };
        let mqtt = bind(config.mqtt, "MQTT").await?;
        let websocket = bind(config.websocket, "MQTT over WebSocket").await?;
        Ok(Self {
            mqtt,
            websocket,
            slots: Arc::new(Semaphore::new(config.max_connections)),
        })
    }

    /// The public MQTT (TCP) address.
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The public WebSocket address.
    pub fn websocket_addr(&self) -> SocketAddr {
        self.websocket
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Accepts connections on both ports until `shutdown` turns true, each served by its own
    /// task against `shared`. Connections already served carry on until they end: MQTT clients
    /// reconnect, and the broker behind lives as long as the process anyway.
    pub async fn run(
        self,
        shared: Shared,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), LocalError> {
        info!(
            mqtt = %self.mqtt_addr(),
            websocket = %crate::broker::websocket_url(self.websocket_addr()),
            upstream = %shared.upstream,
            "MQTT gate listening"
        );
        let shared = Arc::new(shared);
        loop {
            let accepted = tokio::select! {
                accepted = self.mqtt.accept() => accepted.map(|(s, peer)| (s, peer, false)),
                accepted = self.websocket.accept() => accepted.map(|(s, peer)| (s, peer, true)),
                _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            };
            let (stream, peer, websocket) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            };
            let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
                debug!(%peer, "MQTT gate at its connection limit: connection closed");
                continue;
            };
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let _slot = slot;
                serve(stream, peer, websocket, shared).await;
            });
        }
    }
}

/// One accepted connection: the WebSocket handshake if any, then the MQTT session.
async fn serve(stream: TcpStream, peer: SocketAddr, websocket: bool, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    if websocket {
        match websocket::accept(stream, &shared.origins).await {
            Ok(stream) => session::serve(stream, peer, shared).await,
            Err(error) => debug!(%peer, %error, "WebSocket refused"),
        }
    } else {
        session::serve(stream, peer, shared).await;
    }
}

/// An accept that failed (out of file descriptors, most often): logged, and retried shortly
/// rather than in a busy loop.
async fn accept_failed(error: &std::io::Error) {
    warn!(%error, "the MQTT gate could not accept a connection");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}
