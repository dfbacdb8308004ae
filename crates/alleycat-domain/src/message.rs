//! The device message: one second of one racer's ride, parsed without copying and validated
//! against every rule of DESIGN section 2.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::output::Output;
use crate::race::{RaceClock, RaceKey};
use crate::scan::LinePrefix;

mod digits;

pub(crate) use digits::{write_fixed, write_ten_thousandths, write_u64};

/// Highest valid class id (classes are 1–6).
pub const MAX_CLASS_ID: i64 = 6;
/// Highest valid racer id.
pub const MAX_RACER_ID: i64 = 1_000_000;
/// Longest valid racer name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Highest valid cadence (rpm).
pub const MAX_CADENCE: f64 = 250.0;
/// Highest valid resistance (percent).
pub const MAX_RESISTANCE: f64 = 100.0;
/// Earliest accepted device timestamp: 2001-09-09, the first 13-digit epoch millisecond. Anything
/// smaller is almost certainly a clock in seconds, which would file the ride under a wrong race.
pub const MIN_DEVICE_TIMESTAMP_MS: i64 = 1_000_000_000_000;
/// Latest accepted device timestamp: 2100-01-01.
pub const MAX_DEVICE_TIMESTAMP_MS: i64 = 4_102_444_800_000;
/// Longest accepted `identityId`, in bytes: a Cognito identity id is about 46; the bound keeps a
/// stamped identity from bloating every archived line.
pub const MAX_IDENTITY_BYTES: usize = 128;

/// Whether this second is a racer's last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// An ordinary second of a race.
    Update,
    /// The racer's last second: its output is the racer's final result.
    Final,
}

/// A device message exactly as sent, before validation.
///
/// Strings borrow from the input unless they contain escapes, and numbers are parsed wide so that
/// an out-of-range value gets its own precise [`Rejection`] instead of a generic type error.
/// Unknown fields (the IoT rule's `ingestTimestamp`, the transformer's `output`) are ignored.
/// Two fields are not the device's own: `identityId`, stamped by the IoT rule with the MQTT
/// publisher's identity (absent for records a trusted producer put to Kinesis), and `arrivedAt`,
/// which the transformer writes into archived lines (see [`Reading::arrived_at`]).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceMessage<'a> {
    /// Optional message id chosen by the device.
    #[serde(borrow, default)]
    pub uuid: Option<Cow<'a, str>>,
    /// `update` or `final`.
    pub event: Event,
    /// When the device sent it, epoch milliseconds.
    pub device_timestamp: i64,
    /// Second of the racer's race, from 1.
    pub second: i64,
    /// The race window the racer joined.
    pub race_id: i64,
    /// The racer's display name.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// The racer.
    pub racer_id: i64,
    /// The class raced.
    pub class_id: i64,
    /// Pedal cadence.
    pub cadence: f64,
    /// Bike resistance.
    pub resistance: f64,
    /// The identity that published the record over MQTT, stamped by the IoT rule.
    #[serde(borrow, default)]
    pub identity_id: Option<Cow<'a, str>>,
    /// When the platform received the record, epoch milliseconds (archived lines only).
    #[serde(default)]
    pub arrived_at: Option<i64>,
}

