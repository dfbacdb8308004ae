//! Plumbing every Alleycat function shares, so no handler repeats it:
//!
//! - [`kinesis`]: Kinesis events decoded leniently (one record with broken base64 cannot fail the
//!   event), records parsed and validated into readings, rejections counted and logged with their
//!   sequence numbers;
//! - [`failures`]: partial batch responses that report the earliest failed record of an ordered
//!   stream;
//! - [`metrics`]: per-invocation counts as CloudWatch Embedded Metric Format log lines.

pub mod failures;
pub mod kinesis;
pub mod metrics;

pub use failures::BatchFailures;
pub use kinesis::{KinesisBatch, LenientKinesisEvent};
pub use metrics::Metrics;
