//! The IoT rule: `SELECT *, principal() AS identityId, timestamp() AS ingestTimestamp FROM
//! 'alleycat-publish'`, into the stream with partition key `${racerId}`.
//!
//! The [gate](crate::gate) hands every allowed publish to `alleycat-publish` straight to the rule
//! ([`Ingest::submit`]), with who published it: an identity's message is stamped with its
//! `identityId`, the operator's is not (a record without it came from the trusted producer, as
//! on AWS a record an IAM principal put to Kinesis). Publishes no longer pass through rumqttd:
//! rumqttd acknowledges a QoS 1 publish when it enters its in-memory log, before any subscriber
//! has taken it, and its per-filter log drops the oldest messages of a subscriber that falls
//! behind; either way an acknowledged message could be lost. Here a QoS 1 publish is
//! acknowledged ([`Submitted::acked`]) only once the transaction that appended it to the stream
//! has committed: at least once, from the bike to the stream.
//!
//! One thread, the appender, takes whatever is queued (up to [`MAX_BATCH`] messages) and appends
//! it in one transaction: group commit, so that a thousand bikes cost one commit, not a thousand,
//! and the queue drains faster the longer it gets. The queue is bounded ([`QUEUE`]): when it is
//! full, the gate stops reading from its clients, and TCP pushes back to the bikes.
//!
//! One deviation, on purpose: IoT Core sends a message without a usable `racerId` (garbage
//! bytes, a JSON array, a racer id that is an object) to the rule's error action, because the
//! partition key comes out empty. Here such messages go to the stream under the partition key
//! [`FALLBACK_KEY`], so that the race aggregator rejects and counts them with every other bad
//! record, in one place, instead of a second error path only the embedded stack would have.

use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::LocalError;
use crate::sources::Invocations;
use crate::stream::LocalStream;

/// Partition key of messages without a usable `racerId`.
pub const FALLBACK_KEY: &str = "-";

/// Most messages appended in one transaction.
pub const MAX_BATCH: usize = 2000;

/// Messages queued for the appender before submitters wait (about a fifth of a second at
/// 10,000 messages a second, and at most 128 KB each: bounded memory).
pub const QUEUE: usize = 2000;

/// The partition key of a device message: its `racerId` as text (`8` for `"racerId":8` or
/// `"racerId":"8"`), as IoT Core's `${racerId}` substitutes it.
pub fn partition_key(payload: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Key {
        #[serde(rename = "racerId")]
        racer_id: Option<Value>,
    }
    match serde_json::from_slice::<Key>(payload)
        .ok()
        .and_then(|key| key.racer_id)
    {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => s,
        Some(Value::Bool(b)) => b.to_string(),
        _ => FALLBACK_KEY.to_owned(),
    }
}

/// Told whether a message was appended: `true` once its transaction committed, `false` if the
/// append failed (nothing of its batch was appended). Runs on the appender's thread: it must
/// not block.
pub type Acked = Box<dyn FnOnce(bool) + Send>;

/// One publish to `alleycat-publish`, for the rule.
pub struct Submitted {
    /// Who published it: an identity's id, stamped into the record; `None` for the operator.
    pub identity: Option<String>,
    /// The payload, as published.
    pub payload: Bytes,
    /// When the gate received it, epoch milliseconds (the rule's `timestamp()`).
    pub received_ms: u64,
    /// Called after the append (QoS 1); `None` for a message nobody waits for (QoS 0).
    pub acked: Option<Acked>,
}

impl std::fmt::Debug for Submitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submitted")
            .field("identity", &self.identity)
            .field("bytes", &self.payload.len())
            .field("received_ms", &self.received_ms)
            .field("acked", &self.acked.is_some())
            .finish()
    }
}

/// The rule's queue: cheap to clone, one per gate.
#[derive(Clone, Debug)]
pub struct Ingest {
    queue: mpsc::Sender<Submitted>,
}

