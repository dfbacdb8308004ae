//! One client connection through the gate: its CONNECT checked, then its packets relayed to the
//! broker behind and the broker's back to it, but for its publishes, which go to the ingest rule.
//!
//! Client to broker, every packet is framed and the ones the policy is about are decoded: a
//! PUBLISH is checked and handed to the [ingest rule](crate::ingest) with who sent it, never to
//! the broker, and a QoS 1 one is acknowledged by the gate once the rule has appended it to the
//! stream (so PUBACK means "in the stream", and PUBACKs go out in the order of their PUBLISHes,
//! as MQTT requires, since one appender takes them in order); a SUBSCRIBE has its refused
//! filters taken out; a second CONNECT ends the connection; everything else (acks of the
//! standings, pings, unsubscribes, DISCONNECT) goes on as it came, for the broker to judge.
//!
//! Broker to client, packets go on byte for byte, with one exception: the SUBACK of a
//! SUBSCRIBE that had filters taken out gets `0x80` (failure) put back at their positions, so
//! the client sees one answer per filter it asked for, as MQTT requires. The gate's own packets
//! (PUBACKs, the SUBACK of a SUBSCRIBE with no allowed filter at all) go out between two whole
//! packets of the broker's.
//!
//! Keep-alive is the gate's business: a client that only publishes sends nothing the broker
//! sees, so the gate connects upstream with the longest keep-alive MQTT allows and closes a
//! client that stays silent for one and a half times its own.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4::{
    ConnAck, ConnectReturnCode, Packet, PubAck, Publish, SubAck, Subscribe, SubscribeReasonCode,
};
use rumqttc::mqttbytes::{self, Error as MqttError, FixedHeader, PacketType, QoS};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::debug;

use super::Shared;
use super::policy::{self, MAX_PAYLOAD, Role};
use crate::ingest::Submitted;

/// How long a client has to send CONNECT once connected (and, on WebSocket, upgraded).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest packet a client may send: a largest payload with the largest topic and packet
/// id. Larger ones are refused from their fixed header, before their bytes are read.
const MAX_CLIENT_PACKET: usize = MAX_PAYLOAD + 2 + 65_535 + 2;

/// The largest packet the broker sends (its own limit is lower); only a bound for framing.
const MAX_BROKER_PACKET: usize = 16 << 20;

/// The keep-alive of a client that asks for none (0): IoT Core's longest, 1,200 s.
const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(1200);

/// What the gate itself sends a client, between the broker's packets.
#[derive(Debug)]
enum ToClient {
    /// A whole packet (a PUBACK, a SUBACK).
    Packet(Bytes),
    /// The ingest rule could not append a publish: close the connection unacknowledged, so that
    /// the client sends it again once it has reconnected.
    Close,
}

/// Per SUBSCRIBE packet id whose filters the gate thinned out: which of the client's filters
/// were allowed, in order.
type Thinned = Arc<Mutex<HashMap<u16, Vec<bool>>>>;

/// Why a connection ended early (for the gate's debug log).
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("malformed MQTT: {0}")]
    Mqtt(#[from] MqttError),
    #[error("no CONNECT within {} s", CONNECT_TIMEOUT.as_secs())]
    ConnectTimeout,
    #[error("the first packet was not CONNECT")]
    NotConnect,
    #[error("CONNECT refused: {0:?}")]
    Refused(ConnectReturnCode),
    #[error("disconnected: {0}")]
    Forbidden(policy::Refusal),
    #[error("a second CONNECT")]
    SecondConnect,
    #[error("silent for longer than one and a half keep-alives")]
    KeepAlive,
    #[error("the ingest rule failed to append a publish")]
    IngestFailed,
}

/// Serves one client until either side closes, or the client breaks the policy.
pub async fn serve<S>(client: S, peer: SocketAddr, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    if let Err(reason) = run(client, &shared).await {
        debug!(%peer, %reason, "MQTT client disconnected by the gate");
    }
}

