//! Every racer's rank: leaderboard pages through the whole class, and a racer's place in a
//! constant number of table requests.
//!
//! A class's rows (`class#<c>` / `racer#<id>`) keep the `byBest` index; beside them one **rank
//! counts** item (`class#<c>` / `counts`, no `best`, so it stays out of the index) holds how many
//! rows each half-unit bucket of bests holds ([`alleycat_domain::leaderboard::rank_bucket`]). The
//! leaderboard writer changes rows and counts in one transaction ([`RankedRecords::write_records`],
//! driven by [`offer_records`]), so the counts are exactly the rows'. A racer's place is then
//! 1 + the counts of every higher bucket + the rows of its own bucket with a higher best (one
//! bounded index query): the row, the counts item and that query, whatever the class size.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;

use alleycat_domain::leaderboard::count_deltas;
use alleycat_domain::{LeaderboardEntry, MaxMerge, Output};

use crate::error::PortError;
use crate::retry::{RetryError, RetryPolicy};

/// Rows one transaction writes at most: DynamoDB's 100 actions, less the counts item's update.
pub const ROWS_PER_TRANSACTION: usize = 99;

/// One page of a class leaderboard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderboardPage {
    /// Rows in [`LeaderboardEntry::rank_cmp`] order.
    pub entries: Vec<LeaderboardEntry>,
    /// Whether rows follow the last one.
    pub more: bool,
}

/// A racer's place on a class leaderboard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RacerRank {
    /// The racer's row.
    pub entry: LeaderboardEntry,
    /// 1 + the rows with a strictly higher best.
    pub place: u64,
    /// Rows in the class.
    pub of: u64,
}

/// A leaderboard row to write, conditional on the row it replaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowWrite {
    /// The new row.
    pub entry: LeaderboardEntry,
    /// The row read before (`None`: none); the write fails with [`PortError::Conflict`] if the
    /// stored row is no longer exactly this.
    pub expected: Option<LeaderboardEntry>,
}

/// The read side of ranks, for the API.
pub trait Ranks: Sync {
    /// The rows of `class_id` that come after `after` in [`LeaderboardEntry::rank_cmp`] order
    /// (all rows without it), at most `limit`, and whether more follow.
    fn leaderboard_page(
        &self,
        class_id: u8,
        after: Option<&LeaderboardEntry>,
        limit: usize,
    ) -> impl Future<Output = Result<LeaderboardPage, PortError>> + Send;

    /// A racer's row, place and class size; `None` without a row.
    fn rank(
        &self,
        class_id: u8,
        racer_id: u32,
    ) -> impl Future<Output = Result<Option<RacerRank>, PortError>> + Send;
}

/// The write side of ranks: rows and their counts, changed together.
pub trait RankedRecords: Sync {
    /// The stored rows of `racer_ids` in `class_id` (strongly consistent; absent: no row).
    fn records(
        &self,
        class_id: u8,
        racer_ids: &[u32],
    ) -> impl Future<Output = Result<HashMap<u32, LeaderboardEntry>, PortError>> + Send;

    /// Writes at most [`ROWS_PER_TRANSACTION`] rows of `class_id` (one per racer) and moves
    /// each changed racer's count from its old bucket to its new one, all or nothing;
    /// [`PortError::Conflict`] if any row is no longer its `expected`.
    fn write_records(
        &self,
        class_id: u8,
        writes: &[RowWrite],
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Recomputes the counts of `class_id` from its rows (after a rebuild rewrote rows without
    /// them); [`PortError::Conflict`] if a writer changed the counts meanwhile.
    fn recount(&self, class_id: u8) -> impl Future<Output = Result<(), PortError>> + Send;
}

impl<T: Ranks + Send> Ranks for Arc<T> {
    fn leaderboard_page(
        &self,
        class_id: u8,
        after: Option<&LeaderboardEntry>,
        limit: usize,
    ) -> impl Future<Output = Result<LeaderboardPage, PortError>> + Send {
        (**self).leaderboard_page(class_id, after, limit)
    }

    fn rank(
        &self,
        class_id: u8,
        racer_id: u32,
    ) -> impl Future<Output = Result<Option<RacerRank>, PortError>> + Send {
        (**self).rank(class_id, racer_id)
    }
}

impl<T: RankedRecords + Send> RankedRecords for Arc<T> {
    fn records(
        &self,
        class_id: u8,
        racer_ids: &[u32],
    ) -> impl Future<Output = Result<HashMap<u32, LeaderboardEntry>, PortError>> + Send {
        (**self).records(class_id, racer_ids)
    }

    fn write_records(
        &self,
        class_id: u8,
        writes: &[RowWrite],
    ) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).write_records(class_id, writes)
    }

