//! Kinesis events in, validated readings out.

use std::fmt;

use alleycat_domain::{Plausibility, Reading};
use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_lambda_events::time_window::TimeWindowProperties;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::metrics::{BYTES_IN, Metrics, RECORDS_IN};
use crate::rejections::{ENVELOPE, RejectionLog};

/// A record the event carried that is not even a Kinesis record (for example, data that is not
/// base64). Lambda never sends one, but a hand-made or corrupted event must not fail its batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Undecodable {
    /// Position in the event's `Records`.
    pub position: usize,
    /// Its sequence number, when that much could be read.
    pub sequence_number: Option<String>,
    /// Why it could not be decoded.
    pub error: String,
}

/// A Kinesis event (plain, or a tumbling-window event), decoded record by record.
///
/// Deserializing the real `KinesisEvent` fails the whole event on one bad record; this type reads
/// `Records` as raw JSON and decodes each record on its own, keeping the good ones in a genuine
/// [`KinesisEvent`] and the bad ones in [`LenientKinesisEvent::undecodable`]. Deserialize it with
/// `serde_json::from_slice` (as the Lambda runtime does): records are borrowed from the input
/// while decoding.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LenientKinesisEvent {
    /// The records that decoded, in order.
    pub event: KinesisEvent,
    /// Position in the original `Records` of each record of `event`.
    pub positions: Vec<usize>,
    /// When Kinesis received each record of `event`, epoch milliseconds, read from the raw
    /// record: `aws_lambda_events` 1.x misreads fractional seconds whose shortest decimal form
    /// has fewer than three digits (`….05` s becomes 5 ms), which would move a record's arrival
    /// up to 0.9 s before it truly arrived, before the claim its rider had just taken.
    pub arrivals: Vec<u64>,
    /// Records that did not decode.
    pub undecodable: Vec<Undecodable>,
    /// The tumbling window's properties, when the event source uses one.
    pub window: Option<TimeWindowProperties>,
}

impl From<KinesisEvent> for LenientKinesisEvent {
    fn from(event: KinesisEvent) -> Self {
        Self {
            positions: (0..event.records.len()).collect(),
            arrivals: event
                .records
                .iter()
                .map(|record| {
                    let ms = record
                        .kinesis
                        .approximate_arrival_timestamp
                        .0
                        .timestamp_millis();
                    u64::try_from(ms).unwrap_or(0)
                })
                .collect(),
            event,
            undecodable: Vec::new(),
            window: None,
        }
    }
}

/// A record's `approximateArrivalTimestamp` alone: epoch seconds with a fraction, as a number
/// (Kinesis) or a string.
#[derive(Deserialize)]
struct ArrivalOnly {
    kinesis: ArrivalInner,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArrivalInner {
    approximate_arrival_timestamp: SecondsValue,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SecondsValue {
    Number(f64),
    Text(String),
}

impl ArrivalOnly {
    /// The arrival in epoch milliseconds, rounded to the millisecond the seconds stand for.
    fn read(raw: &str) -> Option<u64> {
        let seconds = match serde_json::from_str::<Self>(raw)
            .ok()?
            .kinesis
            .approximate_arrival_timestamp
        {
            SecondsValue::Number(seconds) => seconds,
            SecondsValue::Text(text) => text.trim().parse().ok()?,
        };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        (seconds.is_finite() && seconds >= 0.0).then(|| (seconds * 1000.0).round() as u64)
    }
}

#[derive(Deserialize)]
struct SequenceOnly {
    kinesis: Option<SequenceInner>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SequenceInner {
    sequence_number: Option<String>,
}

impl<'de> Deserialize<'de> for LenientKinesisEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EventVisitor;

        impl<'de> Visitor<'de> for EventVisitor {
            type Value = LenientKinesisEvent;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Kinesis event")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = LenientKinesisEvent::default();
                let mut rest = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "Records" {
                        let raw: Vec<&'de RawValue> = map.next_value()?;
                        out.decode_records(&raw);
                    } else {
                        rest.insert(key, map.next_value()?);
                    }
                }
                if rest.contains_key("window") {
                    out.window = Some(
                        serde_json::from_value(serde_json::Value::Object(rest))
                            .map_err(de::Error::custom)?,
                    );
                }
                Ok(out)
            }
        }

