//! MQTT: publishes each message to `alleycat-publish` with QoS 1, as a bike does, and counts a
//! record sent when the broker's PUBACK arrives.
//!
//! The client is a small one of its own (rumqttc's codec, not its event loop), because the sink
//! must know exactly which messages were acknowledged. A broker that restarts comes back without
//! the session: rumqttc then discards the publishes it had not had acknowledged, and it never
//! says which message a PUBACK's packet id was. Here the sink keeps every unacknowledged publish
//! by its packet id until its PUBACK arrives; after any reconnection it sends all of them again
//! (with the DUP flag), oldest first, before anything new. So `retried` counts real resends,
//! `sent` each message once (at its first PUBACK), and `lost` only what never was acknowledged
//! (still unacknowledged when the drain timeout ran out, or stranded by a fatal error). A
//! message whose PUBACK the crash swallowed is sent twice: at least once, as MQTT promises, and
//! consumers deduplicate by `uuid`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alleycat_domain::views::PUBLISH_TOPIC;
use alleycat_ports::RetryPolicy;
use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{Connect, ConnectReturnCode, Disconnect, Packet, PingReq, Publish};
use rumqttc::mqttbytes::{Error as MqttError, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Mutex, Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Fatal, Sink};
use crate::race::Batch;
use crate::stats::Stats;

/// Publishes sent and not yet acknowledged, at most (the broker's PUBACKs pace the sink).
const WINDOW: usize = 500;

/// The keep-alive asked for; a PINGREQ goes out every third of it.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// How long connecting (TCP, CONNECT, CONNACK) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest packet read from the broker (PUBACKs and PINGRESPs are 2 to 4 bytes).
const MAX_PACKET: usize = 1 << 20;

/// How to reach the broker and how long to wait for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttSinkConfig {
    /// `mqtt://host:port` (or `tcp://`); the port defaults to 1883.
    pub url: String,
    /// The MQTT client id.
    pub client_id: String,
    /// User name and password, if the broker wants them (alleycat-local's gate does, to
    /// publish).
    pub credentials: Option<(String, String)>,
    /// How long `finish` waits for the last PUBACKs before counting the rest lost.
    pub drain_timeout: Duration,
    /// Reconnection backoff; `max_attempts` failed connection attempts in a row end the run.
    pub policy: RetryPolicy,
}

/// Splits `mqtt://host:port` into host and port.
pub fn parse_url(url: &str) -> Result<(String, u16), Fatal> {
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .ok_or_else(|| {
            Fatal(format!(
                "--url {url}: only plain MQTT over TCP is supported, as mqtt://host:port"
            ))
        })?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        // [::1]:1883
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| Fatal(format!("--url {url}: unclosed [")))?;
        (host, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(Fatal(format!("--url {url}: no host")));
    }
    let port = match port {
        Some(port) => port
            .parse()
            .map_err(|_| Fatal(format!("--url {url}: bad port {port:?}")))?,
        None => 1883,
    };
    Ok((host.to_owned(), port))
}

#[derive(Default)]
struct Shared {
    published: AtomicU64,
    acked: AtomicU64,
    fatal: Mutex<Option<Fatal>>,
    changed: Notify,
}

/// The MQTT target.
pub struct MqttSink {
    /// Messages for the connection's task, in order.
    queue: mpsc::Sender<Vec<u8>>,
    driver: JoinHandle<()>,
    shared: Arc<Shared>,
    stats: Arc<Stats>,
    drain_timeout: Duration,
}

/// One publish sent and not yet acknowledged.
struct Unacked {
    publish: Publish,
    /// When it was first sent (its latency runs from there).
    first_sent: Instant,
    /// Its place in the order of first sending, for resending oldest first.
    order: u64,
}

/// Why a connection ended.
enum Ended {
    /// Every message was acknowledged and the sink is finishing: DISCONNECT was sent.
    Finished,
    /// The connection failed: reconnect and resend.
    Failed(String),
}

/// The connection's task: the broker's address and credentials, and what is in flight.
struct Connection {
    config: MqttSinkConfig,
    host: String,
    port: u16,
    unacked: BTreeMap<u16, Unacked>,
    last_pkid: u16,
    sent_order: u64,
    shared: Arc<Shared>,
    stats: Arc<Stats>,
}

impl MqttSink {
    /// Connects to the broker (failing at once if it cannot) and starts the connection's task.
    pub async fn connect(config: MqttSinkConfig, stats: Arc<Stats>) -> Result<Self, Fatal> {
        let (host, port) = parse_url(&config.url)?;
        let shared = Arc::new(Shared::default());
        let connection = Connection {
            config: config.clone(),
            host,
            port,
            unacked: BTreeMap::new(),
            last_pkid: 0,
            sent_order: 0,
            shared: Arc::clone(&shared),
            stats: Arc::clone(&stats),
        };
        let stream = connection.open().await.map_err(|e| {
            Fatal(format!(
                "connecting to the MQTT broker at {}: {e}",
                config.url
            ))
        })?;
        let (queue, queued) = mpsc::channel(WINDOW);
        let driver = tokio::spawn(connection.run(stream, queued));
        Ok(Self {
            queue,
            driver,
            shared,
            stats,
            drain_timeout: config.drain_timeout,
        })
    }

