//! A function as one value: its handler with its dependencies bound.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::metrics::Metrics;

/// A function's handler with its stores and configuration bound, ready to be served.
///
/// The Lambda main hands it to `alleycat_aws::serve`, which deserializes each event, calls
/// [`Function::handle`], emits the invocation's metrics and returns the response; the embedded
/// stack calls the very same `handle` with events it builds itself. Each function crate
/// implements it once, so neither place repeats handler plumbing.
pub trait Function: Sync {
    /// The function's name: the `Function` dimension of its metrics.
    const NAME: &'static str;
    /// The event it is invoked with.
    type Event: DeserializeOwned + Send;
    /// What it answers.
    type Response: Serialize + Send;
    /// Why an invocation fails as a whole (Lambda then retries the event).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Handles one event, counting into `metrics`; the caller emits them.
    fn handle(
        &self,
        event: Self::Event,
        metrics: &mut Metrics,
    ) -> impl Future<Output = Result<Self::Response, Self::Error>> + Send;
}