async fn run<S>(client: S, shared: &Shared) -> Result<(), Ended>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (mut client_rx, mut client_tx) = tokio::io::split(client);
    let mut buffer = BytesMut::with_capacity(4096);
    let connect = tokio::time::timeout(
        CONNECT_TIMEOUT,
        next_packet(&mut client_rx, &mut buffer, MAX_CLIENT_PACKET),
    )
    .await
    .map_err(|_| Ended::ConnectTimeout)??;
    let Some((header, bytes)) = connect else {
        return Ok(());
    };
    if header.packet_type()? != PacketType::Connect {
        return Err(Ended::NotConnect);
    }
    let Packet::Connect(mut connect) = Packet::read(&mut BytesMut::from(&bytes[..]), usize::MAX)?
    else {
        return Err(Ended::NotConnect);
    };
    let role = policy::authenticate(&connect, &shared.identities, &shared.operator);
    let upstream_id = role
        .as_ref()
        .ok()
        .and_then(|role| policy::upstream_client_id(role, &connect));
    let (role, upstream_id) = match (role, upstream_id) {
        (Ok(role), Some(id)) => (role, id),
        (Err(code), _) => return refuse(&mut client_tx, code).await,
        (Ok(_), None) => return refuse(&mut client_tx, ConnectReturnCode::BadClientId).await,
    };

    // The broker behind has no authentication of its own: the secrets stay here. Nor does it
    // see the publishes: the gate keeps the client's keep-alive (see the module's docs).
    let keep_alive = match connect.keep_alive {
        0 => DEFAULT_KEEP_ALIVE,
        seconds => Duration::from_secs(u64::from(seconds)),
    };
    connect.client_id = upstream_id;
    connect.login = None;
    connect.keep_alive = u16::MAX;
    let mut upstream = TcpStream::connect(shared.upstream).await?;
    upstream.set_nodelay(true)?;
    let mut encoded = BytesMut::new();
    connect.write(&mut encoded)?;
    upstream.write_all(&encoded).await?;
    let (broker_rx, mut broker_tx) = upstream.into_split();

    let thinned = Thinned::default();
    let (inject_tx, inject_rx) = mpsc::unbounded_channel();
    let client = Client {
        role: &role,
        shared,
        silence: keep_alive + keep_alive / 2,
    };
    let outbound = client_to_broker(
        &mut client_rx,
        &mut broker_tx,
        buffer,
        &client,
        &thinned,
        &inject_tx,
    );
    let inbound = broker_to_client(broker_rx, &mut client_tx, &thinned, inject_rx);
    // Whichever side ends first ends the connection: the other half is dropped with it.
    let ended = tokio::select! {
        ended = outbound => ended,
        ended = inbound => ended,
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), client_tx.shutdown()).await;
    ended
}

/// Answers CONNECT with a refusal, and ends the connection.
async fn refuse<W: AsyncWrite + Unpin>(
    client_tx: &mut W,
    code: ConnectReturnCode,
) -> Result<(), Ended> {
    let mut connack = BytesMut::new();
    ConnAck::new(code, false).write(&mut connack)?;
    client_tx.write_all(&connack).await?;
    client_tx.flush().await?;
    let _ = client_tx.shutdown().await;
    Err(Ended::Refused(code))
}

/// Reads until `buffer` holds a whole packet, and takes it off: its fixed header and bytes.
/// `None` when the stream ends between packets.
async fn next_packet<R: AsyncRead + Unpin>(
    rx: &mut R,
    buffer: &mut BytesMut,
    max_packet: usize,
) -> Result<Option<(FixedHeader, Bytes)>, Ended> {
    loop {
        match mqttbytes::check(buffer.iter(), max_packet) {
            Ok(header) => {
                let bytes = buffer.split_to(header.frame_length()).freeze();
                return Ok(Some((header, bytes)));
            }
            Err(MqttError::InsufficientBytes(_)) => {}
            Err(error) => return Err(error.into()),
        }
        if rx.read_buf(buffer).await? == 0 {
            return if buffer.is_empty() {
                Ok(None)
            } else {
                Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into())
            };
        }
    }
}

/// Who is on the other end of a connection, and what the gate needs to serve it.
struct Client<'c> {
    role: &'c Role,
    shared: &'c Shared,
    /// How long the client may stay silent: one and a half keep-alives.
    silence: Duration,
}

