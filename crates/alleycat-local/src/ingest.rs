//! The IoT rule: `SELECT *, clientid() AS clientId, timestamp() AS ingestTimestamp FROM
//! 'alleycat-publish'`, into the stream with partition key `${racerId}`.
//!
//! One deviation, on purpose: IoT Core sends a message without a usable `racerId` (garbage
//! bytes, a JSON array, a racer id that is an object) to the rule's error action, because the
//! partition key comes out empty. Here such messages go to the stream under the partition key
//! [`FALLBACK_KEY`], so that the race aggregator rejects and counts them with every other bad
//! record, in one place, instead of a second error path only the embedded stack would have.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::broker::{Ingested, enrich};
use crate::sources::Invocations;
use crate::stream::LocalStream;

/// Partition key of messages without a usable `racerId`.
pub const FALLBACK_KEY: &str = "-";

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

/// Appends a batch of messages received on `alleycat-publish` to `stream`, enriched as the rule
/// does. The broker has already acknowledged them (as IoT Core does before its rules run), so a
/// failed append can only be logged and counted.
pub fn ingest(stream: &LocalStream, invocations: &Invocations, batch: Vec<Ingested>) {
    let records: Vec<(String, Vec<u8>)> = batch
        .into_iter()
        .map(|message| {
            if let Some(meter) = invocations.meter() {
                meter.iot_in(message.payload.len());
            }
            let payload = enrich(
                &message.payload,
                message.client_id.as_deref(),
                message.received_ms,
            );
            (partition_key(&payload), payload)
        })
        .collect();
    let n = records.len() as u64;
    match stream.append(&records, crate::now_ms()) {
        Ok(_) => invocations.add("ingest", "Messages", n),
        Err(error) => {
            invocations.add("ingest", "Failed", n);
            tracing::error!(%error, "the ingest rule lost {n} messages: appending to the stream failed");
        }
    }
}

/// The stack's ingest rule, for [`crate::broker::LocalBroker::subscribe_batches`].
pub fn rule(
    stream: Arc<LocalStream>,
    invocations: Arc<Invocations>,
) -> impl FnMut(Vec<Ingested>) + Send + 'static {
    move |batch| ingest(&stream, &invocations, batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_keys_substitute_racer_ids_as_iot_core_does() {
        assert_eq!(partition_key(br#"{"racerId":8,"classId":3}"#), "8");
        assert_eq!(partition_key(br#"{"classId":3,"racerId":"42"}"#), "42");
        for bad in [
            &b"\xff\x00garbage"[..],
            b"[1,2]",
            br#"{"racerId":{"a":1}}"#,
            b"{}",
            br#"{"racerId":""}"#,
        ] {
            assert_eq!(
                partition_key(bad),
                FALLBACK_KEY,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
