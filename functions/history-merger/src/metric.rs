//! The history merger's metrics, each declared once with its unit.

use alleycat_lambda::Metric;
pub use alleycat_lambda::metrics::{BYTES_IN, CLAIM_LOOKUPS, RETRIES};

/// Delivery objects announced.
pub const OBJECTS_IN: Metric = Metric::count("ObjectsIn");
/// Announcements that were not a delivery object to merge (another prefix or bucket, a test
/// event, a message that is not an S3 event): dropped, since a retry would read the same.
pub const SKIPPED: Metric = Metric::count("Skipped");
/// Announced objects that no longer exist.
pub const MISSING: Metric = Metric::count("Missing");
/// Objects corrupt past some line (gzip or NDJSON broken): merged up to the damage.
pub const UNREADABLE: Metric = Metric::count("Unreadable");
/// Lines read.
pub const LINES: Metric = Metric::count("Lines");
/// Lines folded into the views.
pub const RECORDS: Metric = Metric::count("Records");
/// Lines skipped as invalid.
pub const BAD_LINES: Metric = Metric::count("BadLines");
/// Class histories written.
pub const HISTORY_WRITES: Metric = Metric::count("HistoryWrites");
/// Racers' bests written.
pub const BESTS_WRITES: Metric = Metric::count("BestsWrites");
/// Racers' traces written.
pub const TRACE_WRITES: Metric = Metric::count("TraceWrites");
/// Documents that already held their delta: read, not written.
pub const UNCHANGED: Metric = Metric::count("Unchanged");
/// Lost optimistic-concurrency races, re-read and re-merged.
pub const CONFLICTS: Metric = Metric::count("Conflicts");
/// Object reads that still failed after their retries.
pub const READ_FAILED: Metric = Metric::count("ReadFailed");
/// Merges that still failed after their retries.
pub const MERGE_FAILED: Metric = Metric::count("MergeFailed");

/// Every metric, declared at zero on each invocation so dashboards and alarms see a continuous
/// series rather than missing data (with `Rejected` and `Rejected.<rule>`, which the rejection
/// log declares).
pub const METRICS: [Metric; 17] = [
    OBJECTS_IN,
    BYTES_IN,
    SKIPPED,
    MISSING,
    UNREADABLE,
    LINES,
    RECORDS,
    BAD_LINES,
    HISTORY_WRITES,
    BESTS_WRITES,
    TRACE_WRITES,
    UNCHANGED,
    CONFLICTS,
    RETRIES,
    READ_FAILED,
    MERGE_FAILED,
    CLAIM_LOOKUPS,
];
