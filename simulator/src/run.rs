//! The runner: generates the race tick by tick and hands each slice of each second to a sink at
//! its (time-compressed) moment.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::race::{Batch, Race};
use crate::sink::{Fatal, Sink};
use crate::stats::Stats;

/// Slices each simulated second is submitted in, by the bikes' phases, when pacing in time.
pub const SLICES_PER_SECOND: u16 = 10;

/// A stop request (Ctrl-C): the runner generates no more, and the sink delivers what it has.
#[derive(Debug, Default)]
pub struct Stop {
    stopped: AtomicBool,
    notify: Notify,
}

impl Stop {
    /// Asks the runner to stop.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Whether a stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Waits for a stop.
    pub async fn wait(&self) {
        let notified = self.notify.notified();
        if self.is_stopped() {
            return;
        }
        notified.await;
    }

    /// Sleeps until `deadline`; `false` if a stop came first.
    async fn sleep_until(&self, deadline: Instant) -> bool {
        let notified = self.notify.notified();
        if self.is_stopped() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => !self.is_stopped(),
            () = notified => false,
        }
    }
}

/// Rides `race` into `sink`.
///
/// `speed` compresses time: simulated second `t` is sent `t / speed` wall seconds after the start,
/// each in [`SLICES_PER_SECOND`] slices by the bikes' phases; `0` (or infinity) sends as fast as
/// the sink accepts, a whole second at a time.
pub async fn run<S: Sink>(
    race: &mut Race,
    mut sink: S,
    stats: &Stats,
    speed: f64,
    stop: &Stop,
) -> Result<(), Fatal> {
    let paced = speed > 0.0 && speed.is_finite();
    let start = Instant::now();
    let mut batch = Batch::default();
    'ticks: while !stop.is_stopped() && race.next_batch(&mut batch) {
        stats.second.store(batch.tick + 1, Ordering::Relaxed);
        if !paced {
            let n = batch.records.len();
            Stats::add(&stats.generated, n as u64);
            sink.submit(&batch, 0..n).await?;
            continue;
        }
        for (slice, range) in batch.slots(SLICES_PER_SECOND).into_iter().enumerate() {
            let at = f64::from(batch.tick)
                + f64::from(u16::try_from(slice).unwrap_or(0)) / f64::from(SLICES_PER_SECOND);
            let due = start + Duration::from_secs_f64(at / speed);
            if !stop.sleep_until(due).await {
                break 'ticks;
            }
            if range.is_empty() {
                continue;
            }
            Stats::add(&stats.generated, range.len() as u64);
            sink.submit(&batch, range).await?;
        }
    }
    sink.finish().await
}

/// Rides `race` into `sink` with a fresh [`Stats`], as fast as possible: for tests and benches.
pub async fn run_to_end<S: Sink>(race: &mut Race, sink: S, stats: Arc<Stats>) -> Result<(), Fatal> {
    run(race, sink, &stats, 0.0, &Stop::default()).await
}