    fn recount(&self, class_id: u8) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).recount(class_id)
    }
}

/// The net count changes of `writes`, by bucket.
pub fn write_deltas(writes: &[RowWrite]) -> BTreeMap<u32, i64> {
    count_deltas(
        writes
            .iter()
            .map(|w| (w.expected.as_ref().map(|e| e.best), w.entry.best)),
    )
}

/// Adds `deltas` ([`write_deltas`]) to a class's `counts` (rows per bucket): what a store that
/// keeps its counts itself, rather than `ADD`ing to them, writes back.
pub fn apply_deltas(counts: &mut BTreeMap<u32, i64>, deltas: BTreeMap<u32, i64>) {
    for (bucket, delta) in deltas {
        *counts.entry(bucket).or_insert(0) += delta;
    }
}

/// Pages through an index that returns rows best first (ties in any order), for every store:
/// feed it the index's rows in that order until [`PageBuilder::push`] says it has enough, then
/// [`PageBuilder::finish`]. Rows of the page's last best are all read before the page is cut,
/// since any of them may rank first.
#[derive(Debug)]
pub struct PageBuilder<'a> {
    after: Option<&'a LeaderboardEntry>,
    limit: usize,
    kept: Vec<LeaderboardEntry>,
}

impl<'a> PageBuilder<'a> {
    /// A page of `limit` rows after `after`.
    pub fn new(after: Option<&'a LeaderboardEntry>, limit: usize) -> Self {
        Self {
            after,
            limit,
            kept: Vec::new(),
        }
    }

    /// The highest best the index must return (inclusive): the cursor's.
    pub fn start(&self) -> Option<Output> {
        self.after.map(|a| a.best)
    }

    /// Adds the index's next row; returns whether the page is complete (reading may stop).
    pub fn push(&mut self, row: LeaderboardEntry) -> bool {
        // Rows tied with the cursor's best that rank before or at it were on earlier pages.
        let enough = |kept: &[LeaderboardEntry], limit: usize, best: Output| {
            kept.len() > limit && kept.get(limit).is_some_and(|edge| best < edge.best)
        };
        if enough(&self.kept, self.limit, row.best) {
            return true;
        }
        if self.after.is_none_or(|a| a.rank_cmp(&row).is_lt()) {
            self.kept.push(row);
        }
        false
    }

    /// The page: the first `limit` rows in rank order, and whether more follow.
    pub fn finish(mut self) -> LeaderboardPage {
        self.kept.sort_unstable_by(LeaderboardEntry::rank_cmp);
        let more = self.kept.len() > self.limit;
        self.kept.truncate(self.limit);
        LeaderboardPage {
            entries: self.kept,
            more,
        }
    }
}

/// What offering a batch of results to a class leaderboard did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OfferOutcome {
    /// Racers whose row was written.
    pub improved: Vec<u32>,
    /// The rows as read by the attempt that succeeded, for racers that had one: what each
    /// offered result was compared with.
    pub observed: HashMap<u32, LeaderboardEntry>,
    /// Transactions that lost to a concurrent writer and were re-read and retried.
    pub conflicts: u32,
    /// Throttled or transient failures retried.
    pub retries: u32,
    /// Racers whose rows could not be written, with the error of their last attempt.
    pub failed: Vec<(Vec<u32>, RetryError)>,
}

