//! One racer: who they are (the same in every run) and how they ride this race (seeded).
//!
//! A racer's **identity** (name and ability) is a function of the racer id alone. Their **ride**
//! in a race varies with the seed: a day's form, a pacing style, when they start, and the noise of
//! every second. Cadence and resistance follow curves over the race (warm-up, fatigue, a
//! finishing sprint, the course's hills, gear changes) with noise, always inside the bounds of the
//! original Alleycat simulator: cadence 30-90 rpm, resistance 33-86 %.

use crate::names::racer_name;
use crate::rng::{Rng, derive};

/// Lowest cadence sent (rpm).
pub const MIN_CADENCE: f64 = 30.0;
/// Highest cadence sent (rpm).
pub const MAX_CADENCE: f64 = 90.0;
/// Lowest resistance sent (%).
pub const MIN_RESISTANCE: f64 = 33.0;
/// Highest resistance sent (%).
pub const MAX_RESISTANCE: f64 = 86.0;

const ABILITY_KEY: u64 = 0x6162_696c_6974_7901;
const FORM_KEY: u64 = 0x666f_726d_0000_0002;
const NOISE_KEY: u64 = 0x6e6f_6973_6500_0003;
const COURSE_KEY: u64 = 0x636f_7572_7365_0004;

/// Who a racer is: the same person in every run, whatever the seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// The racer id.
    pub racer_id: u32,
    /// Display name, e.g. "Adell Okafor".
    pub name: String,
    /// Fitness in `[0, 1]`: stronger racers pedal faster against more resistance and tire less.
    pub ability: f64,
}

impl Identity {
    /// The identity of racer `racer_id`.
    pub fn of(racer_id: u32) -> Self {
        let mut rng = Rng::new(derive(ABILITY_KEY, u64::from(racer_id)));
        // Triangular on [0, 1]: most racers are average, a few are very strong or weak.
        let ability = f64::midpoint(rng.unit(), rng.unit());
        Self {
            racer_id,
            name: racer_name(racer_id),
            ability,
        }
    }
}

/// How a racer spreads their effort over a race.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// The same effort throughout.
    Even,
    /// Starts hard and fades.
    FastStart,
    /// Saves energy for the second half.
    NegativeSplit,
    /// Holds back, then a long, hard sprint.
    Sprinter,
}

/// The course of one race: a resistance profile shared by every racer of the class (the hills),
/// as offsets at evenly spaced knots, linearly interpolated.
#[derive(Clone, Debug, PartialEq)]
pub struct Course {
    knots: [f64; 8],
}

impl Course {
    /// The course of class `class_id` in the race seeded by `seed`.
    pub fn new(seed: u64, class_id: u8) -> Self {
        let mut rng = Rng::new(derive(derive(seed, u64::from(class_id)), COURSE_KEY));
        let mut knots = [0.0; 8];
        for knot in &mut knots {
            *knot = rng.range(-7.0, 7.0);
        }
        Self { knots }
    }

    /// Resistance offset at `progress` in `[0, 1]`.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    pub fn at(&self, progress: f64) -> f64 {
        let last = (self.knots.len() - 1) as f64;
        let x = progress.clamp(0.0, 1.0) * last;
        let i = (x as usize).min(self.knots.len() - 2);
        let frac = x - i as f64;
        self.knots[i] + (self.knots[i + 1] - self.knots[i]) * frac
    }
}

/// One second of effort, in the units the message carries: cadence in tenths of an rpm,
/// resistance in whole percent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Effort {
    /// Cadence × 10 (300-900).
    pub cadence_tenths: u16,
    /// Resistance (33-86).
    pub resistance: u8,
}

impl Effort {
    /// Cadence in rpm.
    pub fn cadence(self) -> f64 {
        f64::from(self.cadence_tenths) / 10.0
    }

    /// Resistance in percent.
    pub fn resistance(self) -> f64 {
        f64::from(self.resistance)
    }
}

/// A racer riding one race: their identity, this race's form and style, and the state of the
/// noise, advanced one second at a time.
#[derive(Clone, Debug)]
pub struct Ride {
    strength: f64,
    style: Style,
    noise: Rng,
    cadence_drift: f64,
    gear: f64,
}

impl Ride {
    /// Racer `identity`'s ride in the race seeded by `seed`.
    pub fn new(seed: u64, identity: &Identity) -> Self {
        let racer_key = derive(seed, u64::from(identity.racer_id));
        let mut form = Rng::new(derive(racer_key, FORM_KEY));
        let strength = (identity.ability + 0.07 * form.normal()).clamp(0.02, 0.98);
        let style = match form.below(4) {
            0 => Style::Even,
            1 => Style::FastStart,
            2 => Style::NegativeSplit,
            _ => Style::Sprinter,
        };
        let mut noise = Rng::new(derive(racer_key, NOISE_KEY));
        let gear = noise.range(-4.0, 4.0);
        Self {
            strength,
            style,
            noise,
            cadence_drift: 0.0,
            gear,
        }
    }

    /// This race's strength: ability adjusted by the day's form.
    pub fn strength(&self) -> f64 {
        self.strength
    }

    /// This race's pacing style.
    pub fn style(&self) -> Style {
        self.style
    }

