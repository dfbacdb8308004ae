//! Alleycat's race logic, with no AWS, Lambda or I/O dependency.
//!
//! Every function, the embedded stack and the simulator share this crate, so the rules live in
//! one place:
//!
//! - [`message`]: the device message, parsed without copying, validated rule by rule, scored;
//! - [`race`]: which race a ride belongs to and when it is over;
//! - [`standings`], [`leaderboard`], [`series`], [`history`] (with its [`sample`]): the views of DESIGN section 3, each
//!   a [`MaxMerge`] so retries, replays and concurrent writers cannot corrupt them;
//! - [`trust`]: what makes a record trustworthy: a plausible ride, published by the racer's
//!   holder;
//! - [`delivery`]: the streaming decoder for Firehose's gzip NDJSON objects;
//! - [`live`]: the live standings message, one IoT Core unit whatever the race;
//! - [`views`]: wire shapes of the API and the topics.

pub mod delivery;
pub mod history;
pub mod leaderboard;
pub mod live;
pub mod merge;
pub mod message;
pub mod output;
pub mod race;
pub mod sample;
mod scan;
pub mod series;
pub mod standings;
pub mod trust;
pub mod views;

pub use delivery::{DeliveryStats, decode_delivery};
pub use history::{ClassHistory, DEFAULT_TOP_K, HistoryError};
pub use leaderboard::{LeaderboardEntry, RacerFinal};
pub use merge::MaxMerge;
pub use message::{DeviceMessage, Event, MessageText, Reading, Rejection};
pub use output::Output;
pub use race::{RaceClock, RaceKey};
pub use sample::{DEFAULT_SAMPLE_SIZE, RacerSample, sample_hash};
#[doc(hidden)]
pub use scan::{leading_digits, string_len};
pub use series::SecondSeries;
pub use standings::{DEFAULT_MAX_RACERS_PER_RACE, Standings, StandingsBatch};
pub use trust::{Claim, Plausibility, Taken, check_holder};
