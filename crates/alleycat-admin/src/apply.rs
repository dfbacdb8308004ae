//! Writing the rebuilt views back: each stored document is read (with its version or ETag), its
//! target computed, and written only if it differs, under the same condition the functions use;
//! a write that loses to a function is reported as a conflict, and the document is read and
//! computed again in the next round.

use std::collections::{BTreeMap, BTreeSet};

use alleycat_domain::{
    ClassHistory, LeaderboardEntry, MaxMerge, RaceKey, RacerFinal, SecondSeries, Standings,
};
use alleycat_ports::ranks::recount_class;
use alleycat_ports::{
    BestsKey, Claims, FinalsRepair, MergeStore, PortError, Queries, RankedRecords, RemoveStore,
    RetryError, RetryPolicy, TraceKey, retry,
};
use futures::StreamExt;

use crate::aggregate::{Aggregate, Rules};
use crate::report::{Change, Item};

/// What a rebuild needs of the table: every port the functions write through, plus removals.
pub trait Table:
    MergeStore<RaceKey, Standings, Version = u64>
    + RemoveStore<RaceKey, Standings>
    + MergeStore<BestsKey, SecondSeries, Version = u64>
    + RemoveStore<BestsKey, SecondSeries>
    + MergeStore<TraceKey, SecondSeries, Version = u64>
    + RemoveStore<TraceKey, SecondSeries>
    + FinalsRepair
    + RankedRecords
    + Queries
    + Claims
{
}

impl<T> Table for T where
    T: MergeStore<RaceKey, Standings, Version = u64>
        + RemoveStore<RaceKey, Standings>
        + MergeStore<BestsKey, SecondSeries, Version = u64>
        + RemoveStore<BestsKey, SecondSeries>
        + MergeStore<TraceKey, SecondSeries, Version = u64>
        + RemoveStore<TraceKey, SecondSeries>
        + FinalsRepair
        + RankedRecords
        + Queries
        + Claims
{
}

/// One document (or, for finals and leaderboards, one query's worth of items) to rebuild.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Doc {
    /// A race's standings.
    Standings(RaceKey),
    /// A race's finals.
    Finals(RaceKey),
    /// A class's leaderboard rows.
    Leaderboard(u8),
    /// A racer's bests in a class.
    Bests(BestsKey),
    /// A racer's trace of a race.
    Trace(TraceKey),
    /// A class history object.
    History(u8),
}

/// Every document the aggregate names, for `classes`.
pub fn documents(aggregate: &Aggregate, classes: &[u8]) -> BTreeSet<Doc> {
    let mut docs = BTreeSet::new();
    for race in aggregate.races.iter().chain(aggregate.standings.keys()) {
        docs.insert(Doc::Standings(*race));
        docs.insert(Doc::Finals(*race));
    }
    for key in aggregate.bests_named.iter().chain(aggregate.bests.keys()) {
        docs.insert(Doc::Bests(*key));
    }
    for key in aggregate.traces_named.iter().chain(aggregate.traces.keys()) {
        docs.insert(Doc::Trace(*key));
    }
    for class_id in classes {
        docs.insert(Doc::Leaderboard(*class_id));
        docs.insert(Doc::History(*class_id));
    }
    docs
}

/// A document as stored, read before the archive is listed again.
pub enum Snapshot {
    /// See [`Doc::Standings`].
    Standings(RaceKey, Option<(Standings, u64)>),
    /// See [`Doc::Finals`].
    Finals(RaceKey, Vec<RacerFinal>),
    /// See [`Doc::Leaderboard`].
    Leaderboard(u8, Vec<LeaderboardEntry>),
    /// See [`Doc::Bests`].
    Bests(BestsKey, Option<(SecondSeries, u64)>),
    /// See [`Doc::Trace`].
    Trace(TraceKey, Option<(SecondSeries, u64)>),
    /// See [`Doc::History`].
    History(u8, Option<(ClassHistory, String)>),
}

