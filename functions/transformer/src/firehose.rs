//! Firehose transformation events, decoded record by record.

use std::fmt;

use aws_lambda_events::event::firehose::{KinesisFirehoseEvent, KinesisFirehoseEventRecord};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::DateTime;
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
            let arrival_ms = match exact_arrival(record) {
                Ok(arrival_ms) => arrival_ms,
                Err(error) => {
                    self.undecodable.push(salvage(position, record, error));
                    continue;
                }
            };
            match serde_json::from_str::<KinesisFirehoseEventRecord>(record.get()) {
                Ok(mut record) => {
                    let exact = arrival_ms.and_then(|ms| i64::try_from(ms).ok());
                    if let Some(at) = exact.and_then(DateTime::from_timestamp_millis) {
                        record.approximate_arrival_timestamp.0 = at;
                    }
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

/// A record's two arrival timestamps, as their JSON text.
#[derive(Deserialize)]
struct Timestamps<'a> {
    #[serde(rename = "approximateArrivalTimestamp", borrow, default)]
    arrival: Option<&'a RawValue>,
    #[serde(rename = "kinesisRecordMetadata", borrow, default)]
    metadata: Option<MetadataTimestamp<'a>>,
}

#[derive(Deserialize)]
struct MetadataTimestamp<'a> {
    #[serde(rename = "approximateArrivalTimestamp", borrow, default)]
    arrival: Option<&'a RawValue>,
}

/// The record's `approximateArrivalTimestamp` in exact milliseconds, where it is a whole number
/// (`None` where it is not a number at all: decoding the record reports that).
///
/// `aws_lambda_events` reads these timestamps through floating-point seconds and truncates: about
/// half of all values come out a millisecond early (1073742001123 as …122), where the fast path
/// reads them exactly; and it panics on a fraction (an `assert_eq!` in its deserializer). So the
/// typed path reads the value itself, and a timestamp with a fraction (in the record or its
/// Kinesis metadata) makes the record undecodable rather than the invocation a crash.
fn exact_arrival(record: &RawValue) -> Result<Option<u64>, String> {
    let Ok(timestamps) = serde_json::from_str::<Timestamps<'_>>(record.get()) else {
        return Ok(None);
    };
    if let Some(nested) = timestamps.metadata.and_then(|m| m.arrival) {
        whole_ms(nested)
            .map_err(|e| format!("kinesisRecordMetadata.approximateArrivalTimestamp {e}"))?;
    }
    timestamps
        .arrival
        .map_or(Ok(None), whole_ms)
        .map_err(|e| format!("approximateArrivalTimestamp {e}"))
}

/// A timestamp written as a number or a string of one: its whole milliseconds, `None` if it is
/// neither, an error if it has a fraction.
fn whole_ms(raw: &RawValue) -> Result<Option<u64>, String> {
    let number = match serde_json::from_str::<serde_json::Value>(raw.get()) {
        Ok(serde_json::Value::Number(number)) => number,
        Ok(serde_json::Value::String(text)) => match text.parse::<serde_json::Number>() {
            Ok(number) => number,
            Err(_) => return Ok(None),
        },
        _ => return Ok(None),
    };
    if let Some(ms) = number.as_u64() {
        return Ok(Some(ms));
    }
    match number.as_f64() {
        Some(ms) if ms.fract() != 0.0 => Err(format!("{}: not whole milliseconds", raw.get())),
        // A whole number written as a float (1.6e12) or a negative one: as the library reads it.
        _ => Ok(None),
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
