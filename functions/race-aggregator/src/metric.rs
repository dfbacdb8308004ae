//! The race aggregator's metrics, each declared once with its unit.

use alleycat_lambda::Metric;
pub use alleycat_lambda::metrics::{BYTES_IN, CLAIM_LOOKUPS, RECORDS_IN, REJECTED, RETRIES};

/// Races written, or carried in the window state.
pub const RACES: Metric = Metric::count("Races");
/// Standings written.
pub const WRITES: Metric = Metric::count("Writes");
/// Races whose stored standings already held the batch.
pub const UNCHANGED: Metric = Metric::count("Unchanged");
/// Lost optimistic-concurrency races, re-read and re-merged.
pub const CONFLICTS: Metric = Metric::count("Conflicts");
/// Races whose write still failed after its retries.
pub const FAILED_RACES: Metric = Metric::count("FailedRaces");
/// Window state entries that could not be read.
pub const STATE_REJECTED: Metric = Metric::count("StateRejected");

/// Every metric, declared at zero on each invocation so dashboards see zeros rather than gaps
/// (with `Rejected.<rule>`, which the rejection log declares).
pub const METRICS: [Metric; 11] = [
    RECORDS_IN,
    BYTES_IN,
    REJECTED,
    CLAIM_LOOKUPS,
    RACES,
    WRITES,
    UNCHANGED,
    CONFLICTS,
    RETRIES,
    FAILED_RACES,
    STATE_REJECTED,
];