/// Reads `doc` as stored.
pub async fn load<T: Table, H: MergeStore<u8, ClassHistory, Version = String>>(
    doc: Doc,
    table: &T,
    histories: &H,
    policy: &RetryPolicy,
) -> Result<Snapshot, RetryError> {
    Ok(match doc {
        Doc::Standings(race) => Snapshot::Standings(
            race,
            retry(policy, || {
                MergeStore::<RaceKey, Standings>::load(table, &race)
            })
            .await?
            .0,
        ),
        Doc::Finals(race) => Snapshot::Finals(race, retry(policy, || table.finals(race)).await?.0),
        Doc::Leaderboard(class_id) => Snapshot::Leaderboard(
            class_id,
            retry(policy, || table.leaderboard(class_id, usize::MAX))
                .await?
                .0,
        ),
        Doc::Bests(key) => Snapshot::Bests(
            key,
            retry(policy, || {
                MergeStore::<BestsKey, SecondSeries>::load(table, &key)
            })
            .await?
            .0,
        ),
        Doc::Trace(key) => Snapshot::Trace(
            key,
            retry(policy, || {
                MergeStore::<TraceKey, SecondSeries>::load(table, &key)
            })
            .await?
            .0,
        ),
        Doc::History(class_id) => Snapshot::History(
            class_id,
            retry(policy, || histories.load(&class_id)).await?.0,
        ),
    })
}

/// What happened to one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Written (or, in a dry run, would be), or already right.
    Done(Change),
    /// A function wrote it since it was read: read and compute it again.
    Conflict,
}

/// How targets are computed and whether they are written.
pub struct Plan<'a> {
    /// What the archive rebuilt.
    pub aggregate: &'a Aggregate,
    /// The rules, for exclusions, the race clock and K.
    pub rules: &'a Rules,
    /// Races that close (plus skew and settle time) after this still receive data.
    pub now_ms: u64,
    /// How long after a race closes its records may still be on their way to the archive.
    pub settle_ms: u64,
    /// Compute and count only.
    pub dry_run: bool,
    /// Retries of each read and write.
    pub policy: RetryPolicy,
    /// Finals of the aggregate by race.
    pub finals: BTreeMap<RaceKey, Vec<RacerFinal>>,
    /// Leaderboard rows of the aggregate by class.
    pub records: BTreeMap<u8, Vec<LeaderboardEntry>>,
}

impl<'a> Plan<'a> {
    /// A plan for `aggregate`.
    pub fn new(aggregate: &'a Aggregate, rules: &'a Rules, now_ms: u64, settle_ms: u64) -> Self {
        let mut finals: BTreeMap<RaceKey, Vec<RacerFinal>> = BTreeMap::new();
        for ((race, _), result) in &aggregate.finals {
            finals.entry(*race).or_default().push(result.clone());
        }
        let mut records: BTreeMap<u8, Vec<LeaderboardEntry>> = BTreeMap::new();
        for ((class_id, _), entry) in &aggregate.records {
            records.entry(*class_id).or_default().push(entry.clone());
        }
        Self {
            aggregate,
            rules,
            now_ms,
            settle_ms,
            dry_run: false,
            policy: RetryPolicy::default(),
            finals,
            records,
        }
    }

    /// Whether race `race_id` may still have records in flight to the archive (Firehose
    /// buffers them): its stored documents are then merged with, not replaced by, the rebuild.
    pub fn is_live(&self, race_id: u64) -> bool {
        let clock = self.rules.plausibility.clock;
        let skew = u64::from(self.rules.plausibility.clock_skew_seconds) * 1000;
        self.now_ms
            < clock
                .race_closes_at(race_id)
                .saturating_add(skew + self.settle_ms)
    }

    fn excludes(&self, racer_id: u32) -> bool {
        self.rules.scope.excludes(racer_id)
    }

