//! What one race costs under this design with the template's settings, as a formula: the
//! operations the deployment makes for a race of `racers` racers and `seconds` seconds, in AWS's
//! billing units. `docs/cost.md` states it line by line; the embedded stack's counted bill of the
//! same race agrees with it within a few percent (tests in `tests/doc.rs` and
//! `simulator/tests/bill.rs`).
//!
//! The settings it assumes are `template.yaml`'s defaults, which the embedded stack also runs
//! with: one shard; the race aggregator's 1 s batching window (about one standings write per
//! second); the publisher's at most one live message per race per second, each one IoT Core unit
//! (`alleycat_domain::live`); Firehose's 128 MiB / 60 s buffer, so a race makes one object a
//! minute (a minute of 1,000 racers is about 12 MiB), each merged once into the class history,
//! the racers' bests and their traces.

use crate::units;
use crate::usage::Usage;

/// The shape of a race and the few counts that depend on timing rather than on the race.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RaceEstimate {
    /// Racers, all riding the whole race (as the simulator's do).
    pub racers: u64,
    /// Seconds of the race: each racer sends one message a second.
    pub seconds: u64,
    /// Average bytes of a device message (the simulator's 1,000-racer race: 204).
    pub record_bytes: u64,
    /// Live messages of the race: at most one a second, so `seconds` (a counted run publishes a
    /// few percent fewer: the standings change a little less often than once a second).
    pub publishes: u64,
    /// Standings writes: one per aggregator batch with a change, about one a second.
    pub standings_writes: u64,
    /// How long the stream is billed: the race and Firehose's last interval.
    pub run_seconds: f64,
    /// Firehose's buffer interval, seconds (the template's `FirehoseBufferIntervalSeconds`: 60).
    pub firehose_interval_seconds: u64,
}

/// Bytes of a device message from the simulator's 1,000-racer race (300,000 messages, 61.3 MB).
pub const SIMULATOR_RECORD_BYTES: u64 = 204;

/// Firehose's buffer size hint (`FirehoseBufferSizeMB`: 128).
const FIREHOSE_BUFFER_BYTES: u64 = 128 << 20;
/// Firehose's buffer interval (`FirehoseBufferIntervalSeconds`: 60).
const FIREHOSE_INTERVAL_SECONDS: u64 = 60;
/// A standings item: keys, class, race, version, timestamps and index keys…
const STANDINGS_BASE_BYTES: u64 = 90;
/// …and one map entry per racer (a racer id of 1 to 4 digits and its output): 7.9 bytes measured
/// for racers 1 to 1,000.
const STANDINGS_BYTES_PER_RACER: u64 = 8;
/// A racer's trace or bests item: keys and attributes…
const SERIES_BASE_BYTES: u64 = 30;
/// …and one list element per second ridden, in tenths of a byte (5.1 measured: an output of six
/// or seven significant digits is 4 or 5 bytes, plus one per element).
const SERIES_DECIBYTES_PER_SECOND: u64 = 51;
/// A racer's final (about 100 bytes: one write unit) and leaderboard row (under 100 bytes, with
/// the `byBest` index copy: two, each billed twice since the row is written in a transaction with
/// its class's rank counts). The counts item itself (a few KB, one per leaderboard batch) is left
/// out.
const FINAL_WRITE_UNITS: u64 = 1 + 2 * 2;

impl RaceEstimate {
    /// A race of the simulator's messages, with one live message and one standings write a
    /// second.
    pub fn new(racers: u64, seconds: u64) -> Self {
        Self {
            racers,
            seconds,
            record_bytes: SIMULATOR_RECORD_BYTES,
            publishes: seconds,
            standings_writes: seconds,
            #[allow(clippy::cast_precision_loss)] // Seconds of a race.
            run_seconds: (seconds + FIREHOSE_INTERVAL_SECONDS) as f64,
            firehose_interval_seconds: FIREHOSE_INTERVAL_SECONDS,
        }
    }

