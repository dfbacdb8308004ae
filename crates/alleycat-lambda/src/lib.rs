//! Plumbing every Alleycat function shares, so no handler repeats it:
//!
//! - [`kinesis`]: Kinesis events decoded leniently (one record with broken base64 cannot fail the
//!   event), records parsed and validated into readings, rejections counted and logged with their
//!   sequence numbers;
//! - [`claims`]: the holder rule over a batch (one claims read for its identities' racers);
//! - [`failures`]: partial batch responses that report the earliest failed record of an ordered
//!   stream;
//! - [`function`]: a function as one value (handler plus dependencies), which the Lambda main
//!   serves and the embedded stack calls;
//! - [`env`]: configuration read through a lookup closure, errors naming the variable;
//! - [`rejections`]: rejected records logged with where and why, capped per invocation;
//! - [`metrics`]: per-invocation counts as CloudWatch Embedded Metric Format log lines;
//! - `fake_runtime` (feature `fake-runtime`, for tests): a stand-in for the Lambda Runtime API
//!   that drives a real `bootstrap` binary;
//! - `testing` (feature `testing`): builders of device messages and Kinesis events for the
//!   functions' tests.

pub mod claims;
pub mod env;
pub mod failures;
#[cfg(feature = "fake-runtime")]
pub mod fake_runtime;
pub mod function;
pub mod kinesis;
pub mod metrics;
pub mod rejections;
#[cfg(feature = "testing")]
pub mod testing;

pub use failures::BatchFailures;
pub use function::Function;
pub use kinesis::{KinesisReading, LenientKinesisEvent};
pub use metrics::{Metric, Metrics};
pub use rejections::{MAX_LOGGED_REJECTIONS, RejectionLog, rejection_metrics, rule_metric};

/// Milliseconds since the epoch, now (0 on a clock set before 1970): the one reading of the
/// wall clock that the functions' plumbing, the AWS adapters, the embedded stack and the
/// simulator share, so that all of them stamp time alike. The domain never reads a clock: it is
/// given the time.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
