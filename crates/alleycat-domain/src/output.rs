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
        let scaled = (value * f64::from(Self::SCALE)).round();
        if scaled.is_finite() && (0.0..=f64::from(u32::MAX)).contains(&scaled) {
            // The range check above makes the cast exact.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some(Self(scaled as u32))
        } else {
            None
        }
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
        let mut units = u64::from(self.0);
        let mut decimals = 4;
        while decimals > 0 && units.is_multiple_of(10) {
            units /= 10;
            decimals -= 1;
        }
        crate::message::write_fixed(out, units, decimals);
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
