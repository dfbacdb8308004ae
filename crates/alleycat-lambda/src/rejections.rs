//! Logging rejected records without letting a batch of garbage flood the logs.

use std::fmt::Display;

/// How many rejected records an invocation logs one by one; the rest are only counted, so a
/// batch of garbage cannot flood the logs (and the CloudWatch bill).
pub const MAX_LOGGED_REJECTIONS: usize = 20;

/// The rejections of one invocation: each logged with where it was and why, up to
/// [`MAX_LOGGED_REJECTIONS`], then one summary line on [`RejectionLog::finish`].
#[derive(Debug, Default)]
pub struct RejectionLog {
    total: u64,
    logged: usize,
}

impl RejectionLog {
    /// No rejections yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one rejection: `record` says which (a sequence number, a record id), `rule` which
    /// rule it broke (a stable, low-cardinality name), `reason` the details.
    pub fn reject(&mut self, record: &str, rule: &str, reason: &dyn Display) {
        self.total += 1;
        if self.logged < MAX_LOGGED_REJECTIONS {
            self.logged += 1;
            tracing::warn!(record, rule, %reason, "record rejected");
        }
    }

    /// How many records were rejected.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Says how many rejections were not logged one by one, if any.
    pub fn finish(self) {
        if self.total > self.logged as u64 {
            tracing::warn!(
                rejected = self.total,
                logged = self.logged,
                "more records rejected than logged"
            );
        }
    }
}
