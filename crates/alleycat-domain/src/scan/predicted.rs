//! The predicted-order scanner: a message written as its line begins, read straight into its
//! [`Reading`].

use std::borrow::Cow;

use super::Scanner;
use super::line::{LINE_KEYS, LinePrefix, line_position};
use super::set;
use crate::message::{
    Event, MAX_CADENCE, MAX_CLASS_ID, MAX_DEVICE_TIMESTAMP_MS, MAX_IDENTITY_BYTES, MAX_NAME_CHARS,
    MAX_RACER_ID, MAX_RESISTANCE, MIN_DEVICE_TIMESTAMP_MS, MessageText, Reading,
};
use crate::output::Output;
use crate::race::RaceClock;

/// Scans a message written exactly as its line begins (see [`LinePrefix`]: compact, the line's
/// key order, numbers in the line's form) whose fields are all valid, straight into its
/// [`Reading`]: each expected key is compared as one fixed-length array with the punctuation
/// around it, integers are read eight digits at a time, and nothing goes through `Option`s or a
/// [`crate::DeviceMessage`]. Devices (the simulator, the bikes) send this shape.
///
/// Anything else (another order, whitespace before `resistance`, another number form, a value
/// out of range, a repeated key) returns `None`, and the message takes [`super::scan`] and
/// [`crate::DeviceMessage::validate`]: they give the same reading and prefix for every message this
/// answers (a property test holds them together), and the precise rejection for the others.
pub(crate) fn scan_line(bytes: &[u8], clock: RaceClock) -> Option<(Reading<'_>, MessageText<'_>)> {
    let mut s = Scanner { bytes, pos: 0 };
    let uuid = if s.expect(b"{\"uuid\":\"").is_some() {
        let uuid = s.string_body()?;
        s.expect(b",\"event\":\"")?;
        Some(uuid)
    } else {
        s.expect(b"{\"event\":\"")?;
        None
    };
    let event = if s.expect(b"update\"").is_some() {
        Event::Update
    } else {
        s.expect(b"final\"")?;
        Event::Final
    };
    s.expect(b",\"deviceTimestamp\":")?;
    let device_timestamp = s.plain_integer(16)?;
    s.expect(b",\"second\":")?;
    let second = u16::try_from(s.plain_integer(5)?).ok()?;
    s.expect(b",\"raceId\":")?;
    let race_id = s.plain_integer(16)?;
    s.expect(b",\"name\":\"")?;
    let name = s.string_body()?;
    s.expect(b",\"racerId\":")?;
    let racer_id = u32::try_from(s.plain_integer(7)?).ok()?;
    s.expect(b",\"classId\":")?;
    let class_id = u8::try_from(s.plain_integer(1)?).ok()?;
    s.expect(b",\"cadence\":")?;
    let (cadence_decimal, cadence_whole) = s.line_number()?;
    let cadence = cadence_decimal.to_f64();
    let cadence_end = s.pos;
    s.expect(b",\"resistance\":")?;
    let (resistance_decimal, resistance_whole) = s.line_number()?;
    let resistance = resistance_decimal.to_f64();
    let resistance_end = s.pos;
    let (identity_id, arrived_at) = line_tail(&mut s)?;

    // `DeviceMessage::validate`'s rules; a message that breaks one gets its rejection there.
    let valid = (MIN_DEVICE_TIMESTAMP_MS.cast_unsigned()..=MAX_DEVICE_TIMESTAMP_MS.cast_unsigned())
        .contains(&device_timestamp)
        && (1..=clock.race_seconds).contains(&second)
        && race_id > 0
        && u64::from(racer_id) <= MAX_RACER_ID.cast_unsigned()
        && (1..=MAX_CLASS_ID.cast_unsigned()).contains(&u64::from(class_id))
        && cadence <= MAX_CADENCE
        && resistance <= MAX_RESISTANCE
        && name.len() <= MAX_NAME_CHARS
        && identity_id.is_none_or(|id| (1..=MAX_IDENTITY_BYTES).contains(&id.len()));
    if !valid {
        return None;
    }
    // Built where it is returned: a `Reading` is large, and moving it cost calls to `memmove`.
    let prefix = LinePrefix {
        cadence_end,
        cadence_whole,
        resistance_end,
        resistance_whole,
    };
    Some((
        Reading {
            uuid: uuid.map(Cow::Borrowed),
            event,
            device_timestamp,
            second,
            race_id,
            name: Cow::Borrowed(name),
            racer_id,
            class_id,
            cadence,
            resistance,
            output: Output::from_decimal_effort(cadence_decimal, resistance_decimal),
            identity_id: identity_id.map(Cow::Borrowed),
            arrived_at: arrived_at.and_then(|ms| u64::try_from(ms).ok()),
        },
        MessageText {
            bytes,
            prefix: Some(prefix),
        },
    ))
}

/// What follows `resistance` in [`scan_line`], up to the end of the input: `identityId` and
/// `arrivedAt` (each at most once), and fields the line does not keep (scalars only). A field of
/// the line again is a duplicate, which serde_json rejects.
fn line_tail<'a>(s: &mut Scanner<'a>) -> Option<(Option<&'a str>, Option<i64>)> {
    let mut identity_id: Option<Option<&str>> = None;
    let mut arrived_at: Option<Option<i64>> = None;
    s.skip_ws();
    while s.peek()? == b',' {
        s.pos += 1;
        let key = s.key()?;
        s.eat(b':')?;
        s.skip_ws();
        match key {
            b"identityId" => set(&mut identity_id, s.string_or_null()?)?,
            b"arrivedAt" => set(&mut arrived_at, s.integer_or_null()?)?,
            _ if line_position(key) < LINE_KEYS => return None,
            _ => s.skip_scalar()?,
        }
        s.skip_ws();
    }
    s.eat(b'}')?;
    s.skip_ws();
    (s.pos == s.bytes.len()).then_some((identity_id.flatten(), arrived_at.flatten()))
}
