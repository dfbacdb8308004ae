//! A single-pass scanner for the common shape of a device message: one flat JSON object, strings
//! without escapes, plain numbers.
//!
//! It is the fast path of [`DeviceMessage::parse`]; it never decides that a message is invalid.
//! Whenever it meets anything it does not handle (an escape, a nested value, a duplicate or
//! missing field, a malformed number), it returns `None` and serde_json parses the message
//! instead, so every rejection and every unusual-but-valid message gets serde_json's exact answer.
//! A property test checks that whenever the scanner answers, serde_json answers the same.
//!
//! Its parts: `words` (string stops and digits, eight bytes at a time, shared with the
//! transformer's envelope scanner), `line` (where a message's text is already its line's) and
//! `predicted` (the predicted-order scanner of messages written as their line begins).

mod line;
mod predicted;
mod words;

use std::borrow::Cow;

use crate::message::{DeviceMessage, Event};
use crate::output::Decimal;

pub(crate) use line::LinePrefix;
use line::LineTracker;
pub(crate) use predicted::scan_line;
pub(crate) use words::POW10_INT;
#[cfg(test)]
use words::find_string_stop;
pub use words::{leading_digits, string_len};

/// Exact powers of ten as doubles.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

enum Number {
    Int(i64),
    Float(f64),
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_ws();
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// The bytes of a string without escapes or control characters, and whether they are ASCII.
    fn raw_string(&mut self) -> Option<(&'a [u8], bool)> {
        self.eat(b'"')?;
        let start = self.pos;
        let (len, ascii) = string_len(&self.bytes[start..])?;
        self.pos = start + len + 1;
        Some((&self.bytes[start..start + len], ascii))
    }

