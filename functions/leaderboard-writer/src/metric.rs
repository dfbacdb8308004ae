//! The leaderboard writer's metrics, each declared once with its unit.

use alleycat_lambda::Metric;
pub use alleycat_lambda::metrics::{BYTES_IN, CLAIM_LOOKUPS, RECORDS_IN, REJECTED, RETRIES};

/// Records that were not a racer's final (the event source's filter should let none through).
pub const NOT_FINAL: Metric = Metric::count("NotFinal");
/// Results stored.
pub const FINALS: Metric = Metric::count("Finals");
/// Finals that improved their racer's leaderboard row.
pub const NEW_RECORD: Metric = Metric::count("NewRecord");
/// Finals that did not beat their racer's row: the normal case, not an error.
pub const NO_NEW_RECORD: Metric = Metric::count("NoNewRecord");
/// Records reported as batch item failures.
pub const FAILED: Metric = Metric::count("Failed");
/// Records not attempted because an earlier final of the same racer failed (they come back with
/// the retry).
pub const SKIPPED: Metric = Metric::count("Skipped");

/// Every metric, declared at zero on each invocation so dashboards see zeros rather than gaps
/// (with `Rejected.<rule>`, which the rejection log declares).
pub const METRICS: [Metric; 11] = [
    RECORDS_IN,
    BYTES_IN,
    REJECTED,
    CLAIM_LOOKUPS,
    NOT_FINAL,
    FINALS,
    NEW_RECORD,
    NO_NEW_RECORD,
    RETRIES,
    FAILED,
    SKIPPED,
];
