//! The progress bar on stderr: records sent, records/s, simulated second, retries and failures
//! (records rejected, requests failed, records lost).
//! Drawn only when stderr is a terminal (indicatif hides it otherwise) and not `--quiet`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use tokio::task::JoinHandle;

use crate::stats::Stats;

/// A running progress bar, refreshed from the shared counters five times a second.
pub struct Progress {
    bar: ProgressBar,
    task: JoinHandle<()>,
    quiet: bool,
}

impl Progress {
    /// Starts the bar for `total` records over `ticks` simulated seconds (hidden if `quiet`).
    pub fn start(stats: Arc<Stats>, total: u64, ticks: u32, quiet: bool) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr_with_hz(5)
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30.cyan/blue}] {human_pos}/{human_len} sent ({rate}) \
                 {msg}",
            )
            .expect("a valid template")
            .with_key(
                "rate",
                |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0} records/s", state.per_sec());
                },
            )
            .progress_chars("=> "),
        );
        let task = {
            let bar = bar.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_millis(200));
                loop {
                    every.tick().await;
                    bar.set_position(Stats::get(&stats.sent));
                    bar.set_message(format!(
                        "second {}/{ticks}, {} retries, {} rejected, {} request errors, {} lost",
                        stats.second.load(Ordering::Relaxed),
                        Stats::get(&stats.retried),
                        Stats::get(&stats.rejected),
                        Stats::get(&stats.request_errors),
                        Stats::get(&stats.lost),
                    ));
                }
            })
        };
        Self { bar, task, quiet }
    }

    /// Prints a line above the bar (or on stderr when it is hidden, unless quiet).
    pub fn println(&self, line: impl AsRef<str>) {
        (self.printer())(line.as_ref().to_owned());
    }

    /// A printer for other tasks: lines above the bar, or plain stderr lines when it is hidden
    /// because stderr is not a terminal; nothing when quiet.
    pub fn printer(&self) -> impl Fn(String) + Send + Sync + 'static {
        let bar = self.bar.clone();
        let quiet = self.quiet;
        move |line| {
            if quiet {
            } else if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
        }
    }

    /// Stops refreshing and clears the bar.
    pub fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}
