//! Which race a ride belongs to, and when a race's data window closes.

use serde::{Deserialize, Serialize};

/// Race length and start window: every class runs back-to-back races of `window_seconds`; a
/// racer who starts inside a window joins its race and rides `race_seconds` from their own start.
///
/// Both are configuration because tests and demos use short races; production uses 300 s / 300 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RaceClock {
    /// How long each racer rides; also the highest valid `second` of a message.
    pub race_seconds: u16,
    /// How often a new race of a class starts.
    pub window_seconds: u32,
}

impl Default for RaceClock {
    fn default() -> Self {
        Self {
            race_seconds: 300,
            window_seconds: 300,
        }
    }
}

impl RaceClock {
    /// A clock with the given race length and start window (both at least one second).
    pub fn new(race_seconds: u16, window_seconds: u32) -> Self {
        Self {
            race_seconds: race_seconds.max(1),
            window_seconds: window_seconds.max(1),
        }
    }

    fn window_ms(self) -> u64 {
        u64::from(self.window_seconds) * 1000
    }

    /// The race a racer joins when starting at `start_ms` (epoch milliseconds):
    /// `floor(start_ms / window)`.
    pub fn race_id_at(self, start_ms: u64) -> u64 {
        start_ms / self.window_ms()
    }

    /// Epoch milliseconds at which race `race_id` opens for starts.
    pub fn race_opens_at(self, race_id: u64) -> u64 {
        race_id.saturating_mul(self.window_ms())
    }

    /// Epoch milliseconds after which race `race_id` can receive no more data: the last racer
    /// starts just before the window closes and rides a full race (so 9 min 59 s of data for the
    /// default clock).
    pub fn race_closes_at(self, race_id: u64) -> u64 {
        self.race_opens_at(race_id)
            .saturating_add(self.window_ms())
            .saturating_add(u64::from(self.race_seconds) * 1000)
    }

    /// Whether race `race_id` is over at `now_ms`: its standings are then final results.
    pub fn is_over(self, race_id: u64, now_ms: u64) -> bool {
        now_ms >= self.race_closes_at(race_id)
    }
}

/// A race is one class's race in one window: two classes race in the same window with the same
/// `raceId`, so the class is part of the identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RaceKey {
    /// Class 1–6.
    pub class_id: u8,
    /// The race's window number.
    pub race_id: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn race_id_is_the_start_window() {
        let clock = RaceClock::default();
        assert_eq!(clock.race_id_at(1_620_051_628_707), 5_400_172);
        assert_eq!(clock.race_id_at(5_400_172 * 300_000), 5_400_172);
        assert_eq!(clock.race_id_at(5_400_173 * 300_000 - 1), 5_400_172);
    }

    #[test]
    fn a_race_collects_data_until_the_last_starter_finishes() {
        let clock = RaceClock::default();
        let opens = clock.race_opens_at(10);
        assert_eq!(clock.race_closes_at(10) - opens, 600_000);
        // The last possible starter begins 1 ms before the window closes and rides 300 s.
        let last_start = opens + 300_000 - 1;
        assert_eq!(clock.race_id_at(last_start), 10);
        assert!(!clock.is_over(10, last_start + 299_999));
        assert!(clock.is_over(10, opens + 600_000));
    }

    #[test]
    fn short_races_are_configurable() {
        let clock = RaceClock::new(20, 30);
        assert_eq!(clock.race_id_at(95_000), 3);
        assert_eq!(clock.race_closes_at(3), 90_000 + 30_000 + 20_000);
    }
}
