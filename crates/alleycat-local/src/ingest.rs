//! The IoT rule: `SELECT *, principal() AS identityId, timestamp() AS ingestTimestamp FROM
//! 'alleycat-publish'`, into the stream with partition key `${racerId}`.
//!
//! Who published is known from the topic: the gate forwards an identity's publishes to
//! `alleycat-publish/<identityId>` (a topic no client may publish to itself) and the operator's
//! to `alleycat-publish`, so the rule subscribes to both ([`FILTERS`]) and stamps
//! `identityId` into the former only: a record without it came from the trusted producer, as on
//! AWS a record an IAM principal put to Kinesis.
//!
//! One deviation, on purpose: IoT Core sends a message without a usable `racerId` (garbage
//! bytes, a JSON array, a racer id that is an object) to the rule's error action, because the
//! partition key comes out empty. Here such messages go to the stream under the partition key
//! [`FALLBACK_KEY`], so that the race aggregator rejects and counts them with every other bad
//! record, in one place, instead of a second error path only the embedded stack would have.

use std::sync::Arc;

use alleycat_domain::views::PUBLISH_TOPIC;
use serde::Deserialize;
use serde_json::Value;

use crate::broker::Ingested;
use crate::gate::policy::topic_identity;
use crate::sources::Invocations;
use crate::stream::LocalStream;

/// The rule's subscriptions: the operator's topic and the identities' (see the module's docs).
pub const FILTERS: [&str; 2] = [PUBLISH_TOPIC, "alleycat-publish/+"];

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

/// Appends a batch of messages received on [`FILTERS`] to `stream`, enriched as the rule does. The broker has already acknowledged them (as IoT Core does before its rules run), so a
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
                topic_identity(&message.topic),
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
mod tests {
    use super::*;

    use serde_json::json;

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

    fn enriched(payload: &[u8], identity: Option<&str>) -> Value {
        serde_json::from_slice(&enrich(payload, identity, 1_620_051_628_731)).unwrap()
    }

    #[test]
    fn enrich_adds_the_rules_fields_to_an_object_keeping_the_rest() {
        let payload = br#"{"uuid":"u","racerId":8,"cadence":74.20,"future":[1,{"a":null}]}"#;
        assert_eq!(
            enrich(payload, Some("local:8"), 1_620_051_628_731),
            br#"{"uuid":"u","racerId":8,"cadence":74.20,"future":[1,{"a":null}],"identityId":"local:8","ingestTimestamp":1620051628731}"#
        );
        assert_eq!(
            enrich(payload, None, 7),
            br#"{"uuid":"u","racerId":8,"cadence":74.20,"future":[1,{"a":null}],"ingestTimestamp":7}"#
        );
    }

    #[test]
    fn enrich_handles_whitespace_empty_objects_and_odd_identitys() {
        assert_eq!(
            enriched(b" {\"a\": 1 ,\n \"b\":\"}\" }\r\n", Some("local:8")),
            json!({"a": 1, "b": "}", "identityId": "local:8", "ingestTimestamp": 1_620_051_628_731_u64})
        );
        assert_eq!(enrich(b"{ \n}", None, 5), b"{ \n\"ingestTimestamp\":5}");
        assert_eq!(
            enriched(b"{}", Some(r#"a"quote\and"#)),
            json!({"identityId": r#"a"quote\and"#, "ingestTimestamp": 1_620_051_628_731_u64})
        );
    }

    #[test]
    fn enrich_replaces_fields_the_device_sent() {
        assert_eq!(
            enriched(
                br#"{"identityId":"forged","ingestTimestamp":1,"n":2}"#,
                Some("local:8")
            ),
            json!({"identityId": "local:8", "ingestTimestamp": 1_620_051_628_731_u64, "n": 2})
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
            assert_eq!(enrich(payload, Some("local:8"), 1), payload, "{payload:?}");
        }
    }
}