    /// Computes the targets of `snapshot` and writes what differs.
    pub async fn apply<T: Table, H: MergeStore<u8, ClassHistory, Version = String>>(
        &self,
        snapshot: Snapshot,
        table: &T,
        histories: &H,
    ) -> Result<Vec<(Item, Outcome)>, RetryError> {
        match snapshot {
            Snapshot::Standings(race, stored) => {
                let mut target = self
                    .aggregate
                    .standings
                    .get(&race)
                    .cloned()
                    .unwrap_or_default();
                if self.is_live(race.race_id)
                    && let Some((stored, _)) = &stored
                {
                    for (&racer, &output) in stored.results() {
                        if !self.excludes(racer) {
                            target.record(racer, output);
                        }
                    }
                }
                let target = (!target.is_empty()).then_some(target);
                let outcome = self.versioned(table, &race, stored, target).await?;
                Ok(vec![(Item::Standings(race), outcome)])
            }
            Snapshot::Trace(key, stored) => {
                let mut target = self.aggregate.traces.get(&key).cloned().unwrap_or_default();
                if self.is_live(key.race.race_id)
                    && !self.excludes(key.racer_id)
                    && let Some((stored, _)) = &stored
                {
                    target.merge(stored);
                }
                let target = (!target.is_empty()).then_some(target);
                let outcome = self.versioned(table, &key, stored, target).await?;
                Ok(vec![(Item::Trace(key), outcome)])
            }
            Snapshot::Bests(key, stored) => {
                // All time: what the archive holds, which includes every object merged into the
                // stored bests before they were read (the archive is listed again after reads).
                let target = self
                    .aggregate
                    .bests
                    .get(&key)
                    .filter(|s| !s.is_empty())
                    .cloned();
                let outcome = self.versioned(table, &key, stored, target).await?;
                Ok(vec![(Item::Bests(key), outcome)])
            }
            Snapshot::History(class_id, stored) => self
                .history(histories, class_id, stored)
                .await
                .map(|o| vec![(Item::History(class_id), o)]),
            Snapshot::Finals(race, stored) => self.finals(table, race, stored).await,
            Snapshot::Leaderboard(class_id, stored) => {
                self.leaderboard(table, class_id, stored).await
            }
        }
    }

    /// Replaces, creates or removes a versioned document.
    async fn versioned<K, V, T>(
        &self,
        table: &T,
        key: &K,
        stored: Option<(V, u64)>,
        target: Option<V>,
    ) -> Result<Outcome, RetryError>
    where
        K: Sync,
        V: PartialEq + Sync,
        T: RemoveStore<K, V> + MergeStore<K, V, Version = u64>,
    {
        let policy = &self.policy;
        let change = Change::between(stored.as_ref().map(|(old, _)| old), target.as_ref());
        if matches!(change, Change::Absent | Change::Unchanged) {
            return Ok(Outcome::Done(change));
        }
        if self.dry_run {
            return Ok(Outcome::Done(change));
        }
        let version = stored.as_ref().map(|(_, v)| v);
        let written = match (&target, version) {
            (Some(value), version) => retry(policy, || table.store(key, value, version)).await,
            (None, Some(version)) => retry(policy, || table.remove(key, version)).await,
            (None, None) => unreachable!("nothing stored, nothing to store"),
        };
        conditional(written.map(drop), change)
    }

    async fn history<H: MergeStore<u8, ClassHistory, Version = String>>(
        &self,
        histories: &H,
        class_id: u8,
        stored: Option<(ClassHistory, String)>,
    ) -> Result<Outcome, RetryError> {
        // Emptied rather than deleted: the API hands out its URL whether or not anyone rode.
        let target = self
            .aggregate
            .histories
            .get(&class_id)
            .cloned()
            .unwrap_or_else(|| ClassHistory::new(class_id, self.rules.top_k));
        let change = match &stored {
            None if target.entries() == 0 => return Ok(Outcome::Done(Change::Absent)),
            None => Change::Added,
            Some((old, _)) if old.to_json() == target.to_json() => {
                return Ok(Outcome::Done(Change::Unchanged));
            }
            Some(_) if target.entries() == 0 => Change::Removed,
            Some(_) => Change::Changed,
        };
        if self.dry_run {
            return Ok(Outcome::Done(change));
        }
        let etag = stored.as_ref().map(|(_, etag)| etag);
        let written = retry(&self.policy, || histories.store(&class_id, &target, etag)).await;
        conditional(written, change)
    }

    async fn finals<T: Table>(
        &self,
        table: &T,
        race: RaceKey,
        stored: Vec<RacerFinal>,
    ) -> Result<Vec<(Item, Outcome)>, RetryError> {
        let live = self.is_live(race.race_id);
        let mut targets: BTreeMap<u32, RacerFinal> = self
            .finals
            .get(&race)
            .into_iter()
            .flatten()
            .map(|f| (f.racer_id, f.clone()))
            .collect();
        let stored: BTreeMap<u32, RacerFinal> =
            stored.into_iter().map(|f| (f.racer_id, f)).collect();
        if live {
            // Not in the archive yet is not forged: keep what the archive cannot judge.
            for (racer, result) in &stored {
                if !self.excludes(*racer) {
                    targets.entry(*racer).or_insert_with(|| result.clone());
                }
            }
        }
        let racers: BTreeSet<u32> = targets.keys().chain(stored.keys()).copied().collect();
        let mut outcomes = Vec::new();
        for racer in racers {
            let item = Item::Final(race, racer);
            let (old, new) = (stored.get(&racer), targets.get(&racer));
            let change = Change::between(old, new);
            if change == Change::Absent {
                continue;
            }
            let outcome = if self.dry_run || change == Change::Unchanged {
                Outcome::Done(change)
            } else if let Some(new) = new {
                // A final is a fact put unconditionally, as the leaderboard writer puts it.
                retry(&self.policy, || table.put_final(new)).await?;
                Outcome::Done(change)
            } else {
                let old = old.expect("a removal removes something");
                conditional(
                    retry(&self.policy, || table.remove_final(old)).await,
                    change,
                )?
            };
            outcomes.push((item, outcome));
        }
        Ok(outcomes)
    }

