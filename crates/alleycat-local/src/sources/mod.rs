//! Event sources: what Lambda's event source mappings, Firehose and S3 notifications do on AWS,
//! done here by pollers that build genuine `aws_lambda_events` values and invoke the functions.
//!
//! [`invoke`] is the one place a function is called, exactly as the Lambda runtime calls it: the
//! event is serialized to JSON and deserialized into the function's own event type (so the
//! handler sees the bytes Lambda would hand it), a panic becomes a failed invocation, and the
//! response comes back as the JSON Lambda would pass to the event source. Every invocation's
//! metrics are summed into [`Invocations`].
//!
//! An invocation runs off the async workers, as a Lambda function runs in a sandbox of its own:
//! decoding a Firehose object of a hundred thousand lines, or a batch of ten thousand records,
//! is milliseconds to seconds of CPU, and on a worker it would hold up the MQTT connections and
//! every other task queued there (tokio's LIFO slot cannot be stolen by the other worker).

pub mod dynamodb;
pub mod filter;
pub mod firehose;
pub mod kinesis;
pub mod on_failure;
pub mod poller;
pub mod s3;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use alleycat_lambda::{Function, Metrics};
use futures::FutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::meter::Meter;

/// Why an invocation failed as a whole (Lambda's "function error"): the event source retries it.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The event did not deserialize into the function's event type.
    #[error("{function}: the event does not deserialize: {error}")]
    Event {
        /// The function.
        function: &'static str,
        /// What serde said.
        error: serde_json::Error,
    },
    /// The handler returned an error.
    #[error("{function}: {error}")]
    Handler {
        /// The function.
        function: &'static str,
        /// Its error.
        error: String,
    },
    /// The handler panicked.
    #[error("{function}: panicked: {message}")]
    Panic {
        /// The function.
        function: &'static str,
        /// The panic message.
        message: String,
    },
    /// The response is not what the event source expects.
    #[error("{function}: unexpected response: {error}")]
    Response {
        /// The function.
        function: &'static str,
        /// What serde said.
        error: serde_json::Error,
    },
}

/// What one function did over the stack's life: invocations, failures, time spent, and the sum of
/// every counter its handler reported.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionTotals {
    /// Invocations, failed ones included.
    pub invocations: u64,
    /// Invocations that failed as a whole.
    pub errors: u64,
    /// Wall time in the handler, summed.
    pub duration_ms: u64,
    /// The handler's own counters (`RecordsIn`, `Writes`, …), summed.
    pub counters: BTreeMap<String, u64>,
}

/// Totals of every function, by name; with a [`Meter`], also what each invocation would be
/// billed.
#[derive(Debug, Default)]
pub struct Invocations {
    totals: Mutex<BTreeMap<&'static str, FunctionTotals>>,
    meter: Option<Arc<Meter>>,
}

impl Invocations {
    /// Totals that also count every invocation, and what the sources do, with `meter`.
    pub fn metered(meter: Arc<Meter>) -> Self {
        Self {
            totals: Mutex::default(),
            meter: Some(meter),
        }
    }

    /// The meter, if any.
    pub fn meter(&self) -> Option<&Meter> {
        self.meter.as_deref()
    }

    fn record(&self, function: &'static str, metrics: &Metrics, elapsed: Duration, failed: bool) {
        if let Some(meter) = &self.meter {
            meter.lambda(function, elapsed);
        }
        let mut totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = totals.entry(function).or_default();
        entry.invocations += 1;
        entry.errors += u64::from(failed);
        entry.duration_ms += u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        for (metric, count) in metrics.counts() {
            *entry.counters.entry(metric.name().to_owned()).or_default() += count;
        }
    }

    /// Adds `n` to counter `name` of `service`: the stack's own stand-ins for AWS services
    /// (Firehose, the ingest rule) count what they do here, next to the functions.
    pub fn add(&self, service: &'static str, name: &str, n: u64) {
        let mut totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        *totals
            .entry(service)
            .or_default()
            .counters
            .entry(name.to_owned())
            .or_default() += n;
    }

    /// A snapshot of every function's totals.
    pub fn snapshot(&self) -> BTreeMap<&'static str, FunctionTotals> {
        self.totals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// One counter of one function (0 if never reported).
    pub fn counter(&self, function: &str, name: &str) -> u64 {
        self.totals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(function)
            .and_then(|totals| totals.counters.get(name).copied())
            .unwrap_or_default()
    }
}

/// Invokes `function` with `event` as Lambda would, and reads its response as `R`.
pub async fn invoke<F, E, R>(
    function: &F,
    event: &E,
    invocations: &Invocations,
) -> Result<R, InvokeError>
where
    F: Function,
    E: Serialize + ?Sized,
    R: DeserializeOwned,
{
    off_workers(invoke_here(function, event, invocations)).await
}

/// Runs `work` to completion on this thread after handing its worker's other tasks to another
/// thread ([`tokio::task::block_in_place`]); on a current-thread runtime (tests) it just runs.
async fn off_workers<T>(work: impl Future<Output = T>) -> T {
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(work))
        }
        _ => work.await,
    }
}

/// [`invoke`], on the thread it is called on.
async fn invoke_here<F, E, R>(
    function: &F,
    event: &E,
    invocations: &Invocations,
) -> Result<R, InvokeError>
where
    F: Function,
    E: Serialize + ?Sized,
    R: DeserializeOwned,
{
    let event = serde_json::to_vec(event)
        .and_then(|bytes| serde_json::from_slice::<F::Event>(&bytes))
        .map_err(|error| InvokeError::Event {
            function: F::NAME,
            error,
        })?;
    let mut metrics = Metrics::new(F::NAME);
    let started = Instant::now();
    let outcome = AssertUnwindSafe(function.handle(event, &mut metrics))
        .catch_unwind()
        .await;
    let result = match outcome {
        Ok(Ok(response)) => serde_json::to_value(&response)
            .and_then(serde_json::from_value::<R>)
            .map_err(|error| InvokeError::Response {
                function: F::NAME,
                error,
            }),
        Ok(Err(error)) => Err(InvokeError::Handler {
            function: F::NAME,
            error: error.to_string(),
        }),
        Err(panic) => Err(InvokeError::Panic {
            function: F::NAME,
            message: panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default(),
        }),
    };
    invocations.record(F::NAME, &metrics, started.elapsed(), result.is_err());
    if tracing::enabled!(tracing::Level::DEBUG) {
        let mut line = Vec::new();
        let _ = metrics.write_emf(&mut line, crate::now_ms());
        tracing::debug!(target: "alleycat_local::emf", "{}", String::from_utf8_lossy(&line));
    }
    result
}
