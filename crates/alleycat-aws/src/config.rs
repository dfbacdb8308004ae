//! The SDK configuration a function loads once at init.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// The SDK configuration of the environment: region, credentials, and `AWS_ENDPOINT_URL` when
/// set (how tests and local runs reach moto). Load it once per process: every client built from it
/// shares its credentials cache and connection pool.
///
/// The SDK's own retries are turned off: every port call already goes through
/// `alleycat_ports::retry` / `merge_into`, whose attempts, backoff and counts are ours to set and
/// report. Stacked, the two would make up to 8 × 3 requests per call and hide throttling from the
/// metrics.
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled())
        .load()
        .await
}