    async fn fatal(&self) -> Option<Fatal> {
        self.shared.fatal.lock().await.clone()
    }
}

impl Connection {
    /// Opens a connection: TCP, CONNECT (a clean session: the sink resends on its own), and a
    /// successful CONNACK.
    async fn open(&self) -> Result<TcpStream, String> {
        let open = async {
            let mut stream = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let mut connect = Connect::new(self.config.client_id.clone());
            connect.keep_alive = u16::try_from(KEEP_ALIVE.as_secs()).unwrap_or(u16::MAX);
            connect.clean_session = true;
            if let Some((username, password)) = &self.config.credentials {
                connect.set_login(username.as_str(), password.as_str());
            }
            let mut out = BytesMut::new();
            connect.write(&mut out).map_err(|e| e.to_string())?;
            stream.write_all(&out).await.map_err(|e| e.to_string())?;
            let mut buffer = BytesMut::with_capacity(64);
            match read_packet(&mut stream, &mut buffer).await? {
                Packet::ConnAck(ack) if ack.code == ConnectReturnCode::Success => Ok(stream),
                Packet::ConnAck(ack) => Err(format!("refused: {:?}", ack.code)),
                other => Err(format!("answered CONNECT with {other:?}")),
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT, open)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))
    }

    /// Serves connections until the sink finishes, reconnecting with backoff after a failure
    /// and resending what was not acknowledged; a run of failed attempts as long as the policy
    /// allows ends it with a fatal error.
    async fn run(mut self, stream: TcpStream, mut queued: mpsc::Receiver<Vec<u8>>) {
        let mut stream = Some(stream);
        let mut failures = 0;
        loop {
            let connected = match stream.take() {
                Some(connected) => Ok(connected),
                None => self.open().await,
            };
            let error = match connected {
                Ok(connected) => match self.serve(connected, &mut queued).await {
                    Ended::Finished => return,
                    Ended::Failed(error) => {
                        // A connection that worked resets the count of failed attempts.
                        failures = 0;
                        error
                    }
                },
                Err(error) => error,
            };
            Stats::add(&self.stats.request_errors, 1);
            failures += 1;
            if failures >= self.config.policy.max_attempts.max(1) {
                *self.shared.fatal.lock().await = Some(Fatal(format!(
                    "lost the MQTT connection ({failures} failed attempts): {error}"
                )));
                self.shared.changed.notify_waiters();
                return;
            }
            tokio::time::sleep(self.config.policy.backoff(failures - 1)).await;
        }
    }

    /// One connection: resends everything unacknowledged, then sends queued messages while
    /// fewer than [`WINDOW`] are unacknowledged, counting PUBACKs, until it fails or the queue
    /// is closed and everything acknowledged.
    async fn serve(&mut self, stream: TcpStream, queued: &mut mpsc::Receiver<Vec<u8>>) -> Ended {
        let (mut rx, mut tx) = stream.into_split();
        let mut out = BytesMut::new();
        let mut resend: Vec<&mut Unacked> = self.unacked.values_mut().collect();
        resend.sort_by_key(|unacked| unacked.order);
        for unacked in resend {
            unacked.publish.dup = true;
            if let Err(error) = unacked.publish.write(&mut out) {
                return Ended::Failed(error.to_string());
            }
            Stats::add(&self.stats.retried, 1);
        }
        if let Err(error) = tx.write_all(&out).await {
            return Ended::Failed(error.to_string());
        }
        out.clear();
        let mut buffer = BytesMut::with_capacity(4096);
        let mut ping = tokio::time::interval(KEEP_ALIVE / 3);
        ping.reset();
        let mut open = true;
        loop {
            if !open && self.unacked.is_empty() {
                let _ = Disconnect.write(&mut out);
                let _ = tx.write_all(&out).await;
                let _ = tx.shutdown().await;
                return Ended::Finished;
            }
            let room = self.unacked.len() < WINDOW;
            tokio::select! {
                read = rx.read_buf(&mut buffer) => {
                    match read {
                        Ok(0) => return Ended::Failed("the broker closed the connection".into()),
                        Ok(_) => {
                            if let Err(error) = self.take_acks(&mut buffer) {
                                return Ended::Failed(error);
                            }
                        }
                        Err(error) => return Ended::Failed(error.to_string()),
                    }
                }
                message = queued.recv(), if open && room => {
                    let Some(message) = message else {
                        open = false;
                        continue;
                    };
                    if let Err(error) = self.send(message, &mut out, queued, &mut tx).await {
                        return Ended::Failed(error);
                    }
                }
                _ = ping.tick() => {
                    let _ = PingReq.write(&mut out);
                    if let Err(error) = tx.write_all(&out).await {
                        return Ended::Failed(error.to_string());
                    }
                    out.clear();
                }
            }
        }
    }

    /// Sends `first` and whatever else is queued already, up to the window, in one write.
    async fn send(
        &mut self,
        first: Vec<u8>,
        out: &mut BytesMut,
        queued: &mut mpsc::Receiver<Vec<u8>>,
        tx: &mut OwnedWriteHalf,
    ) -> Result<(), String> {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            let pkid = self.next_pkid();
            let mut publish = Publish::new(PUBLISH_TOPIC, QoS::AtLeastOnce, message);
            publish.pkid = pkid;
            publish.write(out).map_err(|e| e.to_string())?;
            self.sent_order += 1;
            self.unacked.insert(
                pkid,
                Unacked {
                    publish,
                    first_sent: Instant::now(),
                    order: self.sent_order,
                },
            );
            if self.unacked.len() < WINDOW {
                next = queued.try_recv().ok();
            }
        }
        let written = tx.write_all(out).await.map_err(|e| e.to_string());
        out.clear();
        written
    }

    /// The next packet id no unacknowledged publish holds.
    fn next_pkid(&mut self) -> u16 {
        loop {
            self.last_pkid = self.last_pkid.checked_add(1).unwrap_or(1);
            if !self.unacked.contains_key(&self.last_pkid) {
                return self.last_pkid;
            }
        }
    }

    /// Counts the PUBACKs among the whole packets in `buffer`.
    fn take_acks(&mut self, buffer: &mut BytesMut) -> Result<(), String> {
        loop {
            match Packet::read(buffer, MAX_PACKET) {
                Ok(Packet::PubAck(ack)) => {
                    // A PUBACK of a publish already acknowledged (a resend's) counts nothing.
                    if let Some(unacked) = self.unacked.remove(&ack.pkid) {
                        self.stats.record_latency(unacked.first_sent.elapsed());
                        Stats::add(&self.stats.sent, 1);
                        self.shared.acked.fetch_add(1, Ordering::Relaxed);
                        self.shared.changed.notify_waiters();
                    }
                }
                Ok(_) => {}
                Err(MqttError::InsufficientBytes(_)) => return Ok(()),
                Err(error) => return Err(format!("malformed MQTT from the broker: {error}")),
            }
        }
    }
}