/// Why a record was rejected: one variant per rule, so that counts and logs can say exactly which
/// rule a device broke.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Rejection {
    /// The bytes are not UTF-8.
    #[error("record is not valid UTF-8")]
    NotUtf8,
    /// The bytes are not one JSON value (syntax error or truncated input).
    #[error("record is not JSON: {0}")]
    NotJson(String),
    /// Valid JSON of the wrong shape: a missing field, a wrong type, an unknown `event`.
    #[error("record does not match the message schema: {0}")]
    Schema(String),
    /// `classId` outside 1–6.
    #[error("classId {0} is outside 1-{MAX_CLASS_ID}")]
    ClassId(i64),
    /// `second` outside 1–race length.
    #[error("second {second} is outside 1-{race_seconds}")]
    Second {
        /// The second sent.
        second: i64,
        /// The configured race length.
        race_seconds: u16,
    },
    /// `racerId` outside 0–1,000,000.
    #[error("racerId {0} is outside 0-{MAX_RACER_ID}")]
    RacerId(i64),
    /// `raceId` not positive.
    #[error("raceId {0} is not positive")]
    RaceId(i64),
    /// `cadence` outside 0–250.
    #[error("cadence {0} is outside 0-{MAX_CADENCE}")]
    Cadence(f64),
    /// `resistance` outside 0–100.
    #[error("resistance {0} is outside 0-{MAX_RESISTANCE}")]
    Resistance(f64),
    /// `name` longer than 64 characters.
    #[error("name has {0} characters, more than {MAX_NAME_CHARS}")]
    NameTooLong(usize),
    /// `deviceTimestamp` not an epoch millisecond between 2001 and 2100.
    #[error("deviceTimestamp {0} is not epoch milliseconds between 2001 and 2100")]
    DeviceTimestamp(i64),
    /// `identityId` empty or longer than [`MAX_IDENTITY_BYTES`].
    #[error("identityId has {0} bytes, not 1-{MAX_IDENTITY_BYTES}")]
    IdentityId(usize),
    /// `raceId` is not the start window of the ride (`deviceTimestamp − (second − 1) s`).
    #[error("raceId {race_id} is not the race of the ride's start (race {start_race_id})")]
    RaceMismatch {
        /// The race id sent.
        race_id: u64,
        /// The race the ride's start falls in.
        start_race_id: u64,
    },
    /// The ride starts further in the future of the record's arrival than clocks can disagree.
    #[error("the ride starts at {start_ms}, after its record arrived at {arrival_ms}")]
    Future {
        /// The ride's start, epoch milliseconds.
        start_ms: u64,
        /// When the platform received the record.
        arrival_ms: u64,
    },
    /// The record arrived after its race stopped receiving data.
    #[error("race {race_id} was closed when the record arrived at {arrival_ms}")]
    Closed {
        /// The race.
        race_id: u64,
        /// When the platform received the record.
        arrival_ms: u64,
    },
    /// The record was published by an identity that does not hold its racer.
    #[error("racer {racer_id} is not held by the identity that published the record")]
    NotHolder {
        /// The racer.
        racer_id: u32,
    },
    /// The race already has as many racers as a race may have.
    #[error("racer {racer_id} would exceed the race's cap of {cap} racers")]
    OverCap {
        /// The racer refused.
        racer_id: u32,
        /// The cap.
        cap: usize,
    },
}

impl Rejection {
    /// A stable, low-cardinality name for the rule, for metric dimensions and log fields.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::NotUtf8 => "not_utf8",
            Self::NotJson(_) => "not_json",
            Self::Schema(_) => "schema",
            Self::ClassId(_) => "class_id",
            Self::Second { .. } => "second",
            Self::RacerId(_) => "racer_id",
            Self::RaceId(_) => "race_id",
            Self::Cadence(_) => "cadence",
            Self::Resistance(_) => "resistance",
            Self::NameTooLong(_) => "name",
            Self::DeviceTimestamp(_) => "device_timestamp",
            Self::IdentityId(_) => "identity_id",
            Self::RaceMismatch { .. } => "race_mismatch",
            Self::Future { .. } => "future",
            Self::Closed { .. } => "closed",
            Self::NotHolder { .. } => "not_holder",
            Self::OverCap { .. } => "over_cap",
        }
    }

    /// Every [`Rejection::rule`] name, for declaring one counter per rule.
    pub const RULES: [&'static str; 17] = [
        "not_utf8",
        "not_json",
        "schema",
        "class_id",
        "second",
        "racer_id",
        "race_id",
        "cadence",
        "resistance",
        "name",
        "device_timestamp",
        "identity_id",
        "race_mismatch",
        "future",
        "closed",
        "not_holder",
        "over_cap",
    ];

    fn from_json_error(bytes: &[u8], error: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        match error.classify() {
            Category::Data => Self::Schema(error.to_string()),
            Category::Syntax | Category::Eof | Category::Io => {
                // serde_json reports bad UTF-8 as a syntax error; name it precisely.
                if std::str::from_utf8(bytes).is_err() {
                    Self::NotUtf8
                } else {
                    Self::NotJson(error.to_string())
                }
            }
        }
    }
}

