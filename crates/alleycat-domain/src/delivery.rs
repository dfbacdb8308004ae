//! Streaming decoder for Firehose delivery objects: gzip NDJSON, one reading per line.

use std::io::{BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;

use crate::message::{Reading, Rejection};
use crate::race::RaceClock;

/// How many bad lines a decode keeps the details of; the rest are only counted, so one corrupt
/// object cannot make the merger's memory or logs explode.
pub const MAX_REPORTED_BAD_LINES: usize = 20;

/// A line that was skipped, with where it was.
#[derive(Clone, Debug, PartialEq)]
pub struct BadLine {
    /// 1-based line number in the decompressed object.
    pub line: u64,
    /// Why it was skipped.
    pub reason: Rejection,
}

/// What one decode saw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeliveryStats {
    /// Non-empty lines read.
    pub lines: u64,
    /// Lines that were valid readings.
    pub records: u64,
    /// Lines skipped as invalid.
    pub skipped: u64,
    /// The first [`MAX_REPORTED_BAD_LINES`] skipped lines.
    pub bad_lines: Vec<BadLine>,
    /// Decompressed bytes read.
    pub bytes: u64,
}

/// Why a delivery object could not be read to its end. Lines before the failure were already
/// handed to the callback; since every view is a max-merge, retrying the whole object is safe.
#[derive(Debug, thiserror::Error)]
#[error("delivery object unreadable after line {line}")]
pub struct DeliveryError {
    /// Last line read successfully.
    pub line: u64,
    /// The gzip or read error.
    #[source]
    pub source: std::io::Error,
    /// What was read before the failure (those readings were already handed over).
    pub stats: DeliveryStats,
}

/// Decodes a gzip NDJSON delivery object from `reader`, calling `on_reading` for each valid line
/// in order and skipping (counting, keeping the first few reasons of) invalid ones.
///
/// Streams: memory stays one line plus the decompression window whatever the object's size, and
/// the line buffer is reused, so valid lines cost no allocation beyond escaped strings.
pub fn decode_delivery<R: Read>(
    reader: R,
    clock: RaceClock,
    mut on_reading: impl FnMut(&Reading<'_>),
) -> Result<DeliveryStats, DeliveryError> {
    let mut lines =
        BufReader::with_capacity(64 * 1024, MultiGzDecoder::new(BufReader::new(reader)));
    let mut stats = DeliveryStats::default();
    let mut line = Vec::with_capacity(512);
    let mut line_no = 0u64;
    loop {
        line.clear();
        let read = match lines.read_until(b'\n', &mut line) {
            Ok(read) => read,
            Err(source) => {
                return Err(DeliveryError {
                    line: line_no,
                    source,
                    stats,
                });
            }
        };
        if read == 0 {
            return Ok(stats);
        }
        line_no += 1;
        stats.bytes += read as u64;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        stats.lines += 1;
        match Reading::from_json(text, clock) {
            Ok(reading) => {
                stats.records += 1;
                on_reading(&reading);
            }
            Err(reason) => {
                stats.skipped += 1;
                if stats.bad_lines.len() < MAX_REPORTED_BAD_LINES {
                    stats.bad_lines.push(BadLine {
                        line: line_no,
                        reason,
                    });
                }
            }
        }
    }
}
