//! Where a message's text is already its line's: the prefix the line copies instead of
//! formatting every field again, and the tracker that finds it while [`super::scan`] reads.

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
pub(super) const LINE_KEYS: usize = 10;

/// Where `key` is in the line's order up to `resistance`, or [`LINE_KEYS`] if it is not there.
/// (A `match`, so that it compiles to a few loads rather than calls to `memcmp`.)
pub(super) fn line_position(key: &[u8]) -> usize {
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
pub(super) fn line_form(text: &[u8]) -> Option<bool> {
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

/// Follows a message as [`super::scan`] reads it, to find its [`LinePrefix`].
pub(super) struct LineTracker<'a> {
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
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            next: 0,
            in_line: bytes.first() == Some(&b'{'),
            cadence: None,
            resistance: None,
        }
    }

    /// A key read from `key_start`, its value starting at `value_start`.
    pub(super) fn key(&mut self, key: &[u8], key_start: usize, value_start: usize) {
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
    pub(super) fn value(&mut self, key: &[u8], start: usize, end: usize, spaced: bool) {
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

    pub(super) fn finish(self) -> Option<LinePrefix> {
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