impl<'a> DeviceMessage<'a> {
    /// Parses one message, borrowing its strings from `bytes`.
    ///
    /// Messages of the usual flat shape take a single-pass scanner; anything else (and every
    /// invalid message) goes through serde_json, which gives the same result and the precise
    /// error.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Rejection> {
        Self::parse_with_prefix(bytes).map(|(message, _)| message)
    }

    /// [`Self::parse`], with where the text is already its line's (fast path only).
    fn parse_with_prefix(bytes: &'a [u8]) -> Result<(Self, Option<LinePrefix>), Rejection> {
        if let Some(scanned) = crate::scan::scan(bytes) {
            return Ok(scanned);
        }
        Ok((Self::parse_with_serde(bytes)?, None))
    }

    /// The fast path alone: `None` where it defers to serde_json. Exposed only so tests can check
    /// which messages it covers.
    #[doc(hidden)]
    pub fn parse_fast_path(bytes: &'a [u8]) -> Option<Self> {
        crate::scan::scan(bytes).map(|(message, _)| message)
    }

    /// The reference parser: serde_json alone. Public so tests and benchmarks can compare the fast
    /// path against it.
    pub fn parse_with_serde(bytes: &'a [u8]) -> Result<Self, Rejection> {
        serde_json::from_slice(bytes).map_err(|e| Rejection::from_json_error(bytes, &e))
    }

    /// Checks every rule of DESIGN section 2 and computes the output.
    pub fn validate(self, clock: RaceClock) -> Result<Reading<'a>, Rejection> {
        let class_id = u8::try_from(self.class_id)
            .ok()
            .filter(|c| (1..=6).contains(c))
            .ok_or(Rejection::ClassId(self.class_id))?;
        let second = u16::try_from(self.second)
            .ok()
            .filter(|s| (1..=clock.race_seconds).contains(s))
            .ok_or(Rejection::Second {
                second: self.second,
                race_seconds: clock.race_seconds,
            })?;
        let racer_id = u32::try_from(self.racer_id)
            .ok()
            .filter(|_| self.racer_id <= MAX_RACER_ID)
            .ok_or(Rejection::RacerId(self.racer_id))?;
        let race_id = u64::try_from(self.race_id)
            .ok()
            .filter(|&r| r > 0)
            .ok_or(Rejection::RaceId(self.race_id))?;
        if !(0.0..=MAX_CADENCE).contains(&self.cadence) {
            return Err(Rejection::Cadence(self.cadence));
        }
        if !(0.0..=MAX_RESISTANCE).contains(&self.resistance) {
            return Err(Rejection::Resistance(self.resistance));
        }
        // Byte length bounds character count, so the count is only taken for long names.
        if self.name.len() > MAX_NAME_CHARS {
            let chars = self.name.chars().count();
            if chars > MAX_NAME_CHARS {
                return Err(Rejection::NameTooLong(chars));
            }
        }
        let device_timestamp = u64::try_from(self.device_timestamp)
            .ok()
            .filter(|_| {
                (MIN_DEVICE_TIMESTAMP_MS..=MAX_DEVICE_TIMESTAMP_MS).contains(&self.device_timestamp)
            })
            .ok_or(Rejection::DeviceTimestamp(self.device_timestamp))?;
        if let Some(identity) = &self.identity_id
            && !(1..=MAX_IDENTITY_BYTES).contains(&identity.len())
        {
            return Err(Rejection::IdentityId(identity.len()));
        }
        Ok(Reading {
            uuid: self.uuid,
            event: self.event,
            device_timestamp,
            second,
            race_id,
            name: self.name,
            racer_id,
            class_id,
            cadence: self.cadence,
            resistance: self.resistance,
            output: Output::from_effort(self.cadence, self.resistance),
            identity_id: self.identity_id,
            arrived_at: self.arrived_at.and_then(|ms| u64::try_from(ms).ok()),
        })
    }
}

/// A message's text as [`Reading::from_json_keeping_text`] read it: the bytes, and how much of
/// them is already the line's text.
#[derive(Clone, Copy, Debug)]
pub struct MessageText<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) prefix: Option<LinePrefix>,
}

impl MessageText<'_> {
    /// Whether the line copies the message's text up to `resistance` rather than writing it.
    pub fn is_copied(&self) -> bool {
        self.prefix.is_some()
    }

    /// How many of the message's first bytes [`Reading::write_json_line_from`] copies unchanged
    /// to the start of the line (up to the first `.0` it adds): what an encoder of the line may
    /// take from an encoding of the message. 0 when the line is written field by field.
    pub fn copied_len(&self) -> usize {
        match self.prefix {
            None => 0,
            Some(prefix) if prefix.cadence_whole => prefix.cadence_end,
            Some(prefix) => prefix.resistance_end,
        }
    }
}