impl Ingest {
    /// Starts the appender on its own thread, appending to `stream` and counting in
    /// `invocations` (`ingest`: `Messages`, `Failed`). It stops once every [`Ingest`] is
    /// dropped and the queue is empty.
    pub fn start(
        stream: Arc<LocalStream>,
        invocations: Arc<Invocations>,
    ) -> Result<Self, LocalError> {
        let (queue, mut queued) = mpsc::channel::<Submitted>(QUEUE);
        std::thread::Builder::new()
            .name("alleycat-ingest".to_owned())
            .spawn(move || {
                let mut batch = Vec::with_capacity(MAX_BATCH);
                while let Some(first) = queued.blocking_recv() {
                    batch.push(first);
                    while batch.len() < MAX_BATCH {
                        match queued.try_recv() {
                            Ok(next) => batch.push(next),
                            Err(_) => break,
                        }
                    }
                    append(&stream, &invocations, std::mem::take(&mut batch));
                }
            })
            .map_err(|e| LocalError::Broker(format!("starting the ingest thread: {e}")))?;
        Ok(Self { queue })
    }

    /// Queues a message, waiting while the queue is full; `Err` gives it back if the appender
    /// has stopped.
    pub async fn submit(&self, message: Submitted) -> Result<(), Submitted> {
        self.queue.send(message).await.map_err(|e| e.0)
    }
}

/// Appends a batch to `stream` in one transaction, enriched as the rule does, then tells each
/// waiting publisher the outcome. A failed append is logged and counted, and every publisher of
/// the batch is told, so that their connections close and the bikes send the messages again.
pub fn append(stream: &LocalStream, invocations: &Invocations, batch: Vec<Submitted>) {
    let mut acks = Vec::new();
    let records: Vec<(String, Vec<u8>)> = batch
        .into_iter()
        .map(|message| {
            if let Some(meter) = invocations.meter() {
                meter.iot_in(message.payload.len());
            }
            acks.extend(message.acked);
            let payload = enrich(
                &message.payload,
                message.identity.as_deref(),
                message.received_ms,
            );
            (partition_key(&payload), payload)
        })
        .collect();
    let n = records.len() as u64;
    let appended = match stream.append(&records, crate::now_ms()) {
        Ok(_) => {
            invocations.add("ingest", "Messages", n);
            true
        }
        Err(error) => {
            invocations.add("ingest", "Failed", n);
            tracing::error!(%error, "the ingest rule could not append {n} messages: none acknowledged");
            false
        }
    };
    for acked in acks {
        acked(appended);
    }
}

/// The rule's projection, `SELECT *, principal() AS identityId, timestamp() AS
/// ingestTimestamp`: adds `identityId` (an identity's message; the operator's has none) and
/// `ingestTimestamp` to a JSON object payload, keeping every other field as it is. Any other
/// payload (not JSON, or JSON but not an object) comes back unchanged, for the stream's
/// consumers to reject and count.
///
/// The fields are written in before the closing `}`, leaving the rest of the bytes untouched;
/// only a payload that already has one of the two fields is re-serialized, so the rule's values
/// replace the device's as `SELECT` does. (A field spelled with escapes, `"identity\u0049d"`,
/// is not seen here and ends up as a duplicate key, which the domain's parser rejects: an
/// identity can never be forged either way.)
pub fn enrich(payload: &[u8], identity_id: Option<&str>, ingest_ms: u64) -> Vec<u8> {
    let is_object = payload
        .iter()
        .find(|b| !is_json_whitespace(**b))
        .is_some_and(|b| *b == b'{');
    if !is_object || serde_json::from_slice::<serde::de::IgnoredAny>(payload).is_err() {
        return payload.to_vec();
    }
    if contains(payload, br#""identityId""#) || contains(payload, br#""ingestTimestamp""#) {
        return reserialized(payload, identity_id, ingest_ms);
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
    if let Some(id) = identity_id {
        out.extend_from_slice(br#""identityId":"#);
        serde_json::to_writer(&mut out, id).expect("a string serializes into a Vec");
        out.push(b',');
    }
    out.extend_from_slice(br#""ingestTimestamp":"#);
    out.extend_from_slice(ingest_ms.to_string().as_bytes());
    out.extend_from_slice(&payload[close..]);
    out
}

/// [`enrich`] for a payload that already has `identityId` or `ingestTimestamp`: the rule's
/// values replace them (the operator's own `identityId`, if it sends one, stays: it is
/// trusted).
fn reserialized(payload: &[u8], identity_id: Option<&str>, ingest_ms: u64) -> Vec<u8> {
    let Ok(mut object) =
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(payload)
    else {
        return payload.to_vec();
    };
    if let Some(id) = identity_id {
        object.insert("identityId".to_owned(), id.into());
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

#[cfg(test)]
mod tests;
