//! The WebSocket handshake of MQTT over WebSocket, as browsers do it, with what rumqttd left
//! out: a deadline, and the `Origin` check that keeps other web sites' pages off the broker.
//!
//! Browsers let any page open a WebSocket to any host, sending the page's origin along; the
//! server is the one that must refuse foreign origins (no CORS applies to WebSockets). Only the
//! stack's own pages may connect: no `Origin` (a bike, the simulator: not a browser) or one of
//! the HTTP server's origins. Anything else gets 403 before any MQTT byte is read.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use async_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio::net::TcpStream;
use ws_stream_tungstenite::WsStream;

/// How long a client has for the whole handshake (request read, response written).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest WebSocket message or frame accepted: above the gate's largest MQTT packet, far
/// below tungstenite's default of 64 MiB.
const MAX_MESSAGE: usize = 1 << 20;

/// The MQTT byte stream of an accepted WebSocket.
pub type Stream = WsStream<TokioAdapter<TcpStream>>;

/// The origins of the HTTP server at `http`: `http://127.0.0.1:<port>` and
/// `http://localhost:<port>`, and `http://<ip>:<port>` when it listens on one specific other
/// address (a LAN address given as `--host`).
pub fn own_origins(http: SocketAddr) -> Vec<String> {
    let port = http.port();
    let mut origins = vec![
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ];
    match http.ip() {
        ip if ip.is_unspecified() || ip.is_loopback() => {}
        IpAddr::V4(ip) => origins.push(format!("http://{ip}:{port}")),
        IpAddr::V6(ip) => origins.push(format!("http://[{ip}]:{port}")),
    }
    origins
}

/// Why a handshake failed (for the gate's debug log).
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The client did not finish in time.
    #[error("no WebSocket handshake within {} s", HANDSHAKE_TIMEOUT.as_secs())]
    Timeout,
    /// Not a WebSocket upgrade, a foreign origin (answered 403), or the connection failed.
    #[error("WebSocket handshake: {0}")]
    Failed(#[from] async_tungstenite::tungstenite::Error),
}

/// Answers the handshake on `tcp` within [`HANDSHAKE_TIMEOUT`], refusing origins not in
/// `origins` with 403; agrees to the `mqtt` subprotocol when the client offers it (browsers
/// fail a connection whose server names a subprotocol they did not offer).
pub async fn accept(tcp: TcpStream, origins: &[String]) -> Result<Stream, HandshakeError> {
    // The callback's error type is tungstenite's, large or not.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, mut response: Response| {
        if let Some(origin) = request.headers().get(header::ORIGIN)
            && !origins
                .iter()
                .any(|own| own.as_bytes() == origin.as_bytes())
        {
            let mut refusal = ErrorResponse::new(Some("Forbidden: foreign origin\n".to_owned()));
            *refusal.status_mut() = StatusCode::FORBIDDEN;
            return Err(refusal);
        }
        let offers_mqtt = request
            .headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|protocol| protocol.trim() == "mqtt");
        if offers_mqtt {
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static("mqtt"),
            );
        }
        Ok(response)
    };
    let config = WebSocketConfig {
        max_message_size: Some(MAX_MESSAGE),
        max_frame_size: Some(MAX_MESSAGE),
        ..WebSocketConfig::default()
    };
    let handshake =
        async_tungstenite::tokio::accept_hdr_async_with_config(tcp, callback, Some(config));
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(websocket)) => Ok(WsStream::new(websocket)),
        Ok(Err(error)) => Err(HandshakeError::Failed(error)),
        Err(_) => Err(HandshakeError::Timeout),
    }
}
