//! The fast path of [`crate::handle_raw`]: event bytes in, response bytes out, nothing allocated
//! per record.
//!
//! A single pass over the event borrows each record's `recordId` and base64 `data` from the
//! input and skips everything else; `data` is decoded into one reused buffer, the line written
//! into one reused buffer and base64-encoded straight into the response, whose JSON is written
//! directly.
//!
//! Like the device message scanner of `alleycat-domain`, it never decides anything on its own:
//! it only answers events of the shape Firehose sends (strings without escapes, plain numbers,
//! every record a valid Firehose record with valid base64). On anything else (an escape, a
//! missing or duplicated field, a value of another type, bad base64, a number it does not read,
//! deep nesting) it returns `None` and the typed path answers the whole event, so behaviour
//! is identical by construction. The rules below are those of the typed path's decoding
//! (`KinesisFirehoseEventRecord`, `LenientFirehoseEvent`), made stricter wherever matching them
//! exactly would be work; property tests hold the two paths to the same bytes and metrics.

use alleycat_domain::{Plausibility, Reading, Rejection, leading_digits, string_len};
use base64_simd::STANDARD;

use crate::{RESULT_OK, RESULT_PROCESSING_FAILED};

/// Deepest nesting the fast path skips inside a value it ignores. serde_json allows 128 levels
/// in all; staying far below means the fast path never accepts what serde_json would refuse.
const MAX_SKIP_DEPTH: usize = 16;

/// Longest timestamp, in digits, the fast path accepts: below 10^15 ms (year 33658), the typed
/// path's conversion never fails (it reads the value exactly, as this one does).
const MAX_TIMESTAMP_DIGITS: usize = 15;

/// Longest integer part and fraction, in digits, of an ignored number: far from where serde_json
/// would report a number out of range.
const MAX_NUMBER_DIGITS: usize = 20;

/// The transformed event, not yet counted: [`crate::handle_raw`] adds the counts to the metrics
/// and logs the rejections only once the whole event went through the fast path.
pub(crate) struct Transformed<'a> {
    /// The response's JSON: UTF-8 by construction (ASCII, and record ids checked where they
    /// are not ASCII), though not checked as a whole: [`crate::handle_raw`] answers bytes.
    pub response: Vec<u8>,
    /// Records in the event.
    pub records: u64,
    /// Records answered `Ok`.
    pub ok: u64,
    /// Records answered `ProcessingFailed`.
    pub failed: u64,
    /// Decoded bytes received.
    pub bytes_in: u64,
    /// Bytes of the `Ok` lines.
    pub bytes_out: u64,
    /// Every rejected record's id and why, in order.
    pub rejections: Vec<(&'a str, Rejection)>,
}

/// Transforms `event`, or `None` when it is not of the shape the fast path answers.
pub(crate) fn transform(event: &[u8], rules: Plausibility) -> Option<Transformed<'_>> {
    let mut scanner = Scanner {
        bytes: event,
        pos: 0,
    };
    let mut writer = Writer::new(event.len(), rules);
    scanner.event(&mut writer)?;
    Some(writer.finish())
}

/// One record's envelope: all the fast path keeps of it.
struct Record<'a> {
    /// The `recordId`, without escapes, valid UTF-8: copied as is into the answer.
    id: &'a [u8],
    /// The base64 text of `data`, not yet checked: decoding does.
    data: &'a [u8],
    /// `approximateArrivalTimestamp`, epoch milliseconds.
    arrival_ms: u64,
}

/// The response under construction, with the buffers every record reuses.
struct Writer<'a> {
    rules: Plausibility,
    /// The response's bytes: all ASCII but for record ids, which are checked (only those that
    /// are not ASCII: a check of every id cost 2% of the time).
    out: Vec<u8>,
    /// The current record's decoded data.
    decoded: Vec<u8>,
    /// The current record's line.
    line: Vec<u8>,
    counts: Transformed<'a>,
}

