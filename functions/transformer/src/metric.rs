//! The transformer's metrics, each declared once with its unit.

use alleycat_lambda::Metric;
pub use alleycat_lambda::metrics::{BYTES_IN, RECORDS_IN};

/// Records answered `Ok`.
pub const OK: Metric = Metric::count("Ok");
/// Records answered `ProcessingFailed`.
pub const PROCESSING_FAILED: Metric = Metric::count("ProcessingFailed");
/// Bytes of the `Ok` lines: what reaches the bucket's `raw/` prefix.
pub const BYTES_OUT: Metric = Metric::bytes("BytesOut");

/// Every metric, declared at zero on each invocation so dashboards see zeros rather than gaps
/// (with `Rejected` and `Rejected.<rule>`, which the rejection log declares).
pub const METRICS: [Metric; 5] = [RECORDS_IN, OK, PROCESSING_FAILED, BYTES_IN, BYTES_OUT];