    /// A string without escapes or control characters, borrowed.
    fn string(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.raw_string()?.0).ok()
    }

    /// A string as [`Self::string`], or `null` (the inner `None`; the outer one, as everywhere
    /// here, defers to serde_json).
    #[allow(clippy::option_option)]
    fn string_or_null(&mut self) -> Option<Option<&'a str>> {
        if self.peek()? == b'n' {
            self.literal(b"null").map(|()| None)
        } else {
            self.string().map(Some)
        }
    }

    /// A key, as bytes. Known keys are matched whole against the input (one comparison instead of
    /// a byte loop); other keys are scanned, and only non-ASCII ones need UTF-8 checking.
    fn key(&mut self) -> Option<&'a [u8]> {
        self.skip_ws();
        let rest = self.bytes.get(self.pos..)?;
        let known = match rest.get(1)? {
            b'a' => quoted(rest, b"\"arrivedAt\""),
            b'c' => quoted(rest, b"\"classId\"").or_else(|| quoted(rest, b"\"cadence\"")),
            b'd' => quoted(rest, b"\"deviceTimestamp\""),
            b'e' => quoted(rest, b"\"event\""),
            b'i' => quoted(rest, b"\"identityId\""),
            b'n' => quoted(rest, b"\"name\""),
            b'r' => quoted(rest, b"\"racerId\"")
                .or_else(|| quoted(rest, b"\"raceId\""))
                .or_else(|| quoted(rest, b"\"resistance\"")),
            b's' => quoted(rest, b"\"second\""),
            b'u' => quoted(rest, b"\"uuid\""),
            _ => None,
        };
        if let Some(key) = known {
            self.pos += key.len() + 2;
            return Some(key);
        }
        let (key, ascii) = self.raw_string()?;
        (ascii || std::str::from_utf8(key).is_ok()).then_some(key)
    }

    /// A number that follows JSON's grammar, converted in the same pass. Exotic forms (exponents,
    /// more than 19 digits) are handed to the standard library's correctly rounded parser.
    fn number(&mut self) -> Option<Number> {
        self.skip_ws();
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let mut mantissa = 0u64;
        let mut digits = 0u32;
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => self.digits(&mut mantissa, &mut digits),
            _ => return None,
        }
        let mut fraction_digits = 0u32;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            let before = digits;
            self.digits(&mut mantissa, &mut digits);
            fraction_digits = digits - before;
            if fraction_digits == 0 {
                return None;
            }
        }
        let mut exponent = false;
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            exponent = true;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            let mut ignored = (0, 0);
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits(&mut ignored.0, &mut ignored.1);
        }
        let integer = fraction_digits == 0 && !exponent;
        if digits <= 19 && !exponent {
            if integer {
                if negative && mantissa == 0 {
                    // "-0": an integer 0 but a float -0.0; rare enough to leave to serde_json.
                    return None;
                }
                let value = if negative {
                    0i64.checked_sub_unsigned(mantissa)?
                } else {
                    i64::try_from(mantissa).ok()?
                };
                return Some(Number::Int(value));
            }
            // Clinger's fast path: a mantissa below 2^53 and a power of ten up to 10^22 are
            // both exact doubles, so one division is correctly rounded.
            if mantissa < (1 << 53) && fraction_digits <= 22 {
                #[allow(clippy::cast_precision_loss)]
                let value = mantissa as f64 / POW10[fraction_digits as usize];
                return Some(Number::Float(if negative { -value } else { value }));
            }
        }
        if integer {
            return None;
        }
        // ASCII digits and signs only, so the conversion cannot fail.
        let text = std::str::from_utf8(&self.bytes[start..self.pos]).ok()?;
        let value: f64 = text.parse().ok()?;
        value.is_finite().then_some(Number::Float(value))
    }

    fn digits(&mut self, mantissa: &mut u64, digits: &mut u32) {
        while let Some(byte @ b'0'..=b'9') = self.peek() {
            *mantissa = mantissa
                .wrapping_mul(10)
                .wrapping_add(u64::from(byte - b'0'));
            *digits += 1;
            self.pos += 1;
        }
    }

    fn integer(&mut self) -> Option<i64> {
        match self.number()? {
            Number::Int(value) => Some(value),
            Number::Float(_) => None,
        }
    }

    /// An integer or `null` (the inner `None`).
    #[allow(clippy::option_option)]
    fn integer_or_null(&mut self) -> Option<Option<i64>> {
        if self.peek()? == b'n' {
            self.literal(b"null").map(|()| None)
        } else {
            self.integer().map(Some)
        }
    }

    fn float(&mut self) -> Option<f64> {
        match self.number()? {
            // Exact: validated integers of interest are far below 2^53.
            #[allow(clippy::cast_precision_loss)]
            Number::Int(value) if value.unsigned_abs() < (1 << 53) => Some(value as f64),
            Number::Int(_) => None,
            Number::Float(value) => Some(value),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.bytes[self.pos..]
            .starts_with(word)
            .then(|| self.pos += word.len())
    }

    /// Consumes `expected` if the input continues with it: a key with its quotes, colon and the
    /// comma before it, compared as one fixed-length array (a few loads, not a key scan).
    fn expect<const N: usize>(&mut self, expected: &[u8; N]) -> Option<()> {
        let next = self.bytes.get(self.pos..)?.first_chunk::<N>()?;
        (next == expected).then(|| self.pos += N)
    }

    /// The rest of a string whose opening quote was consumed, as [`Self::string`] reads it.
    fn string_body(&mut self) -> Option<&'a str> {
        let start = self.pos;
        let (len, _) = string_len(&self.bytes[start..])?;
        self.pos = start + len + 1;
        std::str::from_utf8(&self.bytes[start..start + len]).ok()
    }

    /// A non-negative JSON integer of 1 to `max` digits (at most 16), without a sign or leading
    /// zero; what follows is the caller's to check (a fraction or exponent must not).
    // Measured: outlined, the calls (and values nobody reads) cost more than inlined code.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn plain_integer(&mut self, max: usize) -> Option<u64> {
        let (value, len) = leading_digits(self.bytes, self.pos);
        ((1..=max).contains(&len) && (len == 1 || self.bytes[self.pos] != b'0')).then(|| {
            self.pos += len;
            value
        })
    }

    /// A number as the line writes it ([`line::line_form`]): at most 9 digits, perhaps a point and 1 to
    /// 5 decimals without a trailing zero (but `.0`); its decimal (whose double is the value
    /// [`Self::number`] converts) and whether it is whole. What follows is the caller's to check.
    fn line_number(&mut self) -> Option<(Decimal, bool)> {
        let whole = self.plain_integer(9)?;
        if self.peek() != Some(b'.') {
            return Some((
                Decimal {
                    mantissa: whole,
                    decimals: 0,
                },
                true,
            ));
        }
        let (fraction, len) = leading_digits(self.bytes, self.pos + 1);
        if !(1..=5).contains(&len) || (len > 1 && self.bytes[self.pos + len] == b'0') {
            return None;
        }
        self.pos += 1 + len;
        // At most 14 digits: below 2^53, so its double is exact and `to_f64` correctly rounded.
        let mantissa = whole * POW10_INT[len] + fraction;
        Some((
            Decimal {
                mantissa,
                decimals: len,
            },
            false,
        ))
    }

    /// Skips the value of a field the message does not use; only scalars take the fast path.
    fn skip_scalar(&mut self) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            b'"' => {
                let (text, ascii) = self.raw_string()?;
                (ascii || std::str::from_utf8(text).is_ok()).then_some(())
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(drop),
        }
    }
}

