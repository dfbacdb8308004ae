//! The transformer function: Firehose's data transformation between the stream and the delivery
//! bucket. Each valid device message becomes one compact JSON line with its `output`
//! ([`Reading::write_json_line`]; [`Reading::write_json_line_from`] copies the message's own text
//! where it already is the line's), which is the NDJSON the history-merger reads back.
//!
//! Every record is answered under its own `recordId`, in the event's order: `Ok` with the line
//! (which adds the record's `approximateArrivalTimestamp` as `arrivedAt`, and keeps the IoT
//! rule's `identityId`, so the history merger and a rebuild can apply the holder rule), or
//! `ProcessingFailed` with its original data: invalid records, and implausible rides
//! (`alleycat_domain::trust`) (Firehose writes those to the bucket's
//! `processing-failed/` prefix, where nothing merges them). One bad record never fails the batch;
//! a record whose envelope does not even decode ([`LenientFirehoseEvent`]) is answered
//! `ProcessingFailed` too.
//!
//! This is the hot path of the whole system (every message of every racer, every second), so
//! there is no I/O and no intermediate `serde_json::Value`. Two entry points answer identically:
//!
//! - [`handle_raw`], event bytes in, response bytes out, is what the Lambda serves: a zero-copy
//!   pass borrows each record's id and data from the event, decodes, transforms and re-encodes
//!   through buffers reused by every record, and writes the response JSON directly. Events it does
//!   not handle (anything Firehose does not send) go through the typed path whole.
//! - [`handle`], on a typed [`LenientFirehoseEvent`], is the reference: what [`handle_raw`] falls
//!   back to for the events it does not answer itself, and what tests hold it to. The embedded
//!   stack does not call it directly: like the Lambda, it serves [`Transformer`] (the event as
//!   JSON text, so [`handle_raw`]).
//!
//! Metrics: [`metric`], with `Rejected` and `Rejected.<rule>` for each rule.

pub mod firehose;
pub mod metric;
mod raw;

use alleycat_domain::trust::DEFAULT_CLOCK_SKEW_SECONDS;
use alleycat_domain::{Plausibility, RaceClock, Reading};
use alleycat_lambda::Metrics;
use alleycat_lambda::RejectionLog;
use alleycat_lambda::env::{Env, EnvError};
use aws_lambda_events::event::firehose::{KinesisFirehoseResponse, KinesisFirehoseResponseRecord};
use serde_json::value::RawValue;

pub use firehose::{LenientFirehoseEvent, UndecodableRecord};
use metric::METRICS;

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

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration variable is invalid (the error names it).
    #[error(transparent)]
    Env(#[from] EnvError),
}

/// What the handler needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Race length and window, to validate `second`.
    pub clock: RaceClock,
    /// How far device clocks may be off, in seconds (`CLOCK_SKEW_SECONDS`).
    pub clock_skew_seconds: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            clock: RaceClock::default(),
            clock_skew_seconds: DEFAULT_CLOCK_SKEW_SECONDS,
        }
    }
}

impl Config {
    /// Reads the configuration through `lookup` (`|name| std::env::var(name).ok()` in a Lambda
    /// main, a map in tests): the race clock (`RACE_SECONDS`, `WINDOW_SECONDS`) and
    /// `CLOCK_SKEW_SECONDS`, optional with their defaults. The error names any variable that is
    /// set but invalid.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let rules = Env::new(lookup).plausibility()?;
        Ok(Self {
            clock: rules.clock,
            clock_skew_seconds: rules.clock_skew_seconds,
        })
    }

    /// The plausibility rules records are admitted under.
    pub fn plausibility(&self) -> Plausibility {
        Plausibility::new(self.clock, self.clock_skew_seconds)
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
    handle_typed(event, *config, metrics)
}

/// Transforms one Firehose batch given as the event's JSON, answering the response's JSON:
/// exactly the bytes `serde_json::to_vec(&handle(serde_json::from_slice(event)?, …))` gives, with
/// the same metrics and logs, but without the typed envelope's allocations per record (ids,
/// decoded data, metadata strings, answers), which cost more than the transformation itself.
///
/// Events of the shape Firehose sends take the zero-copy fast path; any other (escapes in the
/// envelope, bad base64, missing fields, …) is decoded and answered by [`handle`] whole.
///
/// # Errors
///
/// The event is not a Firehose transformation event at all (not JSON, no `records`), which
/// [`handle`]'s caller could not have deserialized either.
#[tracing::instrument(name = "transformer", skip_all, fields(bytes = event.len()))]
pub fn handle_raw(
    event: &[u8],
    config: &Config,
    metrics: &mut Metrics,
) -> Result<Vec<u8>, serde_json::Error> {
    if let Some(response) = handle_fast(event, config, metrics) {
        return Ok(response);
    }
    typed_text(event, *config, metrics).map(String::into_bytes)
}

