//! The watts-like score every view ranks by.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A non-negative decimal as a device wrote it, `mantissa / 10^decimals`: a cadence or a
/// resistance before it becomes a double.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decimal {
    /// The digits, the point left out (below 10^14).
    pub(crate) mantissa: u64,
    /// Digits after the point (at most 5 where devices' numbers are read).
    pub(crate) decimals: usize,
}

impl Decimal {
    /// The double nearest the decimal: one correctly rounded division, as the mantissa (below
    /// 2^53) and the power of ten are exact doubles.
    pub(crate) fn to_f64(self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let mantissa = self.mantissa as f64;
        mantissa / crate::message::POW10[self.decimals]
    }
}

/// A racer's output, kept as an exact count of ten-thousandths.
///
/// DESIGN rounds every output to 4 decimals, so a fixed-point integer holds it exactly: max-merges
/// compare integers (no float equality traps), views hash and order it, and it round-trips through
/// JSON as the same decimal number the original system printed (`123.45`, not `123.45000000001`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Output(u32);

impl Output {
    /// Ten-thousandths per unit: outputs carry 4 decimals.
    pub const SCALE: u32 = 10_000;

    /// The score of one second of riding: `((cadence + 35) × (resistance + 65)) / 100`, rounded to
    /// 4 decimals. Callers pass validated inputs (finite, within the message's ranges).
    pub fn from_effort(cadence: f64, resistance: f64) -> Self {
        let raw = (cadence + 35.0) * (resistance + 65.0) / 100.0;
        Self::from_f64(raw).unwrap_or_default()
    }

    /// [`Self::from_effort`] of a cadence and a resistance as the device wrote them (valid: at most
    /// 250 and 100), the same output computed in integers: the doubles' chain (two divisions,
    /// three roundings) was the longest wait of the transformer's record.
    ///
    /// Why it is the same: the exact score in ten-thousandths is `N / 10^10`, `N` the product
    /// below with both decimals scaled to five places; `from_effort` computes it in six correctly
    /// rounded steps, each off by at most 2^-53 of its value (the sums' inputs are themselves
    /// within that of exact), so its double is within 7 × 2^-53 × 4.71e6 < 4e-9 of the exact
    /// score. Unless the exact score is within 2e-7 of a half (checked below, in integers), both
    /// round to the same integer; nearer a half, the doubles decide, as `from_effort` does.
    pub(crate) fn from_decimal_effort(cadence: Decimal, resistance: Decimal) -> Self {
        const SCALE_5: [u64; 6] = [100_000, 10_000, 1_000, 100, 10, 1];
        const DENOMINATOR: u64 = 10_000_000_000;
        let (Some(&c_scale), Some(&r_scale)) = (
            SCALE_5.get(cadence.decimals),
            SCALE_5.get(resistance.decimals),
        ) else {
            return Self::from_effort(cadence.to_f64(), resistance.to_f64());
        };
        // For valid inputs below 285e5 × 165e5 × 100 < 2^63; checked all the same.
        let numerator = cadence
            .mantissa
            .checked_mul(c_scale)
            .zip(resistance.mantissa.checked_mul(r_scale))
            .and_then(|(c, r)| (c + 3_500_000).checked_mul(r + 6_500_000))
            .and_then(|product| product.checked_mul(100));
        let Some(numerator) = numerator else {
            return Self::from_effort(cadence.to_f64(), resistance.to_f64());
        };
        let (whole, rest) = (numerator / DENOMINATOR, numerator % DENOMINATOR);
        // `rest / 10^10` within 2e-7 of one half.
        if (2 * rest).abs_diff(DENOMINATOR) <= 2_000 {
            return Self::from_effort(cadence.to_f64(), resistance.to_f64());
        }
        match u32::try_from(whole) {
            Ok(whole) => Self(whole + u32::from(2 * rest > DENOMINATOR)),
            Err(_) => Self::from_effort(cadence.to_f64(), resistance.to_f64()),
        }
    }

    /// Rounds a decimal to the nearest ten-thousandth; `None` when it is negative, not finite or
    /// too large to be an output (the views reject it rather than clamp it).
    pub fn from_f64(value: f64) -> Option<Self> {
        let scaled = value * f64::from(Self::SCALE);
        // Exactly the values `f64::round` takes into `0..=u32::MAX` (NaN is in no range).
        if !(scaled > -0.5 && scaled < f64::from(u32::MAX) + 0.5) {
            return None;
        }
        // `f64::round` (half away from zero) by hand: x86-64's baseline has no rounding
        // instruction, and the call to libm's `round` was 1.5% of the transformer's time. In this
        // range the cast truncates (saturating at 0 below it) and `scaled - whole` is exact, so
        // comparing the fraction with one half decides as `round` does (a test holds them
        // together).
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = scaled as u32;
        Some(Self(whole + u32::from(scaled - f64::from(whole) >= 0.5)))
    }

    /// Builds an output from ten-thousandths (what the stores and tests count in).
    pub const fn from_ten_thousandths(units: u32) -> Self {
        Self(units)
    }

    /// The output in ten-thousandths.
    pub const fn ten_thousandths(self) -> u32 {
        self.0
    }

    /// The output as a decimal number, for display and JSON.
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / f64::from(Self::SCALE)
    }

    /// Appends the output as JSON: exactly what serde_json writes for [`Self::as_f64`] (`151.788`,
    /// `151.0`, `0.0001`), but from the integer, without the float formatter (a fifth of the
    /// transformer's time went into formatting its three floats).
    ///
    /// Why it is the same text: `n / 10^4` is the double nearest the decimal, a decimal of at most
    /// 10 significant digits, and decimals of up to 15 significant digits map to distinct doubles;
    /// so the shortest text that reads back as the double is the decimal itself without trailing
    /// zeros, which serde_json (ryu) writes in plain notation for every magnitude an `Output` has
    /// (at most 4 zeros after the point, at most 6 digits before it), with `.0` for whole numbers.
    pub fn write_json(self, out: &mut Vec<u8>) {
        crate::message::write_ten_thousandths(out, self.0);
    }
}

#[cfg(test)]
mod tests;

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / Self::SCALE;
        let frac = self.0 % Self::SCALE;
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let mut digits = format!("{frac:04}");
        while digits.ends_with('0') {
            digits.pop();
        }
        write!(f, "{whole}.{digits}")
    }
}

impl Serialize for Output {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // `n / 10^4` is the double nearest the decimal, so the shortest round-trip form that
        // serde_json prints is that decimal.
        serializer.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Output {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        Self::from_f64(value).ok_or_else(|| {
            de::Error::invalid_value(de::Unexpected::Float(value), &"a non-negative output")
        })
    }
}
