//! Counters shared by the runner, the sinks and the progress bar, the request latency histogram,
//! and the summary printed at exit.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Live counters, updated by the sinks and read by the progress bar.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages generated so far.
    pub generated: AtomicU64,
    /// Records the target acknowledged (each counted once).
    pub sent: AtomicU64,
    /// Record re-sends after a rejection.
    pub retried: AtomicU64,
    /// Record attempts the target refused: a failed entry of a PutRecords answer, or every
    /// record of a request that failed as a whole. Each one is then retried or lost.
    pub rejected: AtomicU64,
    /// Requests that failed as a whole (throttling, 5xx, network) or MQTT connection errors.
    pub request_errors: AtomicU64,
    /// Records given up on: out of attempts, unacknowledged at exit, or stranded by a fatal error.
    pub lost: AtomicU64,
    /// The simulated second being generated (1-based).
    pub second: AtomicU32,
    latency: Mutex<Histogram>,
}

impl Stats {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Records the latency of one request (a PutRecords call, an MQTT publish until its PUBACK).
    pub fn record_latency(&self, latency: Duration) {
        self.latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .record(latency);
    }

    /// A copy of the latency histogram.
    pub fn latency(&self) -> Histogram {
        self.latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Sub-buckets per power of two: values are kept to within 1/32 (about 3 %).
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Buckets: `SUB` exact values, then `SUB` per power of two up to 2^64.
const BUCKETS: usize = 64 << SUB_BITS;

/// A log-linear histogram of latencies in microseconds: constant memory, about 3 % precision.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max_us: 0,
        }
    }
}

impl Histogram {
    fn bucket(us: u64) -> usize {
        if us < SUB {
            return usize::try_from(us).unwrap_or(0);
        }
        let exponent = us.ilog2(); // >= SUB_BITS
        let shift = exponent - SUB_BITS;
        let mantissa = (us >> shift) - SUB; // 0..SUB
        usize::try_from((u64::from(shift) + 1) * SUB + mantissa).unwrap_or(0)
    }

    /// The middle of bucket `index`, in microseconds.
    fn value(index: usize) -> u64 {
        let index = index as u64;
        if index < SUB {
            return index;
        }
        let shift = index / SUB - 1;
        let mantissa = index % SUB + SUB;
        (mantissa << shift) + ((1 << shift) >> 1)
    }

    /// Adds one observation.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[Self::bucket(us)] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
    }

    /// Observations recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The latency at quantile `q` in `[0, 1]` (to within about 3 %); `None` when empty.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_micros(Self::value(index).min(self.max_us)));
            }
        }
        Some(Duration::from_micros(self.max_us))
    }

    /// The largest latency recorded.
    pub fn max(&self) -> Option<Duration> {
        (self.total > 0).then(|| Duration::from_micros(self.max_us))
    }
}

/// Request latencies of a run, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    /// Requests measured.
    pub requests: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// What a run did: printed at exit, and written by `--summary-json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// `stdout`, `kinesis` or `mqtt`.
    pub target: String,
    /// The race.
    pub race_id: u64,
    /// The class.
    pub class_id: u8,
    /// Racers.
    pub racers: u32,
    /// Race length.
    pub seconds: u16,
    /// The seed.
    pub seed: u64,
    /// Messages generated.
    pub generated: u64,
    /// Records acknowledged by the target.
    pub sent: u64,
    /// Record re-sends.
    pub retried: u64,
    /// Record attempts refused by the target.
    pub rejected: u64,
    /// Requests that failed as a whole.
    pub request_errors: u64,
    /// Records given up on.
    pub lost: u64,
    /// Wall-clock duration of the run.
    pub elapsed_seconds: f64,
    /// `sent / elapsed_seconds`.
    pub records_per_second: f64,
    /// Request latencies; `null` for stdout, which makes no requests.
    pub latency: Option<Latency>,
    /// The fatal error that ended the run early, if any.
    pub error: Option<String>,
    /// What the race would have cost on AWS (`--target local` only).
    pub cost: Option<Cost>,
}

/// The total of a race's bill on AWS, as the embedded stack counted it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    /// The region priced.
    pub region: String,
    /// When the prices were read.
    pub price_date: String,
    /// The total, in dollars.
    pub dollars: f64,
}

/// Exit status: every record delivered.
pub const EXIT_OK: u8 = 0;
/// Exit status: a fatal error (target unreachable, stream missing, standard output closed).
pub const EXIT_FATAL: u8 = 1;
/// Exit status: bad arguments (also what clap uses), or the embedded stack was asked for.
pub const EXIT_USAGE: u8 = 2;
/// Exit status: the run finished but some records were lost.
pub const EXIT_LOST: u8 = 3;

