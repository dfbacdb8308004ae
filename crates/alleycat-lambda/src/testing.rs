//! Test support shared by the functions' test suites: device messages, the bad inputs every
//! handler must isolate, and Kinesis events built as JSON and decoded by the real
//! [`LenientKinesisEvent`] deserializer, so a test feeds its handler exactly what Lambda would.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::kinesis::LenientKinesisEvent;

/// A device message, valid unless a test breaks it: the one place tests spell the wire format.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// `update` or `final`.
    pub event: &'static str,
    /// Epoch milliseconds.
    pub device_timestamp: i64,
    /// Second of the racer's race.
    pub second: i64,
    /// The race window.
    pub race_id: i64,
    /// Display name.
    pub name: String,
    /// The racer.
    pub racer_id: i64,
    /// The class.
    pub class_id: i64,
    /// Pedal cadence.
    pub cadence: f64,
    /// Bike resistance.
    pub resistance: f64,
    /// The publisher's identity as the IoT rule stamps it; `None` for a trusted producer.
    pub identity_id: Option<String>,
}

impl Message {
    /// Second 1 of `racer_id` in race `race_id` of `class_id`, sent inside the race's window.
    pub fn new(class_id: i64, race_id: i64, racer_id: i64) -> Self {
        Self {
            event: "update",
            device_timestamp: race_id * 300_000 + 1_000,
            second: 1,
            race_id,
            name: format!("Racer {racer_id}"),
            racer_id,
            class_id,
            cadence: 74.2,
            resistance: 74.0,
            identity_id: None,
        }
    }

    /// The same message as published over MQTT by `identity_id` (stamped by the IoT rule).
    #[must_use]
    pub fn published_by(mut self, identity_id: &str) -> Self {
        self.identity_id = Some(identity_id.to_owned());
        self
    }

    /// When the platform receives it unless a test says otherwise: 123 ms after the device sent
    /// it, as in a ride in real time.
    pub fn arrival_ms(&self) -> u64 {
        u64::try_from(self.device_timestamp).unwrap_or(0) + 123
    }

    /// The same message at another second.
    #[must_use]
    pub fn second(mut self, second: i64) -> Self {
        self.device_timestamp += (second - self.second) * 1_000;
        self.second = second;
        self
    }

    /// The same message with another effort; output = `(cadence + 35) × (resistance + 65) / 100`.
    #[must_use]
    pub fn effort(mut self, cadence: f64, resistance: f64) -> Self {
        self.cadence = cadence;
        self.resistance = resistance;
        self
    }

    /// The same message as the racer's `final` second.
    #[must_use]
    pub fn finish(mut self) -> Self {
        self.event = "final";
        self
    }

    /// The same message under another name.
    #[must_use]
    pub fn name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    /// The message as a device sends it: compact JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let mut value = json!({
            "uuid": format!("{}-{}-{}", self.race_id, self.racer_id, self.second),
            "event": self.event,
            "deviceTimestamp": self.device_timestamp,
            "second": self.second,
            "raceId": self.race_id,
            "name": self.name,
            "racerId": self.racer_id,
            "classId": self.class_id,
            "cadence": self.cadence,
            "resistance": self.resistance,
        });
        if let Some(identity) = &self.identity_id {
            value["identityId"] = json!(identity);
        }
        serde_json::to_vec(&value).expect("a message always serializes")
    }
}

/// One record's data for each way a message can be invalid (the envelope's own failure, broken
/// base64, is [`KinesisEventBuilder::raw_record`]): not JSON, a wrong type, a value out of range,
/// a missing field, an oversized name, bytes that are not UTF-8. Labelled for assertion messages.
pub fn bad_messages() -> Vec<(&'static str, Vec<u8>)> {
    let valid = Message::new(3, 5_400_172, 8);
    let without_name = {
        let mut value: serde_json::Value = serde_json::from_slice(&valid.to_json()).unwrap();
        value.as_object_mut().unwrap().remove("name");
        serde_json::to_vec(&value).unwrap()
    };
    let wrong_type = String::from_utf8(valid.to_json())
        .unwrap()
        .replace("\"racerId\":8", "\"racerId\":\"eight\"")
        .into_bytes();
    let mut not_utf8 = valid.clone().name("Ad\u{e9}ll").to_json();
    let at = not_utf8
        .windows(2)
        .position(|w| w == "\u{e9}".as_bytes())
        .unwrap();
    not_utf8.splice(at..at + 2, [0xE9]);
    vec![
        ("not JSON", b"{\"event\":\"update\",".to_vec()),
        ("wrong type", wrong_type),
        ("out of range", valid.clone().effort(300.0, 74.0).to_json()),
        ("missing field", without_name),
        (
            "oversized name",
            valid.clone().name(&"x".repeat(65)).to_json(),
        ),
        ("not UTF-8", not_utf8),
    ]
}

/// When a record arrives if nothing says otherwise: the instant of AWS's sample event.
pub const DEFAULT_ARRIVAL_MS: u64 = 1_620_051_628_707;