/// The key inside `quoted` (quotes included) if `rest` starts with it. Generic over the length so
/// that each comparison compiles to a few loads, not a call to `memcmp` (which took 6% of the
/// transformer's time).
fn quoted<const N: usize>(rest: &[u8], quoted: &'static [u8; N]) -> Option<&'static [u8]> {
    (rest.get(..N)? == quoted).then(|| &quoted[1..N - 1])
}

/// Stores a field once; a second occurrence sends the message to serde_json (which rejects it).
fn set<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

/// Scans `bytes` as a flat device message, or returns `None` to defer to serde_json; with the
/// message, its [`LinePrefix`] if it has one.
pub(crate) fn scan(bytes: &[u8]) -> Option<(DeviceMessage<'_>, Option<LinePrefix>)> {
    let mut s = Scanner { bytes, pos: 0 };
    let mut line = LineTracker::new(bytes);
    let mut uuid: Option<Option<&str>> = None;
    let mut event = None;
    let mut device_timestamp = None;
    let mut second = None;
    let mut race_id = None;
    let mut name = None;
    let mut racer_id = None;
    let mut class_id = None;
    let mut cadence = None;
    let mut resistance = None;
    let mut identity_id: Option<Option<&str>> = None;
    let mut arrived_at: Option<Option<i64>> = None;

    s.eat(b'{')?;
    s.skip_ws();
    if s.peek() == Some(b'}') {
        return None;
    }
    loop {
        let key_start = s.pos;
        let key = s.key()?;
        s.eat(b':')?;
        s.skip_ws();
        let value_start = s.pos;
        line.key(key, key_start, value_start);
        match key {
            b"uuid" => set(&mut uuid, s.string_or_null()?)?,
            b"event" => {
                let value = match s.string()? {
                    "update" => Event::Update,
                    "final" => Event::Final,
                    _ => return None,
                };
                set(&mut event, value)?;
            }
            b"deviceTimestamp" => set(&mut device_timestamp, s.integer()?)?,
            b"second" => set(&mut second, s.integer()?)?,
            b"raceId" => set(&mut race_id, s.integer()?)?,
            b"name" => set(&mut name, s.string()?)?,
            b"racerId" => set(&mut racer_id, s.integer()?)?,
            b"classId" => set(&mut class_id, s.integer()?)?,
            b"cadence" => set(&mut cadence, s.float()?)?,
            b"resistance" => set(&mut resistance, s.float()?)?,
            b"identityId" => set(&mut identity_id, s.string_or_null()?)?,
            b"arrivedAt" => set(&mut arrived_at, s.integer_or_null()?)?,
            _ => s.skip_scalar()?,
        }
        let value_end = s.pos;
        s.skip_ws();
        line.value(key, value_start, value_end, s.pos != value_end);
        match s.peek()? {
            b',' => s.pos += 1,
            b'}' => {
                s.pos += 1;
                break;
            }
            _ => return None,
        }
    }
    s.skip_ws();
    if s.pos != bytes.len() {
        return None;
    }
    let prefix = line.finish();
    let message = DeviceMessage {
        uuid: uuid.flatten().map(Cow::Borrowed),
        event: event?,
        device_timestamp: device_timestamp?,
        second: second?,
        race_id: race_id?,
        name: Cow::Borrowed(name?),
        racer_id: racer_id?,
        class_id: class_id?,
        cadence: cadence?,
        resistance: resistance?,
        identity_id: identity_id.flatten().map(Cow::Borrowed),
        arrived_at: arrived_at.flatten(),
    };
    Some((message, prefix))
}

#[cfg(test)]
mod tests;
