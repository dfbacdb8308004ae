//! The watts-like score every view ranks by.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

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