/// The sequence number the builder gives the record at `position`: increasing, as on a shard.
pub fn sequence_number(position: usize) -> String {
    format!("49590338271490256608559692538361571095921575989136{position:06}")
}

/// A Kinesis event (optionally a tumbling-window event) built as the JSON Lambda sends.
#[derive(Clone, Debug, Default)]
pub struct KinesisEventBuilder {
    records: Vec<serde_json::Value>,
    window: Option<serde_json::Value>,
}

impl KinesisEventBuilder {
    /// An event with no records.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a record carrying `data` (base64-encoded here, as Kinesis delivers it), with
    /// sequence number [`sequence_number`] of its position, arriving 123 ms after its
    /// `deviceTimestamp` ([`Message::arrival_ms`]), or at [`DEFAULT_ARRIVAL_MS`] if it has none.
    #[must_use]
    pub fn record(self, data: &[u8]) -> Self {
        let arrival = serde_json::from_slice::<serde_json::Value>(data)
            .ok()
            .and_then(|value| value["deviceTimestamp"].as_u64())
            .map_or(DEFAULT_ARRIVAL_MS, |sent| sent + 123);
        self.record_arriving(data, arrival)
    }

    /// Appends a record carrying `data` that Kinesis received at `arrival_ms`.
    #[must_use]
    pub fn record_arriving(self, data: &[u8], arrival_ms: u64) -> Self {
        let encoded = STANDARD.encode(data);
        self.push(&encoded, arrival_ms)
    }

    /// Appends a record whose `data` field is `base64` verbatim (for broken base64).
    #[must_use]
    pub fn raw_record(self, base64: &str) -> Self {
        self.push(base64, DEFAULT_ARRIVAL_MS)
    }

    fn push(mut self, base64: &str, arrival_ms: u64) -> Self {
        let sequence = sequence_number(self.records.len());
        // Seconds with three decimals, as the embedded stack writes them.
        let arrival_seconds = format!("{}.{:03}", arrival_ms / 1000, arrival_ms % 1000);
        self.records.push(json!({
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": "8",
                "sequenceNumber": sequence,
                "data": base64,
                "approximateArrivalTimestamp": arrival_seconds,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": format!("shardId-000000000000:{sequence}"),
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::123456789012:role/alleycat",
            "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/alleycat",
        }));
        self
    }

    /// Appends one record per message.
    #[must_use]
    pub fn messages<'m>(self, messages: impl IntoIterator<Item = &'m Message>) -> Self {
        messages
            .into_iter()
            .fold(self, |event, message| event.record(&message.to_json()))
    }

    /// Makes it a tumbling-window event carrying `state`.
    #[must_use]
    pub fn window(
        mut self,
        state: &HashMap<String, String>,
        is_final: bool,
        terminated_early: bool,
    ) -> Self {
        self.window = Some(json!({
            "window": {"start": "2021-05-03T14:20:00Z", "end": "2021-05-03T14:25:00Z"},
            "state": state,
            "shardId": "shardId-000000000000",
            "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/alleycat",
            "isFinalInvokeForWindow": is_final,
            "isWindowTerminatedEarly": terminated_early,
        }));
        self
    }

    /// The event's JSON.
    pub fn to_json(&self) -> String {
        let mut event = json!({"Records": self.records});
        if let Some(serde_json::Value::Object(window)) = &self.window {
            event
                .as_object_mut()
                .expect("an event is an object")
                .extend(window.clone());
        }
        event.to_string()
    }

    /// The event as the handler receives it, decoded from [`Self::to_json`] like Lambda's.
    pub fn build(&self) -> LenientKinesisEvent {
        serde_json::from_str(&self.to_json()).expect("the builder writes valid events")
    }
}

#[cfg(test)]
mod tests {
    use alleycat_domain::{RaceClock, Reading, Rejection};

    use super::*;

    #[test]
    fn messages_are_valid_and_bad_messages_are_not() {
        let clock = RaceClock::default();
        let message = Message::new(3, 5_400_172, 8).second(13).finish();
        let bytes = message.to_json();
        let reading = Reading::from_json(&bytes, clock).unwrap();
        assert_eq!((reading.second, reading.racer_id), (13, 8));
        let rejections: Vec<_> = bad_messages()
            .iter()
            .map(|(label, data)| {
                Reading::from_json(data, clock)
                    .map(|_| ())
                    .expect_err(label)
                    .rule()
            })
            .collect();
        assert_eq!(
            rejections,
            [
                "not_json", "schema", "cadence", "schema", "name", "not_utf8"
            ]
        );
        assert!(matches!(
            Reading::from_json(&bad_messages()[5].1, clock),
            Err(Rejection::NotUtf8)
        ));
    }

    #[test]
    fn built_events_decode_like_lambda_events() {
        let event = KinesisEventBuilder::new()
            .messages(&[Message::new(3, 5_400_172, 8)])
            .raw_record("!!")
            .window(&HashMap::new(), true, false)
            .build();
        assert_eq!(event.len(), 2);
        assert_eq!(
            event.undecodable[0].sequence_number,
            Some(sequence_number(1))
        );
        assert!(event.window.unwrap().is_final_invoke_for_window);
    }
}