/// [`handle_raw`], answering text for the served [`Transformer`]: the fast path's bytes checked as
/// UTF-8 once (they always are: it writes ASCII and record ids it checked).
#[tracing::instrument(name = "transformer", skip_all, fields(bytes = event.len()))]
fn handle_text(
    event: &[u8],
    config: Config,
    metrics: &mut Metrics,
) -> Result<String, serde_json::Error> {
    if let Some(mut transformed) = raw::transform(event, config.plausibility())
        && let Ok(response) = String::from_utf8(std::mem::take(&mut transformed.response))
    {
        count(&transformed, metrics);
        return Ok(response);
    }
    typed_text(event, config, metrics)
}

/// The typed path of [`handle_raw`]: the whole event decoded and answered by [`handle`].
fn typed_text(
    event: &[u8],
    config: Config,
    metrics: &mut Metrics,
) -> Result<String, serde_json::Error> {
    let event: LenientFirehoseEvent = serde_json::from_slice(event)?;
    serde_json::to_string(&handle_typed(event, config, metrics))
}

/// The fast path of [`handle_raw`] alone: `None`, with nothing counted or logged, where it defers
/// to the typed path. Public only so tests can check which events it answers.
#[doc(hidden)]
pub fn handle_fast(event: &[u8], config: &Config, metrics: &mut Metrics) -> Option<Vec<u8>> {
    let transformed = raw::transform(event, config.plausibility())?;
    count(&transformed, metrics);
    Some(transformed.response)
}

/// Counts and logs what the fast path did. Logged only now, so that an event the fast path gives
/// up on halfway is not logged twice.
fn count(transformed: &raw::Transformed<'_>, metrics: &mut Metrics) {
    register_metrics(metrics);
    metrics.add(metric::RECORDS_IN, transformed.records);
    metrics.add(metric::OK, transformed.ok);
    metrics.add(metric::PROCESSING_FAILED, transformed.failed);
    metrics.add(metric::BYTES_IN, transformed.bytes_in);
    metrics.add(metric::BYTES_OUT, transformed.bytes_out);
    let mut rejections = RejectionLog::new();
    for (id, rejection) in &transformed.rejections {
        rejections.reject_for(id, rejection);
    }
    rejections.count_into(metrics);
    rejections.finish();
}

fn register_metrics(metrics: &mut Metrics) {
    for name in METRICS {
        metrics.add(name, 0);
    }
}

fn handle_typed(
    event: LenientFirehoseEvent,
    config: Config,
    metrics: &mut Metrics,
) -> KinesisFirehoseResponse {
    register_metrics(metrics);
    metrics.add(metric::RECORDS_IN, event.len() as u64);
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

    let rules = config.plausibility();
    for record in event.records {
        bytes_in += record.data.len() as u64;
        let arrival_ms =
            u64::try_from(record.approximate_arrival_timestamp.0.timestamp_millis()).unwrap_or(0);
        let admitted = Reading::from_json_keeping_text(&record.data, rules.clock).and_then(
            |(mut reading, text)| {
                rules.admit(&mut reading, arrival_ms)?;
                Ok((reading, text))
            },
        );
        match admitted {
            Ok((reading, text)) => {
                // Written straight into the answer's buffer, sized once.
                let mut data = Vec::with_capacity(record.data.len() + LINE_HEADROOM);
                reading.write_json_line_from(&text, &mut data);
                ok += 1;
                bytes_out += data.len() as u64;
                response
                    .records
                    .push(answer(record.record_id, RESULT_OK, data));
            }
            Err(rejection) => {
                failed += 1;
                let id = record.record_id.as_deref().unwrap_or("?");
                rejections.reject_for(id, &rejection);
                response.records.push(answer(
                    record.record_id,
                    RESULT_PROCESSING_FAILED,
                    record.data.0,
                ));
            }
        }
    }
    metrics.add(metric::OK, ok);
    metrics.add(metric::PROCESSING_FAILED, failed);
    metrics.add(metric::BYTES_IN, bytes_in);
    metrics.add(metric::BYTES_OUT, bytes_out);

    // Decoded records are in order; inserting the others at their positions, in ascending
    // order, restores the event's order exactly.
    for bad in undecodable {
        metrics.add(metric::BYTES_IN, bad.data.len() as u64);
        metrics.incr(metric::PROCESSING_FAILED);
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

    rejections.count_into(metrics);
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

/// Served on the event's raw JSON: the runtime only checks and copies the bytes, [`handle_raw`]
/// does the rest. The response goes back as a `RawValue`, which `RawValue::from_string` checks by
/// parsing it once more (about 0.2 µs a record): the price of not relying on serde_json's private
/// tokens to write text verbatim.
impl alleycat_lambda::Function for Transformer {
    const NAME: &'static str = FUNCTION_NAME;
    type Event = Box<RawValue>;
    type Response = Box<RawValue>;
    type Error = serde_json::Error;

    async fn handle(
        &self,
        event: Box<RawValue>,
        metrics: &mut Metrics,
    ) -> Result<Box<RawValue>, Self::Error> {
        RawValue::from_string(handle_text(event.get().as_bytes(), self.config, metrics)?)
    }
}
