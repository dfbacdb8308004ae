//! The API's metrics, each declared once with its unit.

use alleycat_lambda::Metric;

/// Requests answered.
pub const REQUESTS: Metric = Metric::count("Requests");
/// Requests answered with a 4xx status.
pub const CLIENT_ERRORS: Metric = Metric::count("ClientErrors");
/// Requests answered with a 5xx status.
pub const SERVER_ERRORS: Metric = Metric::count("ServerErrors");