/// The client's packets, checked, until the client closes: publishes to the ingest rule, the
/// rest to the broker.
async fn client_to_broker<R, W>(
    client_rx: &mut R,
    broker_tx: &mut W,
    mut buffer: BytesMut,
    client: &Client<'_>,
    thinned: &Thinned,
    inject: &mpsc::UnboundedSender<ToClient>,
) -> Result<(), Ended>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut out = BytesMut::new();
    loop {
        let next = next_packet(client_rx, &mut buffer, MAX_CLIENT_PACKET);
        let Some((header, bytes)) = tokio::time::timeout(client.silence, next)
            .await
            .map_err(|_| Ended::KeepAlive)??
        else {
            break;
        };
        match header.packet_type()? {
            PacketType::Connect => return Err(Ended::SecondConnect),
            PacketType::Publish => {
                let publish = Publish::read(header, bytes)?;
                let identity =
                    policy::check_publish(client.role, &publish).map_err(Ended::Forbidden)?;
                let acked = (publish.qos == QoS::AtLeastOnce).then(|| {
                    let inject = inject.clone();
                    let pkid = publish.pkid;
                    Box::new(move |appended: bool| {
                        let answer = if appended {
                            let mut puback = BytesMut::new();
                            // Encoding a PUBACK into a growable buffer cannot fail.
                            let _ = PubAck::new(pkid).write(&mut puback);
                            ToClient::Packet(puback.freeze())
                        } else {
                            ToClient::Close
                        };
                        // The client is gone if the other direction has ended: so is the ack.
                        let _ = inject.send(answer);
                    }) as crate::ingest::Acked
                });
                let submitted = Submitted {
                    identity: identity.map(str::to_owned),
                    payload: publish.payload,
                    received_ms: crate::now_ms(),
                    acked,
                };
                if client.shared.ingest.submit(submitted).await.is_err() {
                    return Err(Ended::IngestFailed);
                }
            }
            PacketType::Subscribe => {
                let subscribe = Subscribe::read(header, bytes.clone())?;
                let allowed: Vec<bool> = subscribe
                    .filters
                    .iter()
                    .map(|filter| policy::allowed_filter(&filter.path))
                    .collect();
                if allowed.iter().all(|ok| *ok) {
                    out.extend_from_slice(&bytes);
                } else if allowed.iter().all(|ok| !*ok) {
                    let failures = vec![SubscribeReasonCode::Failure; allowed.len()];
                    let mut suback = BytesMut::new();
                    SubAck::new(subscribe.pkid, failures).write(&mut suback)?;
                    // The client is gone if the other direction has ended: so is this one.
                    let _ = inject.send(ToClient::Packet(suback.freeze()));
                } else {
                    let filters = subscribe
                        .filters
                        .into_iter()
                        .zip(&allowed)
                        .filter(|(_, ok)| **ok)
                        .map(|(filter, _)| filter);
                    let kept = Subscribe::new_many(filters);
                    let kept = Subscribe {
                        pkid: subscribe.pkid,
                        ..kept
                    };
                    kept.write(&mut out)?;
                    lock(thinned).insert(subscribe.pkid, allowed);
                }
            }
            _ => out.extend_from_slice(&bytes),
        }
        // Write what has been framed so far once no whole packet is left in the buffer.
        if !out.is_empty() && mqttbytes::check(buffer.iter(), MAX_CLIENT_PACKET).is_err() {
            broker_tx.write_all(&out).await?;
            out.clear();
        }
    }
    broker_tx.write_all(&out).await?;
    Ok(())
}

/// The broker's packets, forwarded to the client as they are (but for thinned SUBACKs), with the
/// gate's own SUBACKs put in between packets; until the broker closes.
async fn broker_to_client<R, W>(
    mut broker_rx: R,
    client_tx: &mut W,
    thinned: &Thinned,
    mut inject: mpsc::UnboundedReceiver<ToClient>,
) -> Result<(), Ended>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buffer = BytesMut::with_capacity(64 * 1024);
    let mut out = BytesMut::new();
    loop {
        tokio::select! {
            read = broker_rx.read_buf(&mut buffer) => {
                if read? == 0 {
                    return Ok(());
                }
            }
            Some(own) = inject.recv() => {
                match own {
                    ToClient::Packet(packet) => client_tx.write_all(&packet).await?,
                    ToClient::Close => return Err(Ended::IngestFailed),
                }
                continue;
            }
        }
        // Forward every whole packet; a partial one waits for its remaining bytes.
        loop {
            let header = match mqttbytes::check(buffer.iter(), MAX_BROKER_PACKET) {
                Ok(header) => header,
                Err(MqttError::InsufficientBytes(_)) => break,
                Err(error) => return Err(error.into()),
            };
            let bytes = buffer.split_to(header.frame_length());
            if header.packet_type()? == PacketType::SubAck
                && let Some(rewritten) = restore_refused(header, &bytes, thinned)?
            {
                out.extend_from_slice(&rewritten);
            } else {
                out.extend_from_slice(&bytes);
            }
        }
        if !out.is_empty() {
            client_tx.write_all(&out).await?;
            out.clear();
        }
    }
}

/// The client's SUBACK for a thinned SUBACK of the broker: `0x80` at the refused filters'
/// positions, the broker's codes at the others. `None` for a SUBACK the gate did not thin.
fn restore_refused(
    header: FixedHeader,
    bytes: &BytesMut,
    thinned: &Thinned,
) -> Result<Option<BytesMut>, Ended> {
    let suback = SubAck::read(header, Bytes::copy_from_slice(bytes))?;
    let Some(allowed) = lock(thinned).remove(&suback.pkid) else {
        return Ok(None);
    };
    let mut codes = suback.return_codes.into_iter();
    let return_codes = allowed
        .iter()
        .map(|ok| {
            if *ok {
                codes.next().unwrap_or(SubscribeReasonCode::Failure)
            } else {
                SubscribeReasonCode::Failure
            }
        })
        .collect();
    let mut out = BytesMut::new();
    SubAck::new(suback.pkid, return_codes).write(&mut out)?;
    Ok(Some(out))
}

fn lock(thinned: &Thinned) -> std::sync::MutexGuard<'_, HashMap<u16, Vec<bool>>> {
    thinned.lock().unwrap_or_else(PoisonError::into_inner)
}