/// A validated message with its output: the unit every function works on.
///
/// Serializes (camelCase, compact) as the original message plus `output`, which is exactly the
/// line the Firehose transformer delivers.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reading<'a> {
    /// Optional message id chosen by the device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<Cow<'a, str>>,
    /// `update` or `final`.
    pub event: Event,
    /// When the device sent it, epoch milliseconds.
    pub device_timestamp: u64,
    /// Second of the racer's race, 1–race length.
    pub second: u16,
    /// The race window the racer joined.
    pub race_id: u64,
    /// The racer's display name, at most 64 characters.
    pub name: Cow<'a, str>,
    /// The racer, 0–1,000,000.
    pub racer_id: u32,
    /// The class, 1–6.
    pub class_id: u8,
    /// Pedal cadence, 0–250.
    pub cadence: f64,
    /// Bike resistance, 0–100.
    pub resistance: f64,
    /// The score of this second.
    pub output: Output,
    /// The MQTT publisher's identity, stamped by the IoT rule; `None` for a trusted producer's
    /// record. Such a record moves a view only while the identity holds the racer
    /// ([`crate::trust::check_holder`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_id: Option<Cow<'a, str>>,
    /// When the platform received the record (Kinesis's `approximateArrivalTimestamp`), epoch
    /// milliseconds: set by each consumer from the envelope, never taken from a device, and
    /// archived by the transformer so a rebuild can apply the same rules later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrived_at: Option<u64>,
}

impl<'a> Reading<'a> {
    /// Parses and validates one record: the whole per-record hot path. A message in its line's
    /// form with valid fields (what devices send) is read straight into the reading; any other
    /// goes through [`DeviceMessage::parse`] and [`DeviceMessage::validate`], to the same result.
    pub fn from_json(bytes: &'a [u8], clock: RaceClock) -> Result<Self, Rejection> {
        if let Some((reading, _)) = crate::scan::scan_line(bytes, clock) {
            return Ok(reading);
        }
        DeviceMessage::parse(bytes)?.validate(clock)
    }

    /// [`Self::from_json`], keeping the message's text so that [`Self::write_json_line_from`] can
    /// copy the part of it that is already the line's: the transformer's hot path.
    pub fn from_json_keeping_text(
        bytes: &'a [u8],
        clock: RaceClock,
    ) -> Result<(Self, MessageText<'a>), Rejection> {
        if let Some(read) = crate::scan::scan_line(bytes, clock) {
            return Ok(read);
        }
        let (message, prefix) = DeviceMessage::parse_with_prefix(bytes)?;
        Ok((message.validate(clock)?, MessageText { bytes, prefix }))
    }

    /// The race this reading belongs to.
    pub fn race(&self) -> RaceKey {
        RaceKey {
            class_id: self.class_id,
            race_id: self.race_id,
        }
    }