    /// The effort of `second` (1..=`race_seconds`). Call once per second, in order: the noise is a
    /// random walk.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::suboptimal_flops
    )]
    pub fn next(&mut self, second: u16, race_seconds: u16, course: &Course) -> Effort {
        let s = f64::from(second);
        let total = f64::from(race_seconds);
        let progress = if race_seconds > 1 {
            (s - 1.0) / (total - 1.0)
        } else {
            1.0
        };
        let strength = self.strength;

        // Warm-up: the first 15 s (shorter in short races) start slow.
        let warm_len = (total / 10.0).clamp(1.0, 15.0);
        let warm_up = if s < warm_len {
            -14.0 * (1.0 - s / warm_len)
        } else {
            0.0
        };
        let pacing = match self.style {
            Style::Even => 0.0,
            Style::FastStart => 5.0 * (1.0 - 2.0 * progress),
            Style::NegativeSplit => 5.0 * (2.0 * progress - 1.0),
            Style::Sprinter => -2.0,
        };
        let fatigue = -9.0 * (1.0 - strength) * progress;
        // The finishing sprint: the last 20 s (shorter in short races), building up.
        let sprint_len = (total / 15.0).clamp(1.0, 20.0);
        let into_sprint = s - (total - sprint_len);
        let sprint = if into_sprint > 0.0 {
            let bonus = if self.style == Style::Sprinter {
                6.0
            } else {
                0.0
            };
            (5.0 + 8.0 * strength + bonus) * (into_sprint / sprint_len)
        } else {
            0.0
        };

        self.cadence_drift = 0.92 * self.cadence_drift + 1.1 * self.noise.normal();
        let cadence = 50.0
            + 30.0 * strength
            + warm_up
            + pacing
            + fatigue
            + sprint
            + self.cadence_drift
            + 0.9 * self.noise.normal();

        // Now and then a gear change; gears drift back towards the racer's usual resistance.
        if self.noise.below(20) == 0 {
            self.gear += self.noise.range(-6.0, 6.0);
        }
        self.gear *= 0.985;
        let resistance = 40.0 + 26.0 * strength + course.at(progress) + self.gear
            - 4.0 * (1.0 - strength) * progress
            + if into_sprint > 0.0 { 3.0 } else { 0.0 }
            + 0.6 * self.noise.normal();

        Effort {
            cadence_tenths: (cadence.clamp(MIN_CADENCE, MAX_CADENCE) * 10.0).round() as u16,
            resistance: resistance.clamp(MIN_RESISTANCE, MAX_RESISTANCE).round() as u8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_does_not_depend_on_the_seed() {
        let a = Identity::of(42);
        assert_eq!(a, Identity::of(42));
        assert!((0.0..=1.0).contains(&a.ability));
        assert!((Identity::of(42).ability - Identity::of(43).ability).abs() > 0.0);
    }

    #[test]
    fn efforts_stay_within_the_original_bounds() {
        let course = Course::new(1, 3);
        for racer_id in 0..200 {
            let identity = Identity::of(racer_id);
            let mut ride = Ride::new(7, &identity);
            for second in 1..=300 {
                let effort = ride.next(second, 300, &course);
                assert!((300..=900).contains(&effort.cadence_tenths), "{effort:?}");
                assert!((33..=86).contains(&effort.resistance), "{effort:?}");
            }
        }
    }

    #[test]
    fn stronger_racers_score_higher_on_average() {
        let course = Course::new(1, 1);
        let mut scored: Vec<(f64, f64)> = (0..300)
            .map(|racer_id| {
                let identity = Identity::of(racer_id);
                let mut ride = Ride::new(3, &identity);
                let total: f64 = (1..=300)
                    .map(|s| {
                        let e = ride.next(s, 300, &course);
                        (e.cadence() + 35.0) * (e.resistance() + 65.0) / 100.0
                    })
                    .sum();
                (identity.ability, total / 300.0)
            })
            .collect();
        scored.sort_by(|a, b| a.0.total_cmp(&b.0));
        let weakest: f64 = scored[..50].iter().map(|s| s.1).sum::<f64>() / 50.0;
        let strongest: f64 = scored[250..].iter().map(|s| s.1).sum::<f64>() / 50.0;
        assert!(strongest > weakest + 20.0, "{weakest} vs {strongest}");
    }

    #[test]
    fn the_seed_varies_the_ride_not_the_racer() {
        let identity = Identity::of(5);
        let course = Course::new(9, 2);
        let ride = |seed| {
            let mut ride = Ride::new(seed, &identity);
            (1..=60)
                .map(|s| ride.next(s, 60, &course))
                .collect::<Vec<_>>()
        };
        assert_eq!(ride(1), ride(1));
        assert_ne!(ride(1), ride(2));
    }

    #[test]
    fn the_course_interpolates_its_knots() {
        let course = Course::new(4, 4);
        assert!((course.at(0.0) - course.knots[0]).abs() < 1e-12);
        assert!((course.at(1.0) - course.knots[7]).abs() < 1e-12);
        for i in 0..=100 {
            assert!(course.at(f64::from(i) / 100.0).abs() <= 7.0);
        }
    }
}
