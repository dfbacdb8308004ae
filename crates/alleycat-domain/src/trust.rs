//! What makes a record trustworthy: a plausible ride, published by whoever holds the racer.
//!
//! Every view is a max-merge, so one forged record would stand forever. Two rules keep them out,
//! decided here once for every consumer (race aggregator, leaderboard writer, transformer,
//! history merger, and the rebuild):
//!
//! - **Plausibility** ([`Plausibility::check`]): the record's race is the window of its ride's
//!   start, the start is not in the future of the record's arrival, and the record arrived while
//!   its race could still receive data. Arrival is what the platform stamped (Kinesis's
//!   `approximateArrivalTimestamp`), never what the device says. Demos compress time by sending
//!   seconds faster than real time: that moves arrival earlier, never the start later, so a
//!   compressed ride stays plausible.
//! - **Holding** ([`check_holder`]): a record published over MQTT carries its publisher's
//!   identity (`identityId`, stamped by the IoT rule) and counts only if that identity holds the
//!   racer ([`Claim`]). A record without one was put to the stream by a trusted producer (an IAM
//!   principal, such as the simulator) and needs no claim.

use serde::{Deserialize, Serialize};

use crate::message::{Reading, Rejection};
use crate::race::RaceClock;

/// How far device clocks may disagree with the platform's, both ways, unless configured: a
/// phone or browser clock minutes off is common; more than that is not a clock but a forgery.
pub const DEFAULT_CLOCK_SKEW_SECONDS: u32 = 120;

/// How long a claim lasts after its holder last claimed it, unless configured: a day of
/// inactivity frees a racer whose rider lost their identity (a cleared browser).
pub const DEFAULT_CLAIM_TTL_SECONDS: u32 = 86_400;

/// The plausibility rules of a ride, with the race clock and the clock-skew allowance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plausibility {
    /// Race length and start window.
    pub clock: RaceClock,
    /// How far a device's clock may be ahead of or behind the platform's, in seconds.
    pub clock_skew_seconds: u32,
}

impl Default for Plausibility {
    fn default() -> Self {
        Self::new(RaceClock::default(), DEFAULT_CLOCK_SKEW_SECONDS)
    }
}

impl Plausibility {
    /// The rules for `clock` with `clock_skew_seconds` of allowance.
    pub fn new(clock: RaceClock, clock_skew_seconds: u32) -> Self {
        Self {
            clock,
            clock_skew_seconds,
        }
    }

    fn skew_ms(self) -> u64 {
        u64::from(self.clock_skew_seconds) * 1000
    }

    /// When the ride started, by the device's clock: the timestamp of second 1.
    pub fn ride_start_ms(reading: &Reading<'_>) -> u64 {
        reading
            .device_timestamp
            .saturating_sub((u64::from(reading.second) - 1) * 1000)
    }

    /// Checks a validated reading that the platform received at `arrival_ms`: its race is the
    /// window of its start ([`Rejection::RaceMismatch`]), the start is at most the skew after
    /// arrival ([`Rejection::Future`]), and it arrived at most the skew after its race closed
    /// ([`Rejection::Closed`], which also covers every ancient race).
    pub fn check(self, reading: &Reading<'_>, arrival_ms: u64) -> Result<(), Rejection> {
        let start_ms = Self::ride_start_ms(reading);
        let start_race_id = self.clock.race_id_at(start_ms);
        if start_race_id != reading.race_id {
            return Err(Rejection::RaceMismatch {
                race_id: reading.race_id,
                start_race_id,
            });
        }
        if start_ms > arrival_ms.saturating_add(self.skew_ms()) {
            return Err(Rejection::Future {
                start_ms,
                arrival_ms,
            });
        }
        let closes_at = self.clock.race_closes_at(reading.race_id);
        if arrival_ms > closes_at.saturating_add(self.skew_ms()) {
            return Err(Rejection::Closed {
                race_id: reading.race_id,
                arrival_ms,
            });
        }
        Ok(())
    }

    /// Stamps the platform's arrival on `reading` and checks it ([`Self::check`]): what every
    /// stream consumer does first with a validated reading.
    pub fn admit(self, reading: &mut Reading<'_>, arrival_ms: u64) -> Result<(), Rejection> {
        reading.arrived_at = Some(arrival_ms);
        self.check(reading, arrival_ms)
    }
}

/// A racer held by an identity: first claim wins; the holder renews it by claiming again, and it
/// lapses `ttl` after the last claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    /// The racer held.
    pub racer_id: u32,
    /// Who holds it: a Cognito identity id on AWS, a local identity on the embedded stack.
    pub identity_id: String,
    /// When this holder first claimed it (renewals keep it), epoch milliseconds.
    pub claimed_at: u64,
    /// When the claim lapses unless renewed, epoch milliseconds.
    pub expires_at: u64,
}

/// A claim refused because another identity holds the racer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("racer {racer_id} is held by another rider")]
pub struct Taken {
    /// The racer asked for.
    pub racer_id: u32,
    /// When the holder's claim lapses, epoch milliseconds.
    pub expires_at: u64,
}

impl Claim {
    /// Whether the claim is in force at `ms`.
    pub fn is_live_at(&self, ms: u64) -> bool {
        ms < self.expires_at
    }

    /// The claim `identity_id` gets by asking for `racer_id` at `now_ms`, given the stored one:
    /// a renewal (same `claimed_at`, later expiry) if the stored claim is the identity's own,
    /// lapsed or not (nobody took the racer in between); a new tenure if the racer is free or
    /// another identity's claim lapsed; [`Taken`] otherwise. Stores make
    /// this decision atomic with a conditional write on the claim they read.
    pub fn take(
        stored: Option<&Claim>,
        racer_id: u32,
        identity_id: &str,
        now_ms: u64,
        ttl_seconds: u32,
    ) -> Result<Claim, Taken> {
        let expires_at = now_ms.saturating_add(u64::from(ttl_seconds) * 1000);
        let claimed_at = match stored {
            Some(held) if held.identity_id == identity_id => held.claimed_at,
            Some(held) if held.is_live_at(now_ms) => {
                return Err(Taken {
                    racer_id,
                    expires_at: held.expires_at,
                });
            }
            _ => now_ms,
        };
        Ok(Claim {
            racer_id,
            identity_id: identity_id.to_owned(),
            claimed_at,
            expires_at,
        })
    }
}

/// Whether `reading` may move a view, given its racer's claim: a trusted producer's record (no
/// identity) always; an MQTT publisher's only if that identity held the racer when the record
/// arrived (a record without an arrival is judged by the identity alone).
pub fn check_holder(reading: &Reading<'_>, claim: Option<&Claim>) -> Result<(), Rejection> {
    let Some(identity) = reading.identity_id.as_deref() else {
        return Ok(());
    };
    let held = claim.is_some_and(|claim| {
        claim.racer_id == reading.racer_id
            && claim.identity_id == identity
            && reading
                .arrived_at
                .is_none_or(|at| claim.claimed_at <= at && claim.is_live_at(at))
    });
    if held {
        Ok(())
    } else {
        Err(Rejection::NotHolder {
            racer_id: reading.racer_id,
        })
    }
}

#[cfg(test)]
mod tests;
