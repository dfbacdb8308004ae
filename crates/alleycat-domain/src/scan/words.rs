//! Word-at-a-time byte work shared by the scanners (and the transformer's envelope scanner):
//! finding where a string stops, reading runs of digits eight at a time.

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
/// or a non-ASCII byte), sixteen bytes (two words) at a time: uuids, names, and the
/// transformer's record ids and sequence numbers are long enough for this to matter (a byte loop
/// took a fifth of the message scan; one word at a time, a branch every eight bytes cost more),
/// and too short for a SIMD search's setup to pay (`memchr` measured slower on them).
pub(super) fn find_string_stop(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    let mut pairs = bytes.chunks_exact(16);
    for pair in &mut pairs {
        let (low, high) = pair.split_at(8);
        let low = string_stops(u64::from_le_bytes(low.try_into().ok()?));
        let high = string_stops(u64::from_le_bytes(high.try_into().ok()?));
        if low | high != 0 {
            return Some(at + first_flagged(low, high));
        }
        at += 16;
    }
    let mut words = pairs.remainder().chunks_exact(8);
    if let Some(word) = words.next() {
        let stops = string_stops(u64::from_le_bytes(word.try_into().ok()?));
        if stops != 0 {
            return Some(at + (stops.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = words.remainder();
    tail.iter()
        .position(|&b| STRING_STOP[usize::from(b)])
        .map(|i| at + i)
}

/// The index of the first flagged byte of two words' flags, `low`'s bytes first.
fn first_flagged(low: u64, high: u64) -> usize {
    if low != 0 {
        (low.trailing_zeros() / 8) as usize
    } else {
        8 + (high.trailing_zeros() / 8) as usize
    }
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
pub(crate) const POW10_INT: [u64; 9] = [
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