impl<'a> Writer<'a> {
    fn new(event_len: usize, rules: Plausibility) -> Self {
        // A Firehose record's envelope (ids, metadata) outweighs what the line adds to its data:
        // the benchmark's responses are 0.70 times their event, the (indented) fixture's 0.53.
        // Events of bare records (up to about 1.25 times) grow the buffer once or twice. Sized no
        // bigger: megabytes of fresh memory cost page faults, whether used or not once the
        // allocator has handed them out and back.
        let mut out = Vec::with_capacity(event_len / 4 * 3 + 4096);
        out.extend_from_slice(b"{\"records\":[");
        Self {
            rules,
            out,
            decoded: Vec::with_capacity(512),
            line: Vec::with_capacity(512),
            counts: Transformed {
                response: Vec::new(),
                records: 0,
                ok: 0,
                failed: 0,
                bytes_in: 0,
                bytes_out: 0,
                rejections: Vec::new(),
            },
        }
    }

    /// Answers one record; `None` when its data is not valid base64 (the typed path answers
    /// those records differently, and the whole event goes there).
    fn record(&mut self, record: &Record<'a>) -> Option<()> {
        // The same acceptance as the typed path's `base64` STANDARD engine: padding required and
        // canonical, no stray bits, nothing outside the alphabet (a property test holds them
        // together); anything else, escapes and control characters included, is an error here.
        self.decoded.clear();
        STANDARD
            .decode_append(record.data, &mut self.decoded)
            .ok()?;

        self.out.extend_from_slice(if self.counts.records == 0 {
            b"{\"recordId\":\""
        } else {
            b",{\"recordId\":\""
        });
        self.out.extend_from_slice(record.id);
        self.counts.records += 1;
        self.counts.bytes_in += self.decoded.len() as u64;
        let rules = self.rules;
        // The line is written where the reading is: a `Reading` is large, and moving it through
        // `Result`s cost calls to `memmove`.
        let written = match Reading::from_json_keeping_text(&self.decoded, rules.clock) {
            Ok((mut reading, text)) => rules.admit(&mut reading, record.arrival_ms).map(|()| {
                self.line.clear();
                reading.write_json_line_from(&text, &mut self.line);
                text.copied_len()
            }),
            Err(rejection) => Err(rejection),
        };
        match written {
            Ok(copied) => {
                self.counts.ok += 1;
                self.counts.bytes_out += self.line.len() as u64;
                self.out.extend_from_slice(b"\",\"result\":\"");
                self.out.extend_from_slice(RESULT_OK.as_bytes());
                self.out.extend_from_slice(b"\",\"data\":\"");
                encode_line(record.data, &self.line, copied, &mut self.out)?;
            }
            Err(rejection) => {
                self.counts.failed += 1;
                let id = std::str::from_utf8(record.id).ok()?;
                self.counts.rejections.push((id, rejection));
                self.out.extend_from_slice(b"\",\"result\":\"");
                self.out
                    .extend_from_slice(RESULT_PROCESSING_FAILED.as_bytes());
                self.out.extend_from_slice(b"\",\"data\":\"");
                // The original data: valid standard base64 has exactly one encoding (canonical
                // padding, no stray bits), so the text received is what encoding it again gives.
                self.out.extend_from_slice(record.data);
            }
        }
        // What serde writes for the response record's empty `metadata`.
        self.out
            .extend_from_slice(b"\",\"metadata\":{\"partitionKeys\":{}}}");
        Some(())
    }

    fn finish(mut self) -> Transformed<'a> {
        self.out.extend_from_slice(b"]}");
        self.counts.response = self.out;
        self.counts
    }
}

