//! Firehose transformation events, decoded record by record.

use std::fmt;

use aws_lambda_events::event::firehose::{KinesisFirehoseEvent, KinesisFirehoseEventRecord};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A record the event carried that is not a valid Firehose record (its `data` is not base64, a
/// field is missing or of the wrong type). Firehose never sends one, but a corrupted or
/// hand-made event must not fail its whole batch: the record still needs an answer under its
/// `recordId`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UndecodableRecord {
    /// Position in the event's `records`.
    pub position: usize,
    /// Its `recordId`, when that much could be read.
    pub record_id: Option<String>,
    /// Its data as received: the decoded bytes when `data` is valid base64, else the text of the
    /// `data` field itself (or of the whole record when not even that could be read).
    pub data: Vec<u8>,
    /// Why it could not be decoded.
    pub error: String,
}

/// A Firehose transformation event, decoded record by record: the counterpart of
/// `alleycat_lambda::LenientKinesisEvent`.
///
/// Deserializing the real [`KinesisFirehoseEvent`] fails the whole invocation on one record with
/// bad base64, and Firehose then retries and finally fails the entire batch. This type reads
/// `records` as raw JSON and decodes each on its own, keeping the good ones in a genuine
/// [`KinesisFirehoseEvent`] and the rest in [`LenientFirehoseEvent::undecodable`]. Deserialize it
/// with `serde_json::from_slice` (as the Lambda runtime does): records are borrowed from the input
/// while decoding.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LenientFirehoseEvent {
    /// The records that decoded, in order, with the event's other fields.
    pub event: KinesisFirehoseEvent,
    /// Position in the original `records` of each record of `event`.
    pub positions: Vec<usize>,
    /// Records that did not decode, in order.
    pub undecodable: Vec<UndecodableRecord>,
}

impl From<KinesisFirehoseEvent> for LenientFirehoseEvent {
    fn from(event: KinesisFirehoseEvent) -> Self {
        Self {
            positions: (0..event.records.len()).collect(),
            event,
            undecodable: Vec::new(),
        }
    }
}

impl LenientFirehoseEvent {
    /// Records in the event, decodable or not.
    pub fn len(&self) -> usize {
        self.event.records.len() + self.undecodable.len()
    }

    /// Whether the event has no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn decode_records(&mut self, raw: &[&RawValue]) {
        self.event.records.reserve(raw.len());
        for (position, record) in raw.iter().enumerate() {
            match serde_json::from_str::<KinesisFirehoseEventRecord>(record.get()) {
                Ok(record) => {
                    self.event.records.push(record);
                    self.positions.push(position);
                }
                Err(error) => self
                    .undecodable
                    .push(salvage(position, record, error.to_string())),
            }
        }
    }
}

/// As much of a bad record as can be read: what its answer needs.
#[derive(Deserialize)]
struct PartialRecord<'a> {
    #[serde(rename = "recordId", default)]
    record_id: Option<String>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

fn salvage(position: usize, record: &RawValue, error: String) -> UndecodableRecord {
    let (record_id, data) = match serde_json::from_str::<PartialRecord<'_>>(record.get()) {
        Ok(partial) => {
            let data = partial.data.map_or_else(Vec::new, |data| {
                match serde_json::from_str::<String>(data.get()) {
                    Ok(text) => STANDARD.decode(&text).unwrap_or_else(|_| text.into_bytes()),
                    Err(_) => data.get().as_bytes().to_vec(),
                }
            });
            (partial.record_id, data)
        }
        Err(_) => (None, record.get().as_bytes().to_vec()),
    };
    UndecodableRecord {
        position,
        record_id,
        data,
        error,
    }
}

impl<'de> Deserialize<'de> for LenientFirehoseEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EventVisitor;

        impl<'de> Visitor<'de> for EventVisitor {
            type Value = LenientFirehoseEvent;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Firehose transformation event")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut records: Option<Vec<&'de RawValue>> = None;
                let mut rest = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "records" {
                        records = Some(map.next_value()?);
                    } else {
                        rest.insert(key, map.next_value()?);
                    }
                }
                let records = records.ok_or_else(|| de::Error::missing_field("records"))?;
                // The event's other fields, read by the genuine type.
                rest.insert("records".to_owned(), serde_json::Value::Array(Vec::new()));
                let event = serde_json::from_value(serde_json::Value::Object(rest))
                    .map_err(de::Error::custom)?;
                let mut out = LenientFirehoseEvent {
                    event,
                    ..LenientFirehoseEvent::default()
                };
                out.decode_records(&records);
                Ok(out)
            }
        }

        deserializer.deserialize_map(EventVisitor)
    }
}