    /// Firehose objects: one an interval (a minute), or one per 128 MiB of records when an
    /// interval of the race holds more (over 10,000 racers).
    pub fn objects(&self) -> u64 {
        let by_size =
            (self.racers * self.seconds * self.record_bytes).div_ceil(FIREHOSE_BUFFER_BYTES);
        self.seconds
            .div_ceil(self.firehose_interval_seconds.max(1))
            .max(by_size)
    }

    /// The usage the formula predicts (Lambda left out: a few tenths of a cent, counted only).
    pub fn usage(&self) -> Usage {
        let records = self.racers * self.seconds;
        let objects = self.objects().max(1);
        // The standings item holds every racer from the first second on: each write replaces it
        // (units of its size) and copies it into the races index, after one consistent read.
        let standings = STANDINGS_BASE_BYTES + STANDINGS_BYTES_PER_RACER * self.racers;
        let mut write_units = self.standings_writes * 2 * units::dynamodb_write_units(standings);
        let mut read_half_units =
            self.standings_writes * units::dynamodb_read_half_units(standings, true);
        // Each object holds every racer's seconds since the previous one; the merger reads (one
        // consistent read) and rewrites each racer's trace and bests, which hold the seconds
        // ridden so far.
        for k in 1..=objects {
            let seconds_so_far = (self.seconds * k).div_ceil(objects);
            let series = SERIES_BASE_BYTES + (SERIES_DECIBYTES_PER_SECOND * seconds_so_far) / 10;
            write_units += self.racers * 2 * units::dynamodb_write_units(series);
            read_half_units += self.racers * 2 * units::dynamodb_read_half_units(series, true);
        }
        write_units += self.racers * FINAL_WRITE_UNITS;
        Usage {
            seconds: self.run_seconds,
            kinesis_shards: 1,
            kinesis_records: records,
            kinesis_put_units: records * units::kinesis_put_units(self.record_bytes),
            dynamodb_write_units: write_units,
            dynamodb_read_half_units: read_half_units,
            firehose_records: records,
            firehose_billed_bytes: records * units::firehose_billed_bytes(self.record_bytes),
            // Firehose's object and the history object; the merger reads both.
            s3_puts: 2 * objects,
            s3_gets: 2 * objects,
            iot_messages_published: self.publishes,
            iot_deliveries_modeled: self.publishes * self.racers,
            #[allow(clippy::cast_precision_loss)] // Counts of a race.
            iot_connection_minutes_modeled: records as f64 / 60.0,
            ..Usage::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bill, PriceTable};

    #[test]
    fn the_docs_race_is_fan_out_first() {
        let usage = RaceEstimate::new(1000, 300).usage();
        assert_eq!(usage.kinesis_put_units, 300_000);
        assert_eq!(usage.iot_deliveries_modeled, 300_000);
        assert_eq!(RaceEstimate::new(1000, 300).objects(), 5);
        assert_eq!(RaceEstimate::new(20_000, 300).objects(), 10, "by size");
        let bill = Bill::new(&usage, PriceTable::builtin(), "us-east-1").unwrap();
        let fan_out = bill
            .lines
            .iter()
            .find(|l| l.item.starts_with("deliveries"))
            .unwrap();
        assert!((fan_out.dollars - 0.30).abs() < 1e-9, "{fan_out:?}");
        assert!(bill.total < 0.40, "the issue's target: {}", bill.total);
    }

    #[test]
    fn series_grow_with_the_race() {
        // A 20-second race's traces stay under 1 KB; a 300-second race's pass it in its last
        // two minutes (30 + 5.1 x 240 > 1,024).
        let short = RaceEstimate::new(1000, 20).usage();
        assert_eq!(RaceEstimate::new(1000, 20).objects(), 1);
        assert_eq!(short.dynamodb_write_units, 20 * 2 * 8 + 1000 * 2 + 5 * 1000);
        let long = RaceEstimate::new(1000, 300).usage();
        let per_racer = 2 * (1 + 1 + 1 + 2 + 2);
        assert_eq!(
            long.dynamodb_write_units,
            300 * 2 * 8 + 1000 * per_racer + 5 * 1000
        );
    }
}