/// Appends the base64 of `line`, whose first `copied` bytes are those of the message that
/// `data` (valid standard base64) encodes: the encoding of their first whole groups of three is
/// copied from `data` (valid standard base64 has exactly one encoding, and an unpadded group of
/// four characters is always the same three bytes), only the rest is encoded.
fn encode_line(data: &[u8], line: &[u8], copied: usize, out: &mut Vec<u8>) -> Option<()> {
    let groups = copied / 3;
    out.extend_from_slice(data.get(..groups * 4)?);
    let rest = &line[groups * 3..];
    // Amortized growth: `encode_append` reserves only what it writes.
    out.reserve(STANDARD.encoded_length(rest.len()));
    STANDARD.encode_append(rest, out);
    Some(())
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

    /// Consumes `byte`, which must come next.
    fn byte(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// Consumes `literal` (`null`, `true`, `false`), which must come next.
    fn literal(&mut self, literal: &[u8]) -> Option<()> {
        let end = self.pos + literal.len();
        (self.bytes.get(self.pos..end)? == literal).then(|| self.pos = end)
    }

    /// After a member or an element: `Some(true)` past a comma (and the whitespace after it),
    /// `Some(false)` past `close`.
    fn next_or_close(&mut self, close: u8) -> Option<bool> {
        self.skip_ws();
        let byte = self.peek()?;
        self.pos += 1;
        if byte == b',' {
            self.skip_ws();
            Some(true)
        } else {
            (byte == close).then_some(false)
        }
    }

    /// Past `open` and the whitespace after it: `true` if the container is empty (and consumed).
    fn open(&mut self, open: u8, close: u8) -> Option<bool> {
        self.byte(open)?;
        self.skip_ws();
        let empty = self.peek()? == close;
        if empty {
            self.pos += 1;
        }
        Some(empty)
    }

    /// A string without escapes or control characters: its bytes, and whether they are ASCII
    /// (otherwise they may not even be UTF-8, which the caller checks if it needs to).
    fn raw_string(&mut self) -> Option<(&'a [u8], bool)> {
        self.byte(b'"')?;
        let start = self.pos;
        let (len, ascii) = string_len(&self.bytes[start..])?;
        self.pos = start + len + 1;
        Some((&self.bytes[start..start + len], ascii))
    }

    /// The text of a string up to its closing quote, unchecked: the base64 `data`, which
    /// decoding checks (an escape, a control character or a non-ASCII byte is not base64).
    fn unchecked_string(&mut self) -> Option<&'a [u8]> {
        self.byte(b'"')?;
        let start = self.pos;
        let len = memchr::memchr(b'"', &self.bytes[start..])?;
        self.pos = start + len + 1;
        Some(&self.bytes[start..start + len])
    }

    /// Consumes `expected` if the input continues with it: compared as one fixed-length array
    /// (a few loads, no call to `memcmp`).
    fn expect<const N: usize>(&mut self, expected: &[u8; N]) -> bool {
        let next = self.bytes[self.pos..].first_chunk::<N>();
        let found = next == Some(expected);
        if found {
            self.pos += N;
        }
        found
    }

    /// Consumes `quoted` (a key, quotes included) and the colon after it, if the key is next.
    fn known_key<const N: usize>(&mut self, quoted: &[u8; N]) -> Option<bool> {
        if !self.expect(quoted) {
            return Some(false);
        }
        self.colon()?;
        Some(true)
    }

    /// The colon after a key, with the whitespace around it.
    fn colon(&mut self) -> Option<()> {
        self.skip_ws();
        self.byte(b':')?;
        self.skip_ws();
        Some(())
    }

    /// A string without escapes that is valid JSON (UTF-8 checked only if not ASCII): keys,
    /// record ids and ignored values.
    fn skip_string(&mut self) -> Option<&'a [u8]> {
        let (bytes, ascii) = self.raw_string()?;
        (ascii || std::str::from_utf8(bytes).is_ok()).then_some(bytes)
    }

    /// A key and its colon, up to the value.
    fn key(&mut self) -> Option<&'a [u8]> {
        let key = self.skip_string()?;
        self.colon()?;
        Some(key)
    }

    /// Digits, at most `max` of them and at least one, without a leading zero.
    fn digits(&mut self, max: usize) -> Option<()> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let len = self.pos - start;
        (1..=max).contains(&len).then_some(())?;
        (len == 1 || self.bytes[start] != b'0').then_some(())
    }

    /// A non-negative integer of 1 to `max` digits (at most 16), without a leading zero, a
    /// fraction or an exponent; read eight digits at a time.
    // Measured: outlined, the calls (and values nobody reads) cost more than inlined code.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn unsigned(&mut self, max: usize) -> Option<u64> {
        let (value, len) = leading_digits(self.bytes, self.pos);
        let rest = &self.bytes[self.pos..];
        let plain = (1..=max).contains(&len)
            && (len == 1 || rest[0] != b'0')
            && !matches!(rest.get(len), Some(b'.' | b'e' | b'E' | b'0'..=b'9'));
        plain.then(|| {
            self.pos += len;
            value
        })
    }

    /// A number in an ignored value: JSON's grammar, without exponent, of bounded length.
    fn number(&mut self) -> Option<()> {
        if self.peek()? == b'-' {
            self.pos += 1;
        }
        self.digits(MAX_NUMBER_DIGITS)?;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            let start = self.pos;
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1;
            }
            (1..=MAX_NUMBER_DIGITS)
                .contains(&(self.pos - start))
                .then_some(())?;
        }
        (!matches!(self.peek(), Some(b'e' | b'E'))).then_some(())
    }

    /// A string or `null`: the `Option<String>` fields of the envelope.
    fn string_or_null(&mut self) -> Option<()> {
        if self.peek()? == b'n' {
            self.literal(b"null")
        } else {
            self.skip_string().map(drop)
        }
    }

    /// Any value of the shapes above, skipped, nested at most [`MAX_SKIP_DEPTH`] deep.
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string().map(drop),
            b'{' => {
                (depth < MAX_SKIP_DEPTH).then_some(())?;
                if !self.open(b'{', b'}')? {
                    loop {
                        self.key()?;
                        self.skip_value(depth + 1)?;
                        if !self.next_or_close(b'}')? {
                            break;
                        }
                    }
                }
                Some(())
            }
            b'[' => {
                (depth < MAX_SKIP_DEPTH).then_some(())?;
                if !self.open(b'[', b']')? {
                    loop {
                        self.skip_value(depth + 1)?;
                        if !self.next_or_close(b']')? {
                            break;
                        }
                    }
                }
                Some(())
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// The whole event: an object with `records` (each answered as it is read) and the
    /// event's other fields, then nothing but whitespace.
    fn event(&mut self, writer: &mut Writer<'a>) -> Option<()> {
        // `records`, then `invocationId`, `deliveryStreamArn`, `sourceKinesisStreamArn`,
        // `region`: each at most once (the typed path keeps the last of duplicates; the fast
        // path does not bother).
        let mut seen = [false; 5];
        let mut once = |field: usize| (!std::mem::replace(&mut seen[field], true)).then_some(());
        self.skip_ws();
        // `records` is required.
        (!self.open(b'{', b'}')?).then_some(())?;
        loop {
            match self.key()? {
                b"records" => {
                    once(0)?;
                    self.records(writer)?;
                }
                b"invocationId" => {
                    once(1)?;
                    self.string_or_null()?;
                }
                b"deliveryStreamArn" => {
                    once(2)?;
                    self.string_or_null()?;
                }
                b"sourceKinesisStreamArn" => {
                    once(3)?;
                    self.string_or_null()?;
                }
                b"region" => {
                    once(4)?;
                    self.string_or_null()?;
                }
                _ => self.skip_value(0)?,
            }
            if !self.next_or_close(b'}')? {
                break;
            }
        }
        self.skip_ws();
        (self.pos == self.bytes.len() && seen[0]).then_some(())
    }

    fn records(&mut self, writer: &mut Writer<'a>) -> Option<()> {
        if !self.open(b'[', b']')? {
            loop {
                let record = self.record()?;
                writer.record(&record)?;
                if !self.next_or_close(b']')? {
                    break;
                }
            }
        }
        Some(())
    }

    /// One record, as `KinesisFirehoseEventRecord` reads it: `recordId` (which the typed path
    /// may do without, but the fast path needs), `approximateArrivalTimestamp` and `data`
    /// required, `kinesisRecordMetadata` optional, anything else ignored.
    ///
    /// Known keys are matched whole against the input, quotes included (so `"data2"` or
    /// `"d\u0061ta"` is not `data`): one comparison each instead of scanning every key. The
    /// record Firehose sends (its fields in the order below, compact) is read as one predicted
    /// sequence; any other goes through the loop over its keys.
    fn record(&mut self) -> Option<Record<'a>> {
        let start = self.pos;
        if let Some(record) = self.compact_record() {
            return Some(record);
        }
        self.pos = start;
        self.any_record()
    }

    /// A record as Firehose writes it: `{"recordId":…,"approximateArrivalTimestamp":…,"data":…,
    /// "kinesisRecordMetadata":…}`, compact; `None` as soon as the input differs.
    fn compact_record(&mut self) -> Option<Record<'a>> {
        self.expect(b"{\"recordId\":").then_some(())?;
        let id = self.skip_string()?;
        self.expect(b",\"approximateArrivalTimestamp\":")
            .then_some(())?;
        let arrival_ms = self.unsigned(MAX_TIMESTAMP_DIGITS)?;
        self.expect(b",\"data\":").then_some(())?;
        let data = self.unchecked_string()?;
        self.expect(b",\"kinesisRecordMetadata\":").then_some(())?;
        let metadata = self.pos;
        if self.compact_metadata().is_none() {
            self.pos = metadata;
            self.metadata()?;
        }
        self.byte(b'}')?;
        Some(Record {
            id,
            data,
            arrival_ms,
        })
    }

    /// A record whose fields come in any order, with any whitespace.
    fn any_record(&mut self) -> Option<Record<'a>> {
        let (mut id, mut data, mut timestamp, mut metadata) = (None, None, None, false);
        (!self.open(b'{', b'}')?).then_some(())?;
        loop {
            if self.known_key(b"\"recordId\"")? {
                id.is_none().then_some(())?;
                id = Some(self.skip_string()?);
            } else if self.known_key(b"\"approximateArrivalTimestamp\"")? {
                timestamp.is_none().then_some(())?;
                timestamp = Some(self.unsigned(MAX_TIMESTAMP_DIGITS)?);
            } else if self.known_key(b"\"data\"")? {
                data.is_none().then_some(())?;
                data = Some(self.unchecked_string()?);
            } else if self.known_key(b"\"kinesisRecordMetadata\"")? {
                (!std::mem::replace(&mut metadata, true)).then_some(())?;
                self.metadata()?;
            } else {
                self.key()?;
                self.skip_value(0)?;
            }
            if !self.next_or_close(b'}')? {
                break;
            }
        }
        Some(Record {
            id: id?,
            data: data?,
            arrival_ms: timestamp?,
        })
    }

    /// `kinesisRecordMetadata` as Firehose writes it: compact, its known members only, in any
    /// order; `None` as soon as the input differs, and [`Self::metadata`] reads it instead. The
    /// same rules, without the whitespace and unknown keys that loop allows for: each member is
    /// its key and colon compared as one array, its value, and a comma or the closing brace.
    fn compact_metadata(&mut self) -> Option<()> {
        self.byte(b'{')?;
        let mut seen = 0u8;
        loop {
            let field = match self.bytes.get(self.pos + 1..self.pos + 3)? {
                b"se" if self.expect(b"\"sequenceNumber\":") => 0,
                b"su" if self.expect(b"\"subsequenceNumber\":") => 1,
                b"pa" if self.expect(b"\"partitionKey\":") => 2,
                b"sh" if self.expect(b"\"shardId\":") => 3,
                b"ap" if self.expect(b"\"approximateArrivalTimestamp\":") => 4,
                _ => return None,
            };
            (seen & 1 << field == 0).then_some(())?;
            seen |= 1 << field;
            match field {
                1 => self.unsigned(16).map(drop)?,
                4 => self.unsigned(MAX_TIMESTAMP_DIGITS).map(drop)?,
                _ => self.string_or_null()?,
            }
            self.pos += 1;
            match self.bytes.get(self.pos - 1)? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
        // `subsequenceNumber` and `approximateArrivalTimestamp` are required.
        (seen & 0b1_0010 == 0b1_0010).then_some(())
    }

    /// `kinesisRecordMetadata`: `null`, or `KinesisFirehoseRecordMetadata` with its required
    /// `subsequenceNumber` (an `i64`; the fast path takes non-negative ones) and
    /// `approximateArrivalTimestamp`.
    fn metadata(&mut self) -> Option<()> {
        if self.peek()? == b'n' {
            return self.literal(b"null");
        }
        // `shardId`, `partitionKey`, `sequenceNumber`, `subsequenceNumber`,
        // `approximateArrivalTimestamp`.
        let mut seen = [false; 5];
        let mut once = |field: usize| (!std::mem::replace(&mut seen[field], true)).then_some(());
        (!self.open(b'{', b'}')?).then_some(())?;
        loop {
            // The key's first two letters pick the one known key it can be (so each member costs
            // one comparison, in whatever order Firehose writes them).
            let known = match self.bytes.get(self.pos + 1..self.pos + 3) {
                Some(b"se") => self.known_key(b"\"sequenceNumber\"")?.then_some(0),
                Some(b"su") => self.known_key(b"\"subsequenceNumber\"")?.then_some(1),
                Some(b"pa") => self.known_key(b"\"partitionKey\"")?.then_some(2),
                Some(b"sh") => self.known_key(b"\"shardId\"")?.then_some(3),
                Some(b"ap") => self
                    .known_key(b"\"approximateArrivalTimestamp\"")?
                    .then_some(4),
                _ => None,
            };
            match known {
                Some(field @ (0 | 2 | 3)) => {
                    once(field)?;
                    self.string_or_null()?;
                }
                Some(1) => {
                    once(1)?;
                    // Not `-0`, which serde_json reads as a float.
                    self.unsigned(16)?;
                }
                Some(_) => {
                    once(4)?;
                    self.unsigned(MAX_TIMESTAMP_DIGITS)?;
                }
                None => {
                    self.key()?;
                    self.skip_value(0)?;
                }
            }
            if !self.next_or_close(b'}')? {
                break;
            }
        }
        (seen[1] && seen[4]).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use proptest::prelude::*;

    use super::*;

    /// Base64 text of `bytes`, with one character perhaps replaced by another of the alphabet or
    /// by padding: mostly valid, sometimes barely not, at every length the SIMD kernels and their
    /// tails handle.
    fn base64_text() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(any::<u8>(), 0..400),
            prop::option::weighted(0.7, (any::<prop::sample::Index>(), 0..65u8)),
        )
            .prop_map(|(bytes, change)| {
                let mut text = base64::engine::general_purpose::STANDARD
                    .encode(bytes)
                    .into_bytes();
                if let Some((at, to)) = change
                    && !text.is_empty()
                {
                    let alphabet =
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
                    let at = at.index(text.len());
                    text[at] = alphabet[usize::from(to)];
                }
                String::from_utf8(text).unwrap()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// The fast path decodes with `base64-simd`, the typed path with `base64`: they must
        /// accept the same texts (else the fast path would answer `Ok` what the typed path
        /// answers `ProcessingFailed`) and decode them alike.
        #[test]
        fn simd_base64_decodes_exactly_as_the_typed_path(text in base64_text()) {
            let simd = STANDARD.decode_to_vec(&text).ok();
            let reference = base64::engine::general_purpose::STANDARD.decode(&text).ok();
            prop_assert_eq!(simd, reference);
        }

        /// Copying the message's base64 for the line's copied prefix gives exactly the line's
        /// own encoding, at every prefix length and alignment.
        #[test]
        fn a_line_encoded_from_its_message_is_its_own_encoding(
            message in prop::collection::vec(any::<u8>(), 0..300),
            copied in any::<prop::sample::Index>(),
            tail in prop::collection::vec(any::<u8>(), 0..100),
        ) {
            let copied = copied.index(message.len() + 1);
            let line = [&message[..copied], &tail[..]].concat();
            let data = base64::engine::general_purpose::STANDARD.encode(&message);
            let mut out = b"prefix".to_vec();
            encode_line(data.as_bytes(), &line, copied, &mut out).unwrap();
            let reference = base64::engine::general_purpose::STANDARD.encode(&line);
            prop_assert_eq!(&out[6..], reference.as_bytes());
        }

        #[test]
        fn simd_base64_encodes_exactly_as_the_typed_path(
            bytes in prop::collection::vec(any::<u8>(), 0..400),
        ) {
            let mut simd = b"prefix".to_vec();
            STANDARD.encode_append(&bytes, &mut simd);
            let reference = base64::engine::general_purpose::STANDARD.encode(&bytes);
            prop_assert_eq!(&simd[6..], reference.as_bytes());
        }
    }
}
