//! A single-pass scanner for the common shape of a device message: one flat JSON object, strings
//! without escapes, plain numbers.
//!
//! It is the fast path of [`DeviceMessage::parse`]; it never decides that a message is invalid.
//! Whenever it meets anything it does not handle (an escape, a nested value, a duplicate or
//! missing field, a malformed number), it returns `None` and serde_json parses the message
//! instead, so every rejection and every unusual-but-valid message gets serde_json's exact answer.
//! A property test checks that whenever the scanner answers, serde_json answers the same.

use std::borrow::Cow;

use crate::message::{
    DeviceMessage, Event, MAX_CADENCE, MAX_CLASS_ID, MAX_DEVICE_TIMESTAMP_MS, MAX_IDENTITY_BYTES,
    MAX_NAME_CHARS, MAX_RACER_ID, MAX_RESISTANCE, MIN_DEVICE_TIMESTAMP_MS, MessageText, Reading,
};
use crate::output::Output;
use crate::race::RaceClock;

/// Exact powers of ten as doubles.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Bytes that end the scan of a string: the closing quote, an escape, a control character, and
/// any non-ASCII byte (which sends the string to UTF-8 validation).
const STRING_STOP: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] =
            byte < 0x20 || byte >= 0x80 || byte == b'"' as usize || byte == b'\\' as usize;
        byte += 1;
    }
    table
};

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in the bytes of `word` (little-endian) that are in [`STRING_STOP`]. The lowest
/// flagged byte is always exact (false positives can only follow a true one), which is all the
/// search needs.
const fn string_stops(word: u64) -> u64 {
    let quote = word ^ (LO * b'"' as u64);
    let backslash = word ^ (LO * b'\\' as u64);
    ((quote.wrapping_sub(LO) & !quote)
        | (backslash.wrapping_sub(LO) & !backslash)
        | (word.wrapping_sub(LO * 0x20) & !word)
        | word)
        & HI
}

