//! Which records and documents a rebuild touches: classes, excluded racers, and the window of
//! races whose per-race views are rebuilt.

use std::collections::BTreeSet;

use alleycat_domain::RaceClock;

/// The classes a deployment has.
pub const CLASSES: std::ops::RangeInclusive<u8> = 1..=6;

/// What a rebuild covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// Classes rebuilt; empty means every class.
    pub classes: BTreeSet<u8>,
    /// Racers whose records move no view.
    pub excluded: BTreeSet<u32>,
    /// Per-race views are rebuilt for races whose start window ends after this, epoch ms.
    pub since_ms: Option<u64>,
    /// … and begins before this, epoch ms.
    pub until_ms: Option<u64>,
}

impl Scope {
    /// Whether `class_id` is rebuilt.
    pub fn has_class(&self, class_id: u8) -> bool {
        self.classes.is_empty() || self.classes.contains(&class_id)
    }

    /// The classes rebuilt.
    pub fn classes(&self) -> Vec<u8> {
        CLASSES.filter(|c| self.has_class(*c)).collect()
    }

    /// Whether `racer_id`'s records are dropped.
    pub fn excludes(&self, racer_id: u32) -> bool {
        self.excluded.contains(&racer_id)
    }

    /// Whether race `race_id`'s start window `[opens, opens + window)` meets `[since, until)`:
    /// its standings, finals and traces are rebuilt.
    pub fn has_race(&self, race_id: u64, clock: RaceClock) -> bool {
        let opens = clock.race_opens_at(race_id);
        let ends = clock.race_opens_at(race_id.saturating_add(1));
        self.since_ms.is_none_or(|since| ends > since)
            && self.until_ms.is_none_or(|until| opens < until)
    }
}

/// Parses a time given as RFC 3339 (`2026-05-01T18:00:00Z`) or as epoch milliseconds.
pub fn parse_time(text: &str) -> Result<u64, String> {
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    let time = chrono::DateTime::parse_from_rfc3339(text)
        .map_err(|e| format!("{text:?} is neither RFC 3339 nor epoch milliseconds: {e}"))?;
    u64::try_from(time.timestamp_millis()).map_err(|_| format!("{text:?} is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_rfc_3339_or_epoch_milliseconds() {
        assert_eq!(parse_time("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(
            parse_time("2023-11-14T23:13:20+01:00"),
            Ok(1_700_000_000_000)
        );
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn a_race_is_in_the_window_if_its_start_window_meets_it() {
        let clock = RaceClock::new(300, 300);
        let scope = Scope {
            since_ms: Some(600_000),
            until_ms: Some(900_001),
            ..Scope::default()
        };
        // Race 1 starts in [300 000, 600 000): ends exactly at since, so outside.
        assert!(!scope.has_race(1, clock));
        assert!(scope.has_race(2, clock));
        assert!(scope.has_race(3, clock));
        assert!(!scope.has_race(4, clock));
        assert!(Scope::default().has_race(0, clock));
    }

    #[test]
    fn no_class_given_means_every_class() {
        assert_eq!(Scope::default().classes(), [1, 2, 3, 4, 5, 6]);
        let scope = Scope {
            classes: [2, 9].into(),
            ..Scope::default()
        };
        assert_eq!(scope.classes(), [2]);
        assert!(!scope.has_class(3));
    }
}
