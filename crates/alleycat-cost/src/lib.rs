//! What a run of Alleycat costs on AWS, from counted operations.
//!
//! Four parts, all pure:
//!
//! - [`units`]: how AWS rounds what it bills: Kinesis PUT payload units of 25 KB, Firehose
//!   records rounded up to 5 KB, IoT Core messages in 5 KB steps, DynamoDB item sizes and the
//!   request units they take, Lambda's milliseconds;
//! - [`Usage`]: the billable quantities of a run, which the embedded stack counts as it runs the
//!   same operations the AWS deployment would make;
//! - [`Prices`] (a dated table checked in as `prices.json`, with its sources) and [`Bill`], the
//!   arithmetic: one line per billed item, by service, and the total;
//! - [`RaceEstimate`]: what one race costs under the template's settings, as the formula
//!   `docs/cost.md` states, which counted runs are checked against.

// Billed counts stay far below 2^52, where a u64 converts to f64 exactly.
#![allow(clippy::cast_precision_loss)]

pub mod bill;
pub mod prices;
pub mod race;
pub mod units;
pub mod usage;

pub use bill::{Bill, Line};
pub use prices::{PriceTable, Prices, UnknownRegion};
pub use race::RaceEstimate;
pub use usage::{LambdaUsage, Usage};
