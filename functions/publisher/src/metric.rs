//! The publisher's metrics, each declared once with its unit.

use alleycat_lambda::Metric;
pub use alleycat_lambda::metrics::{RECORDS_IN, RETRIES};

/// Bytes of the messages published.
pub const BYTES_OUT: Metric = Metric::bytes("BytesOut");
/// Messages published.
pub const PUBLISHED: Metric = Metric::count("Published");
/// Changes not published because a newer change of the same race came in the same batch.
pub const COALESCED: Metric = Metric::count("Coalesced");
/// Publishes that waited for their race's interval.
pub const PACED: Metric = Metric::count("Paced");
/// Stream records that are not standings inserted or modified.
pub const IGNORED: Metric = Metric::count("Ignored");
/// Standings images that could not be read.
pub const MALFORMED: Metric = Metric::count("Malformed");
/// Races whose publish still failed after its retries.
pub const PUBLISH_FAILED: Metric = Metric::count("PublishFailed");
/// Races left for the redelivery after an earlier race of the batch failed.
pub const DEFERRED: Metric = Metric::count("Deferred");

/// Every metric, declared at zero on each invocation so dashboards and alarms see a continuous
/// series rather than missing data.
pub const METRICS: [Metric; 10] = [
    RECORDS_IN,
    BYTES_OUT,
    PUBLISHED,
    COALESCED,
    PACED,
    IGNORED,
    MALFORMED,
    PUBLISH_FAILED,
    DEFERRED,
    RETRIES,
];