impl Summary {
    /// A summary of nothing done yet, for a run of `plan` on `target`; [`Summary::collect`] fills
    /// in the counts.
    pub fn new(target: &str, plan: &crate::race::RacePlan) -> Self {
        Self {
            target: target.to_owned(),
            race_id: plan.race_id(),
            class_id: plan.class_id,
            racers: plan.racers,
            seconds: plan.seconds,
            seed: plan.seed,
            generated: 0,
            sent: 0,
            retried: 0,
            rejected: 0,
            request_errors: 0,
            lost: 0,
            elapsed_seconds: 0.0,
            records_per_second: 0.0,
            latency: None,
            error: None,
            cost: None,
        }
    }

    /// The process exit status this summary calls for.
    pub fn exit_code(&self) -> u8 {
        if self.error.is_some() {
            EXIT_FATAL
        } else if self.lost > 0 {
            EXIT_LOST
        } else {
            EXIT_OK
        }
    }

    /// Fills in the counters from `stats`.
    #[allow(clippy::cast_precision_loss)]
    pub fn collect(&mut self, stats: &Stats, elapsed: Duration, with_latency: bool) {
        self.generated = Stats::get(&stats.generated);
        self.sent = Stats::get(&stats.sent);
        self.retried = Stats::get(&stats.retried);
        self.rejected = Stats::get(&stats.rejected);
        self.request_errors = Stats::get(&stats.request_errors);
        self.lost = Stats::get(&stats.lost);
        self.elapsed_seconds = elapsed.as_secs_f64();
        self.records_per_second = if self.elapsed_seconds > 0.0 {
            self.sent as f64 / self.elapsed_seconds
        } else {
            0.0
        };
        let histogram = stats.latency();
        let ms = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        self.latency = (with_latency && histogram.count() > 0).then(|| Latency {
            requests: histogram.count(),
            p50_ms: ms(histogram.quantile(0.5)),
            p99_ms: ms(histogram.quantile(0.99)),
            max_ms: ms(histogram.max()),
        });
    }

    /// The human-readable summary (several lines, no trailing newline).
    pub fn render(&self) -> String {
        let mut text = format!(
            "race {} class {}: {} racers x {} s (seed {})\n\
             {}: sent {} of {} records in {:.1} s ({:.0}/s); retried {}, rejected {}, \
             request errors {}, lost {}",
            self.race_id,
            self.class_id,
            self.racers,
            self.seconds,
            self.seed,
            self.target,
            self.sent,
            self.generated,
            self.elapsed_seconds,
            self.records_per_second,
            self.retried,
            self.rejected,
            self.request_errors,
            self.lost,
        );
        if let Some(latency) = &self.latency {
            let _ = write!(
                text,
                "\nrequest latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} requests)",
                latency.p50_ms, latency.p99_ms, latency.max_ms, latency.requests
            );
        }
        if let Some(cost) = &self.cost {
            let _ = write!(
                text,
                "\non AWS ({}, list prices of {}): ${:.4}",
                cost.region, cost.price_date, cost.dollars
            );
        }
        if let Some(error) = &self.error {
            let _ = write!(text, "\nerror: {error}");
        }
        if self.lost > 0 {
            let _ = write!(text, "\n{} records were lost", self.lost);
        }
        text
    }
}

#[cfg(test)]
#[allow(clippy::cast_precision_loss)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_within_three_percent() {
        let mut histogram = Histogram::default();
        for us in 1..=10_000u64 {
            histogram.record(Duration::from_micros(us * 10));
        }
        let p50 = histogram.quantile(0.5).unwrap().as_micros() as f64;
        let p99 = histogram.quantile(0.99).unwrap().as_micros() as f64;
        assert!((p50 / 50_000.0 - 1.0).abs() < 0.03, "{p50}");
        assert!((p99 / 99_000.0 - 1.0).abs() < 0.03, "{p99}");
        assert_eq!(histogram.max(), Some(Duration::from_micros(100_000)));
        assert_eq!(histogram.count(), 10_000);
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn small_values_are_exact() {
        for us in 0..SUB {
            assert_eq!(Histogram::value(Histogram::bucket(us)), us);
        }
        for us in [32, 33, 1000, 123_456, 9_999_999] {
            let v = Histogram::value(Histogram::bucket(us)) as f64;
            assert!((v / us as f64 - 1.0).abs() < 0.032, "{us} -> {v}");
        }
    }

    #[test]
    fn exit_codes() {
        let mut summary = Summary {
            target: "stdout".into(),
            race_id: 1,
            class_id: 1,
            racers: 1,
            seconds: 1,
            seed: 1,
            generated: 1,
            sent: 1,
            retried: 0,
            rejected: 0,
            request_errors: 0,
            lost: 0,
            elapsed_seconds: 1.0,
            records_per_second: 1.0,
            latency: None,
            error: None,
            cost: None,
        };
        assert_eq!(summary.exit_code(), EXIT_OK);
        summary.lost = 2;
        assert_eq!(summary.exit_code(), EXIT_LOST);
        assert!(summary.render().contains("2 records were lost"));
        summary.error = Some("stream missing".into());
        assert_eq!(summary.exit_code(), EXIT_FATAL);
    }
}
