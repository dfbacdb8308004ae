//! Reading a function's configuration from its environment, through a lookup closure so tests and
//! the embedded stack can configure a handler without touching the process environment.
//!
//! ```
//! use alleycat_lambda::env::Env;
//!
//! let env = Env::new(|name| (name == "TABLE_NAME").then(|| "alleycat-races".to_owned()));
//! assert_eq!(env.required("TABLE_NAME").unwrap(), "alleycat-races");
//! assert_eq!(env.number_or("LIMIT", 20u32, 1..=100).unwrap(), 20);
//! assert!(env.required("HISTORY_BUCKET").unwrap_err().to_string().contains("HISTORY_BUCKET"));
//! ```

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use alleycat_domain::trust::DEFAULT_CLOCK_SKEW_SECONDS;
use alleycat_domain::{DEFAULT_MAX_RACERS_PER_RACE, Plausibility, RaceClock};
use alleycat_ports::RetryPolicy;

/// Environment variable of the table every table-using function writes or reads.
pub const TABLE_NAME: &str = "TABLE_NAME";
/// Environment variable of the attempts per write, the first included (default 8, 1–100).
pub const RETRY_MAX_ATTEMPTS: &str = "RETRY_MAX_ATTEMPTS";
/// Environment variable of the writes a stream function makes at once (default 16, 1–256).
pub const WRITE_CONCURRENCY: &str = "WRITE_CONCURRENCY";
/// Writes at once unless configured: a batch rarely touches more races or racers than that at a
/// time, and a bound keeps a pathological batch from opening hundreds of connections.
pub const DEFAULT_WRITE_CONCURRENCY: usize = 16;
/// Environment variable of the race length in seconds (default 300).
pub const RACE_SECONDS: &str = "RACE_SECONDS";
/// Environment variable of the race start window in seconds (default 300).
pub const WINDOW_SECONDS: &str = "WINDOW_SECONDS";
/// Environment variable of the race aggregator's cap on racers per race (default 2,000; see
/// `alleycat_domain::Standings::merge_capped`).
pub const MAX_RACERS_PER_RACE: &str = "MAX_RACERS_PER_RACE";
/// Environment variable of how far device clocks may disagree with the platform's, in seconds
/// (default 120, at most a day): see `alleycat_domain::trust`.
pub const CLOCK_SKEW_SECONDS: &str = "CLOCK_SKEW_SECONDS";

/// Why a configuration could not be read; always names the variable, so a function that fails its
/// init says exactly what to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvError {
    /// A required variable is unset or empty (a template with an empty parameter sets `""`).
    Missing {
        /// The variable.
        name: &'static str,
    },
    /// A variable is set to a value the function cannot use.
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
}

impl EnvError {
    /// The variable at fault.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Missing { name } | Self::Invalid { name, .. } => name,
        }
    }
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { name } => write!(f, "environment variable {name} is not set"),
            Self::Invalid {
                name,
                value,
                reason,
            } => write!(
                f,
                "environment variable {name}={value:?} is invalid: {reason}"
            ),
        }
    }
}

impl std::error::Error for EnvError {}

/// A variable lookup (`|name| std::env::var(name).ok()` in a Lambda main) with typed accessors.
/// Empty values count as unset.
#[derive(Clone, Copy, Debug)]
pub struct Env<F> {
    lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// Reads variables through `lookup`.
    pub fn new(lookup: F) -> Self {
        Self { lookup }
    }

    /// The variable's value, `None` when unset or empty.
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|value| !value.trim().is_empty())
    }

    /// The variable's value; an error naming it when unset or empty (a table or bucket name).
    pub fn required(&self, name: &'static str) -> Result<String, EnvError> {
        self.optional(name).ok_or(EnvError::Missing { name })
    }

    /// The variable parsed as a number within `range`, or `default` when unset.
    pub fn number_or<T>(
        &self,
        name: &'static str,
        default: T,
        range: RangeInclusive<T>,
    ) -> Result<T, EnvError>
    where
        T: FromStr + PartialOrd + fmt::Display,
        T::Err: fmt::Display,
    {
        let Some(value) = self.optional(name) else {
            return Ok(default);
        };
        let invalid = |reason: String| EnvError::Invalid {
            name,
            value: value.clone(),
            reason,
        };
        let number: T = value
            .trim()
            .parse()
            .map_err(|e: T::Err| invalid(e.to_string()))?;
        if range.contains(&number) {
            Ok(number)
        } else {
            Err(invalid(format!(
                "must be from {} to {}",
                range.start(),
                range.end()
            )))
        }
    }

    /// The race clock from [`RACE_SECONDS`] and [`WINDOW_SECONDS`] (defaults 300 and 300): every
    /// function that validates messages or decides whether a race is over must agree on it.
    pub fn race_clock(&self) -> Result<RaceClock, EnvError> {
        let defaults = RaceClock::default();
        Ok(RaceClock::new(
            self.number_or(RACE_SECONDS, defaults.race_seconds, 1..=u16::MAX)?,
            self.number_or(WINDOW_SECONDS, defaults.window_seconds, 1..=u32::MAX)?,
        ))
    }

    /// The plausibility rules: the race clock and [`CLOCK_SKEW_SECONDS`].
    pub fn plausibility(&self) -> Result<Plausibility, EnvError> {
        Ok(Plausibility::new(
            self.race_clock()?,
            self.number_or(CLOCK_SKEW_SECONDS, DEFAULT_CLOCK_SKEW_SECONDS, 0..=86_400)?,
        ))
    }
}

