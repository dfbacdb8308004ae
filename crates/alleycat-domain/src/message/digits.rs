//! Decimal digits written straight into a line: each number is built in a small array, copied
//! into the line as one fixed-size block and cut to its length. A formatter's text (itoa's) is
//! copied by a call to `memcpy` of a length known only at run time; for the dozen bytes of an
//! output and an arrival time, those calls and itoa's own cost about 4% of the transformer's time.

/// Appends the decimal digits of `value`, as itoa (and serde_json) write them.
pub(crate) fn write_u64(out: &mut Vec<u8>, value: u64) {
    const SIXTEEN: u64 = 10_000_000_000_000_000;
    if value >= SIXTEEN {
        // At most four digits before sixteen.
        write_u64(out, value / SIXTEEN);
        return append_cut(out, &sixteen_digits(value % SIXTEEN).to_le_bytes(), 16);
    }
    let len = value.checked_ilog10().map_or(1, |log| log as usize + 1);
    // Shifted down past the leading zeros.
    append_cut(
        out,
        &(sixteen_digits(value) >> (8 * (16 - len))).to_le_bytes(),
        len,
    );
}

/// The sixteen decimal digits of `value` (below 10^16), leading zeros included, as ASCII bytes of
/// a little-endian word, the first digit in the lowest byte.
fn sixteen_digits(value: u64) -> u128 {
    u128::from(eight_digits(value / 100_000_000))
        | u128::from(eight_digits(value % 100_000_000)) << 64
}

/// The eight decimal digits of `value` (below 10^8), leading zeros included, as ASCII bytes of
/// a little-endian word (the first digit in the lowest byte). All digits at once, in lanes of one
/// word: two lanes of four digits, four of two, eight of one, each split by one multiplication
/// (`x / 100` is `x × 10486 >> 20` below 10^4, `x / 10` is `x × 103 >> 10` below 100; no lane's
/// product reaches the next lane, and what a shift brings down from one is masked off). Digit by
/// digit, an arrival time was a chain of a dozen dependent divisions.
fn eight_digits(value: u64) -> u64 {
    let fours = (value / 10_000) | ((value % 10_000) << 32);
    let hundreds = ((fours * 10_486) >> 20) & 0x0000_007f_0000_007f;
    let pairs = ((fours - 100 * hundreds) << 16) | hundreds;
    let tens = ((pairs * 103) >> 10) & 0x000f_000f_000f_000f;
    let digits = ((pairs - 10 * tens) << 8) | tens;
    digits + 0x3030_3030_3030_3030
}

/// Appends `units / 10^4` as serde_json writes that double (see [`crate::Output::write_json`]):
/// the whole part, a point, and the four decimals without trailing zeros (`.0` if all are).
pub(crate) fn write_ten_thousandths(out: &mut Vec<u8>, units: u32) {
    let (whole, frac) = (units / 10_000, units % 10_000);
    let kept = match frac {
        0 => 1,
        _ if frac % 1000 == 0 => 1,
        _ if frac % 100 == 0 => 2,
        _ if frac % 10 == 0 => 3,
        _ => 4,
    };
    if whole >= 10_000 {
        write_u64(out, u64::from(whole));
        let decimals = eight_digits(u64::from(frac)) >> 32;
        let text = u64::from(b'.') | decimals << 8;
        return append_cut(out, &text.to_le_bytes(), 1 + kept);
    }
    // Below 10^8: four digits of the whole part (leading zeros included) and four decimals; the
    // point goes between them, and the whole part's leading zeros are shifted out.
    let whole_len = whole.checked_ilog10().map_or(1, |log| log as usize + 1);
    let digits = eight_digits(u64::from(units));
    let text =
        u128::from(digits & 0xffff_ffff) | u128::from(b'.') << 32 | u128::from(digits >> 32) << 40;
    append_cut(
        out,
        &(text >> (8 * (4 - whole_len))).to_le_bytes(),
        whole_len + 1 + kept,
    );
}

/// Appends `scaled / 10^decimals` (`decimals` at most 5) with exactly `decimals` decimals, or
/// `.0` for none.
pub(crate) fn write_fixed(out: &mut Vec<u8>, scaled: u64, decimals: usize) {
    let scale = crate::scan::POW10_INT[decimals];
    write_u64(out, scaled / scale);
    let mut text = [b'.', b'0', b'0', b'0', b'0', b'0'];
    let mut frac = scaled % scale;
    for at in (1..=decimals).rev() {
        // A single digit: the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let digit = (frac % 10) as u8;
        text[at] = b'0' + digit;
        frac /= 10;
    }
    append_cut(out, &text, decimals.max(1) + 1);
}

/// Appends the first `len` bytes of `text`: the whole array is copied (a fixed-size copy is a
/// couple of moves, not a call) and the line cut back to length.
pub(crate) fn append_cut<const N: usize>(out: &mut Vec<u8>, text: &[u8; N], len: usize) {
    let end = out.len() + len.min(N);
    out.extend_from_slice(text);
    out.truncate(end);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{eight_digits, write_fixed, write_u64};

    fn written(value: u64) -> String {
        let mut out = b"x".to_vec();
        write_u64(&mut out, value);
        String::from_utf8(out[1..].to_vec()).unwrap()
    }

    #[test]
    fn writes_integers_as_itoa_does_at_every_length() {
        for digits in 0..=19 {
            let power = 10u64.pow(digits);
            for value in [power - 1, power, power + 1, power / 10 * 9] {
                assert_eq!(written(value), value.to_string());
            }
        }
        assert_eq!(written(u64::MAX), u64::MAX.to_string());
    }

    /// Every lane value of the first split (0 to 9,999) in both lanes, so every later lane too.
    #[test]
    fn eight_digits_are_exact_in_every_lane() {
        for four in 0..10_000u64 {
            for value in [four, four * 10_000, four * 10_000 + 9_999 - four] {
                let text = eight_digits(value).to_le_bytes();
                assert_eq!(text, format!("{value:08}").as_bytes(), "{value}");
            }
        }
    }

    #[test]
    fn writes_fixed_point_with_its_decimals() {
        for (scaled, decimals, text) in [
            (0, 0, "0.0"),
            (742, 1, "74.2"),
            (740, 1, "74.0"),
            (5, 2, "0.05"),
            (123_456, 5, "1.23456"),
            (100_000, 5, "1.00000"),
        ] {
            let mut out = Vec::new();
            write_fixed(&mut out, scaled, decimals);
            assert_eq!(out, text.as_bytes(), "{scaled} {decimals}");
        }
    }

    proptest! {
        #[test]
        fn writes_any_integer_as_itoa_does(value in any::<u64>()) {
            let mut reference = itoa::Buffer::new();
            prop_assert_eq!(written(value), reference.format(value));
        }
    }
}
