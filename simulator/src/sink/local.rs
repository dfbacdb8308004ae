//! The embedded stack in-process: each slice goes into the stack's stream in one transaction,
//! as one `PutRecords` would (partition key = racer id); on return the records are durable.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use alleycat_local::Stack;

use super::{Fatal, Sink};
use crate::race::Batch;
use crate::stats::Stats;

/// Puts records into a running [`Stack`].
pub struct LocalSink {
    stack: Arc<Stack>,
    keys: Vec<Arc<str>>,
    stats: Arc<Stats>,
}

impl LocalSink {
    /// A sink into `stack`; `keys[racer]` is each racer's partition key.
    pub fn new(stack: Arc<Stack>, keys: Vec<Arc<str>>, stats: Arc<Stats>) -> Self {
        Self { stack, keys, stats }
    }
}

impl Sink for LocalSink {
    async fn submit(&mut self, batch: &Batch, range: Range<usize>) -> Result<(), Fatal> {
        let count = range.len() as u64;
        let records: Vec<(&str, &[u8])> = range
            .map(|i| {
                (
                    &*self.keys[batch.records[i].racer as usize],
                    batch.message(i),
                )
            })
            .collect();
        let started = Instant::now();
        match self.stack.put_records(&records) {
            Ok(_) => {
                self.stats.record_latency(started.elapsed());
                Stats::add(&self.stats.sent, count);
                Ok(())
            }
            Err(error) => {
                Stats::add(&self.stats.lost, count);
                Err(Fatal(format!(
                    "the embedded stack refused the records: {error}"
                )))
            }
        }
    }

    async fn finish(self) -> Result<(), Fatal> {
        Ok(())
    }
}
