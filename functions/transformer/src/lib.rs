//! The transformer function: Firehose's data transformation between the stream and the delivery
//! bucket. Each valid device message becomes one compact JSON line with its `output`
//! ([`Reading::write_json_line`]), which is the NDJSON the history-merger reads back.
//!
//! Every record is answered under its own `recordId`, in the event's order: `Ok` with the line,
//! or `ProcessingFailed` with its original data (Firehose writes those to the bucket's
//! `processing-failed/` prefix, where nothing merges them). One bad record never fails the batch;
//! a record whose envelope does not even decode ([`LenientFirehoseEvent`]) is answered
//! `ProcessingFailed` too.
//!
//! This is the hot path of the whole system (every message of every racer, every second), so
//! there is no I/O, no intermediate `serde_json::Value`, and one line buffer, sized for the
//! longest record, serves every record.
//!
//! Metrics: `RecordsIn`, `Ok`, `ProcessingFailed`, `BytesIn` (decoded bytes received), `BytesOut`
//! (bytes of the `Ok` lines: what reaches the bucket's `raw/` prefix).

pub mod firehose;

use alleycat_domain::{RaceClock, Reading};
use alleycat_lambda::Metrics;
use alleycat_lambda::RejectionLog;
use alleycat_lambda::env::{Env, EnvError};
use aws_lambda_events::event::firehose::{KinesisFirehoseResponse, KinesisFirehoseResponseRecord};

pub use firehose::{LenientFirehoseEvent, UndecodableRecord};

/// The function's name: the `Function` dimension of its metrics.
pub const FUNCTION_NAME: &str = "transformer";

/// Firehose's result for a transformed record.
pub const RESULT_OK: &str = "Ok";

/// Firehose's result for a record that could not be transformed: delivered, with its original
/// data, to the error output prefix.
pub const RESULT_PROCESSING_FAILED: &str = "ProcessingFailed";

/// Room a line needs beyond its input: the `output` field, and decimals serde adds to integers
/// (`74` comes back as `74.0`). A line that needs more grows its buffer once.
const LINE_HEADROOM: usize = 64;

/// Every counter this function emits, registered at zero so dashboards see zeros, not gaps.
const METRICS: [&str; 5] = ["RecordsIn", "Ok", "ProcessingFailed", "BytesIn", "BytesOut"];

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration variable is invalid (the error names it).
    #[error(transparent)]
    Env(#[from] EnvError),
}

/// What the handler needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Race length and window, to validate `second`.
    pub clock: RaceClock,
}

impl Config {
    /// Reads the configuration through `lookup` (`|name| std::env::var(name).ok()` in a Lambda
    /// main, a map in tests): the race clock (`RACE_SECONDS`, `WINDOW_SECONDS`), optional with
    /// its defaults. The error names any variable that is set but invalid.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        Ok(Self {
            clock: Env::new(lookup).race_clock()?,
        })
    }
}

/// Transforms one Firehose batch: one answer per record, under its `recordId`, in order.
///
/// Counts into `metrics`; the caller emits them once per invocation.
#[tracing::instrument(name = "transformer", skip_all, fields(records = event.len()))]
pub fn handle(
    event: LenientFirehoseEvent,
    config: &Config,
    metrics: &mut Metrics,
) -> KinesisFirehoseResponse {
    for name in METRICS {
        metrics.add(name, 0);
    }
    metrics.add("RecordsIn", event.len() as u64);
    let LenientFirehoseEvent {
        event, undecodable, ..
    } = event;
    let mut response = KinesisFirehoseResponse::default();
    response
        .records
        .reserve_exact(event.records.len() + undecodable.len());
    // Counted locally and added once: a metrics map lookup per record would cost as much as
    // the JSON work on this hot path.
    let (mut ok, mut failed, mut bytes_in, mut bytes_out) = (0u64, 0u64, 0u64, 0u64);
    let mut rejections = RejectionLog::new();

    for record in event.records {
        bytes_in += record.data.len() as u64;
        match Reading::from_json(&record.data, config.clock) {
            Ok(reading) => {
                // Written straight into the answer's buffer, sized once.
                let mut data = Vec::with_capacity(record.data.len() + LINE_HEADROOM);
                reading.write_json_line(&mut data);
                ok += 1;
                bytes_out += data.len() as u64;
                response
                    .records
                    .push(answer(record.record_id, RESULT_OK, data));
            }
            Err(rejection) => {
                failed += 1;
                let id = record.record_id.as_deref().unwrap_or("?");
                rejections.reject(id, rejection.rule(), &rejection);
                response.records.push(answer(
                    record.record_id,
                    RESULT_PROCESSING_FAILED,
                    record.data.0,
                ));
            }
        }
    }
    metrics.add("Ok", ok);
    metrics.add("ProcessingFailed", failed);
    metrics.add("BytesIn", bytes_in);
    metrics.add("BytesOut", bytes_out);

    // Decoded records are in order; inserting the others at their positions, in ascending
    // order, restores the event's order exactly.
    for bad in undecodable {
        metrics.add("BytesIn", bad.data.len() as u64);
        metrics.incr("ProcessingFailed");
        rejections.reject(
            bad.record_id.as_deref().unwrap_or("?"),
            "envelope",
            &bad.error,
        );
        let at = bad.position.min(response.records.len());
        response.records.insert(
            at,
            answer(bad.record_id, RESULT_PROCESSING_FAILED, bad.data),
        );
    }

    rejections.finish();
    response
}

fn answer(record_id: Option<String>, result: &str, data: Vec<u8>) -> KinesisFirehoseResponseRecord {
    let mut record = KinesisFirehoseResponseRecord::default();
    record.record_id = record_id;
    record.result = Some(result.to_owned());
    record.data.0 = data;
    record
}

/// The transformer with its configuration bound: what the Lambda main serves and the embedded
/// stack calls.
pub struct Transformer {
    /// The race clock records are validated against.
    pub config: Config,
}

impl alleycat_lambda::Function for Transformer {
    const NAME: &'static str = FUNCTION_NAME;
    type Event = LenientFirehoseEvent;
    type Response = KinesisFirehoseResponse;
    type Error = std::convert::Infallible;

    async fn handle(
        &self,
        event: LenientFirehoseEvent,
        metrics: &mut Metrics,
    ) -> Result<KinesisFirehoseResponse, Self::Error> {
        Ok(handle(event, &self.config, metrics))
    }
}