        deserializer.deserialize_map(EventVisitor)
    }
}

impl LenientKinesisEvent {
    fn decode_records(&mut self, raw: &[&RawValue]) {
        self.event.records.reserve(raw.len());
        self.arrivals.reserve(raw.len());
        for (position, record) in raw.iter().enumerate() {
            match serde_json::from_str::<KinesisEventRecord>(record.get()) {
                Ok(decoded) => {
                    let typed = decoded.kinesis.approximate_arrival_timestamp.0;
                    let arrival = ArrivalOnly::read(record.get())
                        .unwrap_or_else(|| u64::try_from(typed.timestamp_millis()).unwrap_or(0));
                    self.event.records.push(decoded);
                    self.positions.push(position);
                    self.arrivals.push(arrival);
                }
                Err(error) => self.undecodable.push(Undecodable {
                    position,
                    sequence_number: serde_json::from_str::<SequenceOnly>(record.get())
                        .ok()
                        .and_then(|s| s.kinesis)
                        .and_then(|k| k.sequence_number),
                    error: error.to_string(),
                }),
            }
        }
    }

    /// Records in the event, decodable or not.
    pub fn len(&self) -> usize {
        self.event.records.len() + self.undecodable.len()
    }

    /// Whether the event has no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Validates every record into a reading and admits it under the plausibility `rules`, with
    /// the record's `approximateArrivalTimestamp` as its arrival; counts (`RecordsIn`, `BytesIn`
    /// of the records' data, `Rejected` and `Rejected.<rule>`) and logs rejections with their
    /// sequence numbers. Rejected records are dropped, never retried: they would be rejected
    /// again. Whether each identity holds its racer is the caller's next step
    /// ([`crate::claims::admit_holders`]), since it needs the table.
    pub fn readings(
        &self,
        rules: Plausibility,
        metrics: &mut Metrics,
        rejections: &mut RejectionLog,
    ) -> Vec<KinesisReading<'_>> {
        metrics.add(RECORDS_IN, self.len() as u64);
        metrics.add(
            BYTES_IN,
            self.event
                .records
                .iter()
                .map(|record| record.kinesis.data.0.len() as u64)
                .sum(),
        );
        for bad in &self.undecodable {
            let record = bad.sequence_number.as_deref().unwrap_or("?");
            rejections.reject(record, ENVELOPE, &bad.error);
        }
        let mut readings = Vec::with_capacity(self.event.records.len());
        let records = self.event.records.iter().zip(&self.positions);
        for ((record, &position), &arrival_ms) in records.zip(&self.arrivals) {
            let sequence_number = record.kinesis.sequence_number.as_str();
            let admitted =
                Reading::from_json(&record.kinesis.data.0, rules.clock).and_then(|mut reading| {
                    rules.admit(&mut reading, arrival_ms)?;
                    Ok(reading)
                });
            match admitted {
                Ok(reading) => readings.push(KinesisReading {
                    position,
                    sequence_number,
                    reading,
                }),
                Err(rejection) => rejections.reject_for(sequence_number, &rejection),
            }
        }
        readings
    }

    /// The sequence number of the record at `position` of the original event.
    pub fn sequence_number_at(&self, position: usize) -> Option<&str> {
        self.positions
            .iter()
            .position(|&p| p == position)
            .map(|i| self.event.records[i].kinesis.sequence_number.as_str())
    }
}

/// One valid record of a Kinesis batch: its reading, and where it was in the event.
#[derive(Clone, Debug, PartialEq)]
pub struct KinesisReading<'e> {
    /// Position in the event's `Records`.
    pub position: usize,
    /// Its Kinesis sequence number, for partial batch responses.
    pub sequence_number: &'e str,
    /// The validated message.
    pub reading: Reading<'e>,
}
