//! One client connection through the gate: its CONNECT checked, then its packets relayed to the
//! broker behind and the broker's back to it.
//!
//! Client to broker, every packet is framed and the ones the policy is about are decoded: a
//! PUBLISH is checked (and an identity's re-encoded under its own topic), a SUBSCRIBE has its
//! refused filters taken out, a second CONNECT ends the connection; everything else (acks,
//! pings, unsubscribes, DISCONNECT) goes on as it came, for the broker to judge.
//!
//! Broker to client, packets go on byte for byte, with one exception: the SUBACK of a
//! SUBSCRIBE that had filters taken out gets `0x80` (failure) put back at their positions, so
//! the client sees one answer per filter it asked for, as MQTT requires. A SUBSCRIBE with no
//! allowed filter at all never reaches the broker; the gate answers it itself, between two whole
//! packets of the broker's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4::{
    ConnAck, ConnectReturnCode, Packet, Publish, SubAck, Subscribe, SubscribeReasonCode,
};
use rumqttc::mqttbytes::{self, Error as MqttError, FixedHeader, PacketType};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::debug;

use super::Shared;
use super::policy::{self, MAX_PAYLOAD, Role};

/// How long a client has to send CONNECT once connected (and, on WebSocket, upgraded).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest packet a client may send: a largest payload with the largest topic and packet
/// id. Larger ones are refused from their fixed header, before their bytes are read.
const MAX_CLIENT_PACKET: usize = MAX_PAYLOAD + 2 + 65_535 + 2;

/// The largest packet the broker sends (its own limit is lower); only a bound for framing.
const MAX_BROKER_PACKET: usize = 16 << 20;

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

    // The broker behind has no authentication of its own: the secrets stay here.
    connect.client_id = upstream_id;
    connect.login = None;
    let mut upstream = TcpStream::connect(shared.upstream).await?;
    upstream.set_nodelay(true)?;
    let mut encoded = BytesMut::new();
    connect.write(&mut encoded)?;
    upstream.write_all(&encoded).await?;
    let (broker_rx, mut broker_tx) = upstream.into_split();

    let thinned = Thinned::default();
    let (inject_tx, inject_rx) = mpsc::unbounded_channel();
    let outbound = client_to_broker(
        &mut client_rx,
        &mut broker_tx,
        buffer,
        &role,
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

/// The client's packets, checked and forwarded to the broker, until the client closes or breaks
/// the policy.
async fn client_to_broker<R, W>(
    client_rx: &mut R,
    broker_tx: &mut W,
    mut buffer: BytesMut,
    role: &Role,
    thinned: &Thinned,
    inject: &mpsc::UnboundedSender<Bytes>,
) -> Result<(), Ended>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut out = BytesMut::new();
    while let Some((header, bytes)) = next_packet(client_rx, &mut buffer, MAX_CLIENT_PACKET).await?
    {
        match header.packet_type()? {
            PacketType::Connect => return Err(Ended::SecondConnect),
            PacketType::Publish => {
                let mut publish = Publish::read(header, bytes.clone())?;
                match policy::publish_topic(role, &publish).map_err(Ended::Forbidden)? {
                    None => out.extend_from_slice(&bytes),
                    Some(topic) => {
                        publish.topic = topic;
                        publish.write(&mut out)?;
                    }
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
                    let _ = inject.send(suback.freeze());
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
    mut inject: mpsc::UnboundedReceiver<Bytes>,
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
            Some(suback) = inject.recv() => {
                client_tx.write_all(&suback).await?;
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