/// Index of the first [`STRING_STOP`] byte of `bytes` (a quote, a backslash, a control character
/// or a non-ASCII byte), eight bytes at a time: uuids, names, and the transformer's record ids
/// are long enough for this to matter (a byte loop took a fifth of the message scan), and too
/// short for a SIMD search's setup to pay (`memchr` measured slower on them).
fn find_string_stop(bytes: &[u8]) -> Option<usize> {
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let stops = string_stops(word);
        if stops != 0 {
            return Some(at + (stops.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = chunks.remainder();
    tail.iter()
        .position(|&b| STRING_STOP[usize::from(b)])
        .map(|i| at + i)
}

/// The length of a JSON string's text (`rest` starts after its opening quote) up to its closing
/// quote, and whether it is ASCII; `None` if an escape or a control character comes first (or no
/// quote at all). What a fast scanner accepts as a string: here and in the transformer's
/// envelope scanner.
pub fn string_len(rest: &[u8]) -> Option<(usize, bool)> {
    let mut len = find_string_stop(rest)?;
    let ascii = rest[len] < 0x80;
    if !ascii {
        len += rest[len..]
            .iter()
            .position(|&b| b < 0x20 || b == b'"' || b == b'\\')?;
    }
    (rest[len] == b'"').then_some((len, ascii))
}

/// `b'0'` in every byte.
const ZEROS: u64 = LO * b'0' as u64;

/// Exact powers of ten as integers, for joining digit groups.
const POW10_INT: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// The eight bytes of `bytes` from `at` as a little-endian word, zeros past the end (a zero is
/// not a digit, so a number at the very end of the input reads as it should). Near the end, the
/// input's last eight bytes are loaded and shifted, rather than copied into a buffer: a message's
/// last number is always there, and the copy was a call to `memcpy`.
// Measured: outlined, the calls (and values nobody reads) cost more than inlined code.
#[allow(clippy::inline_always)]
#[inline(always)]
fn load8(bytes: &[u8], at: usize) -> u64 {
    if let Some(word) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        return u64::from_le_bytes(*word);
    }
    match bytes.len().checked_sub(8) {
        Some(start) => {
            let last = bytes[start..]
                .first_chunk::<8>()
                .map_or(0, |w| u64::from_le_bytes(*w));
            let skipped = u32::try_from(at - start).unwrap_or(8);
            last.checked_shr(8 * skipped).unwrap_or(0)
        }
        None => bytes
            .get(at..)
            .unwrap_or_default()
            .iter()
            .rev()
            .fold(0, |word, &b| (word << 8) | u64::from(b)),
    }
}

/// How many of the bytes of `word` (little-endian), from the first, are ASCII digits. A byte is a
/// digit when `byte ^ b'0'` is below 10, i.e. when adding `0x76` to that leaves its high bit
/// clear; a carry out of a byte only comes from a byte flagged anyway, so the lowest flagged byte
/// (all this needs) is exact.
// Measured: outlined, the calls (and values nobody reads) cost more than inlined code.
#[allow(clippy::inline_always)]
#[inline(always)]
fn digit_count(word: u64) -> usize {
    let x = word ^ ZEROS;
    let non_digits = (x.wrapping_add(LO * 0x76) | x) & HI;
    (non_digits.trailing_zeros() / 8) as usize
}

/// The value of the first `n` (1 to 8) bytes of `word`, all digits: the other bytes are shifted
/// out and the digits moved to the top (the bytes below them are leading zeros), then pairs,
/// fours and eights of digits are joined by one multiplication each.
// Measured: outlined, the calls (and values nobody reads) cost more than inlined code.
#[allow(clippy::inline_always)]
#[inline(always)]
fn digits_value(word: u64, n: usize) -> u64 {
    let digits = word.wrapping_sub(ZEROS) << (8 * (8 - n));
    let pairs = (digits & 0x0f0f_0f0f_0f0f_0f0f).wrapping_mul((10 << 8) | 1) >> 8;
    let fours = (pairs & 0x00ff_00ff_00ff_00ff).wrapping_mul((100 << 16) | 1) >> 16;
    (fours & 0x0000_ffff_0000_ffff).wrapping_mul((10_000 << 32) | 1) >> 32
}

/// The ASCII digits at `at` in `bytes`, read eight at a time: their value and how many there are,
/// up to 16 (a 17th digit is left unread: callers look at what follows). Device timestamps have
/// 13 digits; reading them a byte at a time was a tenth of the message scan. Inlined, so that
/// callers that only need the length (numbers the envelope skips) do not compute the value.
// Measured: outlined, the calls (and values nobody reads) cost more than inlined code.
#[allow(clippy::inline_always)]
#[inline(always)]
pub fn leading_digits(bytes: &[u8], at: usize) -> (u64, usize) {
    let first = load8(bytes, at);
    let n = digit_count(first);
    if n == 0 {
        return (0, 0);
    }
    let high = digits_value(first, n);
    if n < 8 {
        return (high, n);
    }
    let second = load8(bytes, at + 8);
    let m = digit_count(second);
    if m == 0 {
        return (high, 8);
    }
    (high * POW10_INT[m] + digits_value(second, m), 8 + m)
}

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

    /// A number as the line writes it ([`line_form`]): at most 9 digits, perhaps a point and 1 to
    /// 5 decimals without a trailing zero (but `.0`); its value, converted as [`Self::number`]
    /// does, and whether it is whole. What follows is the caller's to check.
    fn line_number(&mut self) -> Option<(f64, bool)> {
        let whole = self.plain_integer(9)?;
        if self.peek() != Some(b'.') {
            // Below 10^9: exact.
            #[allow(clippy::cast_precision_loss)]
            return Some((whole as f64, true));
        }
        let (fraction, len) = leading_digits(self.bytes, self.pos + 1);
        if !(1..=5).contains(&len) || (len > 1 && self.bytes[self.pos + len] == b'0') {
            return None;
        }
        self.pos += 1 + len;
        // At most 14 digits: below 2^53, so exact, and the division is correctly rounded.
        #[allow(clippy::cast_precision_loss)]
        let mantissa = (whole * POW10_INT[len] + fraction) as f64;
        Some((mantissa / POW10[len], false))
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

/// Where a message's text is already the start of its line ([`crate::Reading::write_json_line`]),
/// so that the line can copy it instead of formatting every field again: the message starts
/// with `{`, then holds `uuid` (optional), `event`, `deviceTimestamp`, `second`, `raceId`,
/// `name`, `racerId`, `classId`, `cadence` and `resistance` in that order, written compactly
/// (no whitespace), each value already in the line's form. Strings without escapes and JSON
/// integers are; cadence and resistance must be decimals as ryu writes them, or whole numbers,
/// which only lack the `.0` the line adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LinePrefix {
    /// End of the cadence's text.
    pub cadence_end: usize,
    /// Whether the line adds `.0` to the cadence.
    pub cadence_whole: bool,
    /// End of the resistance's text: the prefix ends there.
    pub resistance_end: usize,
    /// Whether the line adds `.0` to the resistance.
    pub resistance_whole: bool,
}

/// Keys of the line up to `resistance` (`uuid` may be missing).
const LINE_KEYS: usize = 10;

/// Where `key` is in the line's order up to `resistance`, or [`LINE_KEYS`] if it is not there.
/// (A `match`, so that it compiles to a few loads rather than calls to `memcmp`.)
fn line_position(key: &[u8]) -> usize {
    match key {
        b"uuid" => 0,
        b"event" => 1,
        b"deviceTimestamp" => 2,
        b"second" => 3,
        b"raceId" => 4,
        b"name" => 5,
        b"racerId" => 6,
        b"classId" => 7,
        b"cadence" => 8,
        b"resistance" => 9,
        _ => LINE_KEYS,
    }
}

/// Whether a JSON number's text is what the line writes for its value: `Some(false)` if exactly
/// (ryu's shortest form: at most 9 digits before the point, 1 to 5 after it, no trailing zero
/// but in `.0`), `Some(true)` if it is a whole number the line writes with `.0` added, `None`
/// otherwise. Such decimals have at most 14 significant digits, so the decimal itself is the
/// shortest text that reads back as its double, and ryu writes it in plain notation.
fn line_form(text: &[u8]) -> Option<bool> {
    let (whole, fraction) = match text.iter().position(|&b| b == b'.') {
        Some(point) => (&text[..point], Some(&text[point + 1..])),
        None => (text, None),
    };
    let digits = |part: &[u8], max: usize| {
        (1..=max).contains(&part.len()) && part.iter().all(u8::is_ascii_digit)
    };
    if !digits(whole, 9) {
        return None;
    }
    match fraction {
        None => Some(true),
        Some(fraction) => (digits(fraction, 5)
            && (fraction == b"0" || fraction.last() != Some(&b'0')))
        .then_some(false),
    }
}

/// Follows a message as [`scan`] reads it, to find its [`LinePrefix`].
struct LineTracker<'a> {
    bytes: &'a [u8],
    /// The position of the next key expected ([`line_position`]).
    next: usize,
    /// Whether everything read so far is in the line's form.
    in_line: bool,
    /// The cadence's end and [`line_form`].
    cadence: Option<(usize, Option<bool>)>,
    /// The resistance's end and [`line_form`].
    resistance: Option<(usize, Option<bool>)>,
}

impl<'a> LineTracker<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            next: 0,
            in_line: bytes.first() == Some(&b'{'),
            cadence: None,
            resistance: None,
        }
    }

    /// A key read from `key_start`, its value starting at `value_start`.
    fn key(&mut self, key: &[u8], key_start: usize, value_start: usize) {
        if !self.in_line {
            return;
        }
        let at = line_position(key);
        if self.next >= LINE_KEYS {
            // Past the prefix, a key of the line can only be a `uuid` the message sent last,
            // which the line writes first (any other would be a duplicate).
            self.in_line = at == LINE_KEYS;
            return;
        }
        // Compact: the separator, the key and its colon right next to each other.
        self.in_line = matches!(self.bytes[key_start - 1], b'{' | b',')
            && self.bytes[key_start] == b'"'
            && value_start == key_start + key.len() + 3;
        if self.next == 0 && at == 1 {
            self.next = 1;
        }
        self.in_line &= at == self.next;
        self.next += 1;
    }

    /// The value of `key`, read from `start` to `end`, and whether whitespace follows it.
    fn value(&mut self, key: &[u8], start: usize, end: usize, spaced: bool) {
        match key {
            // The line leaves a missing uuid out.
            b"uuid" => self.in_line &= self.bytes[start] != b'n',
            b"cadence" => self.cadence = Some((end, line_form(&self.bytes[start..end]))),
            b"resistance" => self.resistance = Some((end, line_form(&self.bytes[start..end]))),
            _ => {}
        }
        // Whitespace after the resistance is not copied.
        self.in_line &= !spaced || self.next >= LINE_KEYS;
    }

    fn finish(self) -> Option<LinePrefix> {
        match (self.in_line, self.cadence, self.resistance) {
            (true, Some((cadence_end, Some(cadence_whole))), Some((end, Some(whole)))) => {
                Some(LinePrefix {
                    cadence_end,
                    cadence_whole,
                    resistance_end: end,
                    resistance_whole: whole,
                })
            }
            _ => None,
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

/// Scans a message written exactly as its line begins (see [`LinePrefix`]: compact, the line's
/// key order, numbers in the line's form) whose fields are all valid, straight into its
/// [`Reading`]: each expected key is compared as one fixed-length array with the punctuation
/// around it, integers are read eight digits at a time, and nothing goes through `Option`s or a
/// [`DeviceMessage`]. Devices (the simulator, the bikes) send this shape.
///
/// Anything else (another order, whitespace before `resistance`, another number form, a value
/// out of range, a repeated key) returns `None`, and the message takes [`scan`] and
/// [`DeviceMessage::validate`]: they give the same reading and prefix for every message this
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
    let (cadence, cadence_whole) = s.line_number()?;
    let cadence_end = s.pos;
    s.expect(b",\"resistance\":")?;
    let (resistance, resistance_whole) = s.line_number()?;
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
            output: Output::from_effort(cadence, resistance),
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