    async fn leaderboard<T: Table>(
        &self,
        table: &T,
        class_id: u8,
        stored: Vec<LeaderboardEntry>,
    ) -> Result<Vec<(Item, Outcome)>, RetryError> {
        let mut targets: BTreeMap<u32, LeaderboardEntry> = self
            .records
            .get(&class_id)
            .into_iter()
            .flatten()
            .map(|e| (e.racer_id, e.clone()))
            .collect();
        let stored: BTreeMap<u32, LeaderboardEntry> =
            stored.into_iter().map(|e| (e.racer_id, e)).collect();
        for (racer, row) in &stored {
            // A record set in a race still receiving data may not be archived yet.
            if self.is_live(row.race_id) && !self.excludes(*racer) {
                targets
                    .entry(*racer)
                    .and_modify(|target| {
                        target.merge(row);
                    })
                    .or_insert_with(|| row.clone());
            }
        }
        let racers: BTreeSet<u32> = targets.keys().chain(stored.keys()).copied().collect();
        let mut outcomes = Vec::new();
        for racer in racers {
            let item = Item::Record(class_id, racer);
            let (old, new) = (stored.get(&racer), targets.get(&racer));
            let change = Change::between(old, new);
            if change == Change::Absent {
                continue;
            }
            let outcome = if self.dry_run || change == Change::Unchanged {
                Outcome::Done(change)
            } else {
                let written = if let Some(new) = new {
                    retry(&self.policy, || table.replace_record(class_id, new, old)).await
                } else {
                    let old = old.expect("a removal removes something");
                    retry(&self.policy, || table.remove_record(class_id, old)).await
                };
                conditional(written, change)?
            };
            outcomes.push((item, outcome));
        }
        if !self.dry_run {
            // Rows were replaced and removed without their rank counts (a rebuild lowers and
            // deletes, which the writer's transactions never do): recount the class from its
            // rows, conditional on no writer moving a count meanwhile.
            recount_class(table, class_id, &self.policy).await?;
        }
        Ok(outcomes)
    }
}

/// A conditional write's result as an outcome: a failed condition is a conflict to redo, any
/// other failure (after its retries) fails the rebuild.
fn conditional<T>(written: Result<T, RetryError>, change: Change) -> Result<Outcome, RetryError> {
    match written {
        Ok(_) => Ok(Outcome::Done(change)),
        Err(error) if error.last == PortError::Conflict => Ok(Outcome::Conflict),
        Err(error) => Err(error),
    }
}

/// Loads `docs`, `concurrency` at a time.
pub async fn load_all<T: Table, H: MergeStore<u8, ClassHistory, Version = String>>(
    docs: &[Doc],
    table: &T,
    histories: &H,
    policy: &RetryPolicy,
    concurrency: usize,
) -> Result<Vec<(Doc, Snapshot)>, RetryError> {
    futures::stream::iter(docs.iter().copied())
        .map(|doc| async move { load(doc, table, histories, policy).await.map(|s| (doc, s)) })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Applies `snapshots`, `concurrency` at a time: each item's outcome, by document.
pub async fn apply_all<T: Table, H: MergeStore<u8, ClassHistory, Version = String>>(
    plan: &Plan<'_>,
    snapshots: Vec<(Doc, Snapshot)>,
    table: &T,
    histories: &H,
    concurrency: usize,
) -> Result<Vec<(Doc, Vec<(Item, Outcome)>)>, RetryError> {
    futures::stream::iter(snapshots)
        .map(|(doc, snapshot)| async move {
            plan.apply(snapshot, table, histories)
                .await
                .map(|o| (doc, o))
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}
