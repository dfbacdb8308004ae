//! MQTT: publishes each message to `alleycat-publish` with QoS 1, as a bike does, and counts a
//! record sent when the broker's PUBACK arrives.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alleycat_domain::views::PUBLISH_TOPIC;
use alleycat_ports::RetryPolicy;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Fatal, Sink};
use crate::race::Batch;
use crate::stats::Stats;

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
    client: AsyncClient,
    driver: JoinHandle<()>,
    shared: Arc<Shared>,
    stats: Arc<Stats>,
    drain_timeout: Duration,
}

impl MqttSink {
    /// Connects to the broker (failing at once if it cannot) and starts the event loop.
    pub async fn connect(config: MqttSinkConfig, stats: Arc<Stats>) -> Result<Self, Fatal> {
        let (host, port) = parse_url(&config.url)?;
        let mut options = MqttOptions::new(config.client_id.clone(), host, port);
        options
            .set_keep_alive(Duration::from_secs(30))
            // Keep the session: QoS 1 messages unacknowledged at a disconnection are sent again.
            .set_clean_session(false)
            .set_inflight(500)
            .set_max_packet_size(1 << 20, 1 << 20);
        if let Some((username, password)) = &config.credentials {
            options.set_credentials(username.as_str(), password.as_str());
        }
        let (client, mut events) = AsyncClient::new(options, 1024);
        loop {
            match tokio::time::timeout(Duration::from_secs(10), events.poll()).await {
                Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => break,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(Fatal(format!(
                        "connecting to the MQTT broker at {}: {e}",
                        config.url
                    )));
                }
                Err(_) => {
                    return Err(Fatal(format!(
                        "connecting to the MQTT broker at {}: no answer within 10 s",
                        config.url
                    )));
                }
            }
        }
        let shared = Arc::new(Shared::default());
        let driver = tokio::spawn(drive(
            events,
            Arc::clone(&shared),
            Arc::clone(&stats),
            config.policy,
        ));
        Ok(Self {
            client,
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

/// Polls the event loop: notes when each publish goes out and counts its PUBACK; reconnects with
/// backoff after a connection error.
async fn drive(mut events: EventLoop, shared: Arc<Shared>, stats: Arc<Stats>, policy: RetryPolicy) {
    let mut sent_at: HashMap<u16, Instant> = HashMap::new();
    let mut failures = 0;
    loop {
        match events.poll().await {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                if sent_at.insert(pkid, Instant::now()).is_some() {
                    // Sent again after a reconnection.
                    Stats::add(&stats.retried, 1);
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                if let Some(at) = sent_at.remove(&ack.pkid) {
                    stats.record_latency(at.elapsed());
                    Stats::add(&stats.sent, 1);
                    shared.acked.fetch_add(1, Ordering::Relaxed);
                    shared.changed.notify_waiters();
                }
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => failures = 0,
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(error) => {
                Stats::add(&stats.request_errors, 1);
                failures += 1;
                if failures >= policy.max_attempts.max(1) {
                    *shared.fatal.lock().await = Some(Fatal(format!(
                        "lost the MQTT connection ({failures} failed attempts): {error}"
                    )));
                    shared.changed.notify_waiters();
                    return;
                }
                tokio::time::sleep(policy.backoff(failures - 1)).await;
            }
        }
    }
}

impl Sink for MqttSink {
    async fn submit(&mut self, batch: &Batch, range: Range<usize>) -> Result<(), Fatal> {
        for i in range {
            let payload = batch.message(i).to_vec();
            if self
                .client
                .publish(PUBLISH_TOPIC, QoS::AtLeastOnce, false, payload)
                .await
                .is_err()
            {
                Stats::add(&self.stats.lost, 1);
                return Err(self
                    .fatal()
                    .await
                    .unwrap_or_else(|| Fatal("the MQTT event loop stopped".to_owned())));
            }
            self.shared.published.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn finish(self) -> Result<(), Fatal> {
        let deadline = Instant::now() + self.drain_timeout;
        loop {
            let changed = self.shared.changed.notified();
            let published = self.shared.published.load(Ordering::Relaxed);
            if self.shared.acked.load(Ordering::Relaxed) >= published
                || self.fatal().await.is_some()
                || self.driver.is_finished()
            {
                break;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                break;
            }
        }
        let published = self.shared.published.load(Ordering::Relaxed);
        let acked = self.shared.acked.load(Ordering::Relaxed);
        Stats::add(&self.stats.lost, published.saturating_sub(acked));
        let fatal = self.fatal().await;
        let Self { client, driver, .. } = self;
        if !driver.is_finished() {
            // A polite DISCONNECT, then stop polling.
            let _ = client.disconnect().await;
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