/// The configuration of a function consuming a Kinesis stream (the race aggregator, the
/// leaderboard writer): one struct, so both read the same variables the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    /// The table the function writes ([`TABLE_NAME`]; empty in [`Default`], for tests whose
    /// table is not DynamoDB).
    pub table_name: String,
    /// Race length and window, to validate `second`.
    pub clock: RaceClock,
    /// How far device clocks may be off, in seconds ([`CLOCK_SKEW_SECONDS`]).
    pub clock_skew_seconds: u32,
    /// How hard to retry a write (conflicts and throttling share the attempts).
    pub retry: RetryPolicy,
    /// Writes made at once.
    pub write_concurrency: usize,
    /// Racers a race admits ([`MAX_RACERS_PER_RACE`], the race aggregator's).
    pub max_racers_per_race: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            table_name: String::new(),
            clock: RaceClock::default(),
            clock_skew_seconds: DEFAULT_CLOCK_SKEW_SECONDS,
            retry: RetryPolicy::default(),
            write_concurrency: DEFAULT_WRITE_CONCURRENCY,
            max_racers_per_race: DEFAULT_MAX_RACERS_PER_RACE,
        }
    }
}

impl StreamConfig {
    /// The plausibility rules records are admitted under.
    pub fn plausibility(&self) -> Plausibility {
        Plausibility::new(self.clock, self.clock_skew_seconds)
    }

    /// Reads the configuration through `lookup` (`|name| std::env::var(name).ok()` in a Lambda
    /// main, a map in tests): the race clock ([`RACE_SECONDS`], [`WINDOW_SECONDS`]),
    /// [`CLOCK_SKEW_SECONDS`], [`RETRY_MAX_ATTEMPTS`], [`WRITE_CONCURRENCY`] and
    /// [`MAX_RACERS_PER_RACE`], each optional with its default, then [`TABLE_NAME`], required.
    /// The error names any variable that is set but invalid, or the table's if it is missing.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let env = Env::new(lookup);
        let defaults = Self::default();
        let plausibility = env.plausibility()?;
        Ok(Self {
            clock: plausibility.clock,
            clock_skew_seconds: plausibility.clock_skew_seconds,
            retry: RetryPolicy {
                max_attempts: env.number_or(
                    RETRY_MAX_ATTEMPTS,
                    defaults.retry.max_attempts,
                    1..=100,
                )?,
                ..defaults.retry
            },
            write_concurrency: env.number_or(
                WRITE_CONCURRENCY,
                defaults.write_concurrency,
                1..=256,
            )?,
            max_racers_per_race: env.number_or(
                MAX_RACERS_PER_RACE,
                defaults.max_racers_per_race,
                1..=100_000,
            )?,
            table_name: env.required(TABLE_NAME)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Env::new(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn stream_config_defaults_reads_and_names_an_invalid_variable() {
        let table_only = |name: &str| (name == TABLE_NAME).then(|| "t".to_owned());
        assert_eq!(
            StreamConfig::from_lookup(table_only),
            Ok(StreamConfig {
                table_name: "t".to_owned(),
                ..StreamConfig::default()
            })
        );
        assert_eq!(
            StreamConfig::from_lookup(|_| None),
            Err(EnvError::Missing { name: TABLE_NAME })
        );
        let vars = [
            (TABLE_NAME, "t"),
            (RACE_SECONDS, "20"),
            (WINDOW_SECONDS, "30"),
            (RETRY_MAX_ATTEMPTS, "3"),
            (WRITE_CONCURRENCY, "4"),
            (CLOCK_SKEW_SECONDS, "30"),
            (MAX_RACERS_PER_RACE, "50"),
        ];
        let lookup = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let config = StreamConfig::from_lookup(lookup).unwrap();
        assert_eq!(config.clock, RaceClock::new(20, 30));
        assert_eq!(config.retry.max_attempts, 3);
        assert_eq!(config.write_concurrency, 4);
        assert_eq!(
            config.plausibility(),
            Plausibility::new(RaceClock::new(20, 30), 30)
        );
        assert_eq!(config.max_racers_per_race, 50);
        for (name, bad) in [
            (RETRY_MAX_ATTEMPTS, "0"),
            (WRITE_CONCURRENCY, "lots"),
            (CLOCK_SKEW_SECONDS, "-1"),
        ] {
            let error =
                StreamConfig::from_lookup(|n| (n == name).then(|| bad.to_owned())).unwrap_err();
            assert_eq!(error.name(), name);
        }
    }

    #[test]
    fn an_empty_variable_counts_as_missing() {
        let env = env(&[("TABLE_NAME", "")]);
        assert_eq!(
            env.required("TABLE_NAME"),
            Err(EnvError::Missing { name: "TABLE_NAME" })
        );
    }

    #[test]
    fn a_number_out_of_range_names_the_variable_and_the_range() {
        let env = env(&[("LIMIT", "0"), ("TOP_K", "ten")]);
        let error = env.number_or("LIMIT", 20u32, 1..=100).unwrap_err();
        assert_eq!(error.name(), "LIMIT");
        assert_eq!(
            error.to_string(),
            "environment variable LIMIT=\"0\" is invalid: must be from 1 to 100"
        );
        assert_eq!(
            env.number_or("TOP_K", 100u32, 0..=1000).unwrap_err().name(),
            "TOP_K"
        );
    }

    #[test]
    fn the_race_clock_defaults_to_five_minute_races() {
        assert_eq!(env(&[]).race_clock(), Ok(RaceClock::default()));
        assert_eq!(
            env(&[(RACE_SECONDS, "20"), (WINDOW_SECONDS, "30")]).race_clock(),
            Ok(RaceClock::new(20, 30))
        );
        assert_eq!(
            env(&[(WINDOW_SECONDS, "0")])
                .race_clock()
                .unwrap_err()
                .name(),
            WINDOW_SECONDS
        );
    }
}