    /// Appends this reading as one compact JSON line (`\n`-terminated) to `out`.
    ///
    /// Byte for byte what `serde_json` writes for this struct (a test holds it to that), but
    /// written directly: this is the transformer's per-record hot path. The output is written
    /// from its fixed-point integer ([`Output::write_json`]), and cadence and resistance, which
    /// devices send with a decimal or two, without the float formatter.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        out.reserve(240 + self.name.len());
        out.push(b'{');
        if let Some(uuid) = &self.uuid {
            out.extend_from_slice(b"\"uuid\":");
            write_json_string(out, uuid);
            out.push(b',');
        }
        out.extend_from_slice(match self.event {
            Event::Update => b"\"event\":\"update\",\"deviceTimestamp\":",
            Event::Final => b"\"event\":\"final\",\"deviceTimestamp\":",
        });
        write_u64(out, self.device_timestamp);
        out.extend_from_slice(b",\"second\":");
        write_u64(out, u64::from(self.second));
        out.extend_from_slice(b",\"raceId\":");
        write_u64(out, self.race_id);
        out.extend_from_slice(b",\"name\":");
        write_json_string(out, &self.name);
        out.extend_from_slice(b",\"racerId\":");
        write_u64(out, u64::from(self.racer_id));
        out.extend_from_slice(b",\"classId\":");
        write_u64(out, u64::from(self.class_id));
        out.extend_from_slice(b",\"cadence\":");
        write_json_f64(out, self.cadence);
        out.extend_from_slice(b",\"resistance\":");
        write_json_f64(out, self.resistance);
        self.write_json_line_rest(out);
    }

    /// [`Self::write_json_line`] for a reading parsed from `text` ([`Self::from_json_keeping_text`],
    /// its fields up to `resistance` unchanged since): the same bytes, but where the message was
    /// written as the line writes it (the usual case: a device's compact message, keys in the
    /// line's order), its text up to `resistance` is copied instead of formatted field by field.
    pub fn write_json_line_from(&self, text: &MessageText<'_>, out: &mut Vec<u8>) {
        let Some(prefix) = text.prefix else {
            return self.write_json_line(out);
        };
        let bytes = text.bytes;
        out.reserve(prefix.resistance_end + 128);
        out.extend_from_slice(&bytes[..prefix.cadence_end]);
        if prefix.cadence_whole {
            out.extend_from_slice(b".0");
        }
        out.extend_from_slice(&bytes[prefix.cadence_end..prefix.resistance_end]);
        if prefix.resistance_whole {
            out.extend_from_slice(b".0");
        }
        self.write_json_line_rest(out);
    }

    /// The line after `resistance`.
    fn write_json_line_rest(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b",\"output\":");
        self.output.write_json(out);
        if let Some(identity) = &self.identity_id {
            out.extend_from_slice(b",\"identityId\":");
            write_json_string(out, identity);
        }
        if let Some(arrived_at) = self.arrived_at {
            out.extend_from_slice(b",\"arrivedAt\":");
            write_u64(out, arrived_at);
        }
        out.extend_from_slice(b"}\n");
    }

    /// A copy that owns its strings, for keeping past the input buffer.
    pub fn into_owned(self) -> Reading<'static> {
        Reading {
            uuid: self.uuid.map(|u| Cow::Owned(u.into_owned())),
            event: self.event,
            device_timestamp: self.device_timestamp,
            second: self.second,
            race_id: self.race_id,
            name: Cow::Owned(self.name.into_owned()),
            racer_id: self.racer_id,
            class_id: self.class_id,
            cadence: self.cadence,
            resistance: self.resistance,
            output: self.output,
            identity_id: self.identity_id.map(|i| Cow::Owned(i.into_owned())),
            arrived_at: self.arrived_at,
        }
    }
}

/// Writes `text` as a JSON string: copied as is unless it needs escaping, which serde_json does.
fn write_json_string(out: &mut Vec<u8>, text: &str) {
    // No early exit (hence `|`, not `||`), so the check runs over whole vectors: names and uuids
    // almost never need escaping, and are short.
    #[allow(clippy::needless_bitwise_bool)]
    let escapes = text.bytes().fold(false, |any, b| {
        any | (b == b'"') | (b == b'\\') | (b < 0x20)
    });
    if escapes {
        serde_json::to_writer(&mut *out, text).expect("a string always serializes");
    } else {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

/// Exact powers of ten as doubles, for [`write_json_f64`] and a decimal's double
/// ([`crate::output::Decimal::to_f64`]).
pub(crate) const POW10: [f64; 6] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5];

/// Writes a finite `value` as ryu does (the shortest text that reads back as the same double:
/// `74.2`, `74.0`, `0.05`; serde_json's text for every cadence and resistance), quickly for what
/// devices send: non-negative numbers below
/// 10^9 with at most 5 decimals. Anything else goes to ryu.
///
/// Why it is the same text: the smallest `k` for which the decimal `m / 10^k`, `m` the nearest
/// integer to `value × 10^k`, reads back as `value` gives the fewest significant digits; reading
/// back is one correctly rounded division (`m` < 2^53 and `10^k` are exact doubles); with at most
/// 14 significant digits that decimal is the only one of its length that reads back as `value`,
/// so it is ryu's; and ryu writes such numbers in plain notation (at most 4 zeros after the
/// point, fewer than 17 digits before it), `.0` after whole ones.
fn write_json_f64(out: &mut Vec<u8>, value: f64) {
    if value.is_sign_positive() && value < 1e9 {
        for (k, &scale) in POW10.iter().enumerate() {
            let scaled = (value * scale).round();
            // Exactly equal: the decimal reads back as this very double.
            #[allow(clippy::float_cmp)]
            let reads_back = scaled / scale == value;
            if reads_back {
                // Below 10^14 and whole: the cast is exact.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let scaled = scaled as u64;
                write_fixed(out, scaled, k);
                return;
            }
        }
    }
    out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
}

impl fmt::Display for Reading<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "racer {} class {} race {} second {} output {}",
            self.racer_id, self.class_id, self.race_id, self.second, self.output
        )
    }
}

#[cfg(test)]
mod tests;
