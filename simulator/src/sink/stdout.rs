//! NDJSON to standard output (or any writer): for piping, and as the test oracle of the other
//! targets.

use std::io::{ErrorKind, Write};
use std::ops::Range;
use std::sync::Arc;

use super::{Fatal, Sink};
use crate::race::Batch;
use crate::stats::Stats;

/// Writes each message as one line to `W`.
pub struct WriteSink<W: Write> {
    out: W,
    stats: Arc<Stats>,
}

impl<W: Write> WriteSink<W> {
    /// A sink writing to `out` (buffer it: each tick is written with one call per slice).
    pub fn new(out: W, stats: Arc<Stats>) -> Self {
        Self { out, stats }
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

fn fatal(error: &std::io::Error) -> Fatal {
    if error.kind() == ErrorKind::BrokenPipe {
        Fatal("standard output was closed before the race ended".to_owned())
    } else {
        Fatal(format!("writing the messages: {error}"))
    }
}

impl<W: Write> Sink for WriteSink<W> {
    async fn submit(&mut self, batch: &Batch, range: Range<usize>) -> Result<(), Fatal> {
        let count = range.len() as u64;
        if let Err(error) = self.out.write_all(batch.lines(range)) {
            Stats::add(&self.stats.lost, count);
            return Err(fatal(&error));
        }
        Stats::add(&self.stats.sent, count);
        Ok(())
    }

    async fn finish(mut self) -> Result<(), Fatal> {
        self.out.flush().map_err(|e| fatal(&e))
    }
}