/// Offers each racer's best of `entries` to the leaderboard of `class_id`: reads the racers'
/// rows, and writes the rows each entry beats ([`LeaderboardEntry::beats`]) with their counts in
/// transactions of at most [`ROWS_PER_TRANSACTION`] rows, each conditional on the rows it read.
///
/// A transaction that loses to a concurrent writer re-reads its racers and tries again with
/// backoff; throttling and transient failures are retried too; both share the policy's attempts.
/// A replay finds the rows already written and writes nothing, so nothing is counted twice.
/// Racers of a transaction that still fails are reported in [`OfferOutcome::failed`], each group
/// with its error; the others' rows are written.
pub async fn offer_records<T: RankedRecords>(
    table: &T,
    class_id: u8,
    entries: &[LeaderboardEntry],
    policy: &RetryPolicy,
) -> OfferOutcome {
    let mut best: BTreeMap<u32, LeaderboardEntry> = BTreeMap::new();
    for entry in entries {
        match best.get_mut(&entry.racer_id) {
            Some(current) => {
                current.merge(entry);
            }
            None => {
                best.insert(entry.racer_id, entry.clone());
            }
        }
    }
    let racers: Vec<u32> = best.keys().copied().collect();
    let mut outcome = OfferOutcome::default();
    for group in racers.chunks(ROWS_PER_TRANSACTION) {
        offer_group(table, class_id, group, &best, policy, &mut outcome).await;
    }
    outcome
}

/// One transaction's racers, read and written until they succeed or the attempts run out.
async fn offer_group<T: RankedRecords>(
    table: &T,
    class_id: u8,
    racers: &[u32],
    best: &BTreeMap<u32, LeaderboardEntry>,
    policy: &RetryPolicy,
    outcome: &mut OfferOutcome,
) {
    let max_attempts = policy.max_attempts.max(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = async {
            let stored = table.records(class_id, racers).await?;
            let writes: Vec<RowWrite> = racers
                .iter()
                .filter_map(|racer| {
                    let entry = &best[racer];
                    let expected = stored.get(racer);
                    entry.beats(expected).then(|| RowWrite {
                        entry: entry.clone(),
                        expected: expected.cloned(),
                    })
                })
                .collect();
            if !writes.is_empty() {
                table.write_records(class_id, &writes).await?;
            }
            let improved: Vec<u32> = writes.iter().map(|w| w.entry.racer_id).collect();
            Ok::<_, PortError>((improved, stored))
        }
        .await;
        match result {
            Ok((improved, stored)) => {
                outcome.improved.extend(improved);
                outcome.observed.extend(stored);
                return;
            }
            Err(error)
                if (error == PortError::Conflict || error.is_retryable())
                    && attempt < max_attempts =>
            {
                if error == PortError::Conflict {
                    outcome.conflicts += 1;
                } else {
                    outcome.retries += 1;
                }
                policy.wait(attempt - 1).await;
            }
            Err(last) => {
                outcome.failed.push((
                    racers.to_vec(),
                    RetryError {
                        attempts: attempt,
                        last,
                    },
                ));
                return;
            }
        }
    }
}

/// Recounts a class under retries: [`RankedRecords::recount`] until it is not interrupted by a
/// writer.
pub async fn recount_class<T: RankedRecords>(
    table: &T,
    class_id: u8,
    policy: &RetryPolicy,
) -> Result<u32, RetryError> {
    let max_attempts = policy.max_attempts.max(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match table.recount(class_id).await {
            Ok(()) => return Ok(attempt - 1),
            Err(error)
                if (error == PortError::Conflict || error.is_retryable())
                    && attempt < max_attempts =>
            {
                policy.wait(attempt - 1).await;
            }
            Err(last) => {
                return Err(RetryError {
                    attempts: attempt,
                    last,
                });
            }
        }
    }
}