/// Reads one whole packet from `stream` (for the CONNACK).
async fn read_packet(stream: &mut TcpStream, buffer: &mut BytesMut) -> Result<Packet, String> {
    loop {
        match Packet::read(buffer, MAX_PACKET) {
            Ok(packet) => return Ok(packet),
            Err(MqttError::InsufficientBytes(_)) => {}
            Err(error) => return Err(format!("malformed MQTT from the broker: {error}")),
        }
        if stream.read_buf(buffer).await.map_err(|e| e.to_string())? == 0 {
            return Err("the broker closed the connection".to_owned());
        }
    }
}

impl Sink for MqttSink {
    async fn submit(&mut self, batch: &Batch, range: Range<usize>) -> Result<(), Fatal> {
        for i in range {
            let payload = batch.message(i).to_vec();
            if self.queue.send(payload).await.is_err() {
                Stats::add(&self.stats.lost, 1);
                return Err(self
                    .fatal()
                    .await
                    .unwrap_or_else(|| Fatal("the MQTT connection's task stopped".to_owned())));
            }
            self.shared.published.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn finish(self) -> Result<(), Fatal> {
        let Self {
            queue,
            driver,
            shared,
            stats,
            drain_timeout,
        } = self;
        // No more messages: the task disconnects once everything is acknowledged.
        drop(queue);
        let deadline = Instant::now() + drain_timeout;
        loop {
            let changed = shared.changed.notified();
            let published = shared.published.load(Ordering::Relaxed);
            if shared.acked.load(Ordering::Relaxed) >= published
                || shared.fatal.lock().await.is_some()
                || driver.is_finished()
            {
                break;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                break;
            }
        }
        let published = shared.published.load(Ordering::Relaxed);
        let acked = shared.acked.load(Ordering::Relaxed);
        Stats::add(&stats.lost, published.saturating_sub(acked));
        let fatal = shared.fatal.lock().await.clone();
        if !driver.is_finished() {
            let abort = driver.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), driver)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        fatal.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://127.0.0.1:1883").unwrap(),
            ("127.0.0.1".to_owned(), 1883)
        );
        assert_eq!(
            parse_url("tcp://broker").unwrap(),
            ("broker".to_owned(), 1883)
        );
        assert_eq!(
            parse_url("mqtt://[::1]:1884/").unwrap(),
            ("::1".to_owned(), 1884)
        );
        assert!(parse_url("mqtts://broker:8883").is_err());
        assert!(parse_url("mqtt://:1883").is_err());
        assert!(parse_url("mqtt://host:port").is_err());
    }
}
