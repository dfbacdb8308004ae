//! Operator commands for Alleycat; today one: `alleycat-admin rebuild`, which recomputes every
//! view from the delivery archive and writes it back.
//!
//! # Why
//!
//! Every view is a max-merge, so a forged record that got in (before the trust rules, or by a
//! racer who rode implausibly well on their own claim) stands forever: no later record can lower
//! a maximum. The archive (Firehose's gzip NDJSON under `raw/` of the delivery bucket) holds
//! every record the transformer admitted, with the platform's `arrivedAt` and, for MQTT
//! publishers, the `identityId` the IoT rule stamped. Recomputing from it under today's rules,
//! and *replacing* the stored documents, removes what the rules (or the operator) reject.
//!
//! # What is recomputed, and from what
//!
//! Each archived line is judged as the functions judge a record: its class must be in scope
//! (`--class`, every class by default); an excluded racer's line (`--exclude-racer`) moves no
//! view; it must be plausible ([`alleycat_domain::Plausibility::check`] at its `arrivedAt`; a line
//! archived before `arrivedAt` existed is judged by the race-window rule alone); and a line an
//! identity published counts only if that identity holds the racer now
//! ([`alleycat_domain::check_holder`] with the current claims, read once per racer in batches of
//! 100).
//!
//! - **All-time views** (leaderboard rows, racer bests, class histories with the configured K)
//!   are recomputed from the whole archive of the classes in scope.
//! - **Per-race views** (race standings, racer finals, racer traces) are recomputed only for
//!   races whose start window meets `--since`/`--until` (every race by default).
//!
//! # How documents are written
//!
//! A rebuilt document **replaces** the stored one, with the conditional write the functions use
//! (an item's version, an object's ETag; a leaderboard row or final is deleted or lowered only if
//! it still is what was read). A write that loses to a function is a conflict: the document is
//! read and computed again in the next round. Documents only excluded or rejected lines made are
//! **deleted** (standings, finals, leaderboard rows, bests, traces) or, for class histories,
//! **emptied** (the API hands out a history's URL whether or not anyone rode). An unchanged
//! document is not written, so a second rebuild writes nothing.
//!
//! **Safe while races go on.** Two kinds of data can be stored but not archived yet:
//!
//! - records of a race that still receives data, which Firehose buffers (up to 15 minutes)
//!   before archiving. For a race that is not over plus the clock skew plus `--settle-seconds`
//!   (default 900), the rebuild writes *rebuilt ⊔ (stored minus excluded racers)*: its standings,
//!   traces and finals (a final the archive holds replaces the stored one; others are kept), and
//!   a leaderboard row set in such a race is max-merged with the rebuilt one. Forged data of a
//!   live race is removed by a rebuild after it settles.
//! - objects archived after the listing, which the history merger may merge into bests, traces
//!   and histories before the rebuild writes them. The archive is therefore listed again *after*
//!   every stored document of a round has been read, and the new objects folded in: a rebuilt
//!   document holds every object merged into the stored one it replaces, and a merge after the
//!   read changes the version, so the write conflicts and is redone.
//!
//! **The archive must reach back.** Raw objects expire (`RawDataRetentionDays`, 30 by default);
//! all-time views rebuilt from a shorter archive would lose older records. A stored leaderboard
//! row of a race older than the archive's first race of its class stops the rebuild before it
//! writes anything, unless `--allow-archive-gaps` accepts that loss.
//!
//! On the embedded stack the stack must be stopped: [`alleycat_local::repair::DataDir`] takes the
//! data directory's `LOCK`, which the running stack holds.

pub mod aggregate;
pub mod apply;
pub mod archive;
pub mod report;
pub mod scope;

use std::collections::BTreeSet;

use alleycat_domain::ClassHistory;
use alleycat_ports::{
    Claims, ListObjects, MergeStore, ObjectStore, Queries, RetryError, RetryPolicy,
};
use indicatif::ProgressBar;

pub use aggregate::{Aggregate, Counts, Rules};
pub use apply::{Doc, Table};
pub use report::{Change, Item, Report, Tally, View};
pub use scope::{Scope, parse_time};

use apply::{Outcome, Plan};
use archive::ClaimCache;

/// How a rebuild runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The rules and the scope.
    pub rules: Rules,
    /// The time now, epoch ms: which races still receive data.
    pub now_ms: u64,
    /// How long after a race closes (plus skew) its records may still be on their way to the
    /// archive.
    pub settle_seconds: u32,
    /// Compute and report only.
    pub dry_run: bool,
    /// Rebuild even if the archive does not reach back to every stored record.
    pub allow_archive_gaps: bool,
    /// Decoding threads.
    pub workers: usize,
    /// Reads and writes in flight.
    pub concurrency: usize,
    /// Retries of each read and write.
    pub policy: RetryPolicy,
    /// Rounds of writes before giving up on documents that keep conflicting.
    pub max_rounds: u32,
}

impl Options {
    /// Defaults around `rules` at `now_ms`.
    pub fn new(rules: Rules, now_ms: u64) -> Self {
        Self {
            rules,
            now_ms,
            settle_seconds: 900,
            dry_run: false,
            allow_archive_gaps: false,
            workers: archive::default_workers(),
            concurrency: 16,
            policy: RetryPolicy::default(),
            max_rounds: 8,
        }
    }
}

/// Why a rebuild stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The archive could not be listed or read.
    #[error("reading the archive: {0}")]
    Archive(#[source] RetryError),
    /// Claims could not be read.
    #[error("reading claims: {0}")]
    Claims(#[source] RetryError),
    /// A document could not be read or written (documents before it may have been written; a
    /// rebuild can simply run again).
    #[error("writing the views: {0}")]
    Write(#[source] RetryError),
    /// Stored records are older than the archive.
    #[error(
        "class {class_id}: {rows} leaderboard row(s) come from races before the archive's first \
         (race {first_race:?}); rebuilding would drop them (raw objects expire after \
         RawDataRetentionDays). Nothing was written; pass --allow-archive-gaps to accept the loss"
    )]
    ArchiveGap {
        /// The class.
        class_id: u8,
        /// Rows older than the archive.
        rows: usize,
        /// The archive's first race of the class, if it has any.
        first_race: Option<u64>,
    },
    /// Documents still conflicted after the last round.
    #[error("{0} document(s) kept changing under the rebuild; run it again")]
    Unsettled(usize),
}

/// Rebuilds every view in scope from `delivery`'s archive into `table` and `histories`;
/// `progress` advances over the archive's bytes.
pub async fn rebuild<D, T, H>(
    delivery: &D,
    table: &T,
    histories: &H,
    options: &Options,
    progress: &ProgressBar,
) -> Result<Report, Error>
where
    D: ObjectStore + ListObjects,
    T: Table,
    H: MergeStore<u8, ClassHistory, Version = String>,
{
    let rules = &options.rules;
    let policy = &options.policy;
    let listed = archive::list(delivery, policy)
        .await
        .map_err(Error::Archive)?;
    progress.set_length(listed.iter().map(|l| l.size).sum());
    let mut seen: BTreeSet<String> = listed.iter().map(|l| l.key.clone()).collect();
    let mut aggregate = archive::read(
        delivery,
        &listed,
        rules,
        options.workers,
        options.concurrency,
        policy,
        progress,
    )
    .await
    .map_err(Error::Archive)?;
    let mut claims = ClaimCache::default();
    admit(&mut aggregate, table, &mut claims, rules, policy).await?;
    let classes = rules.scope.classes();
    check_horizon(&aggregate, table, &classes, options).await?;

    let mut report = Report {
        dry_run: options.dry_run,
        ..Report::default()
    };
    let mut done: BTreeSet<Doc> = BTreeSet::new();
    let mut docs: Vec<Doc> = apply::documents(&aggregate, &classes).into_iter().collect();
    while !docs.is_empty() {
        if report.rounds == options.max_rounds {
            return Err(Error::Unsettled(docs.len()));
        }
        report.rounds += 1;
        let snapshots = apply::load_all(&docs, table, histories, policy, options.concurrency)
            .await
            .map_err(Error::Write)?;
        if !options.dry_run {
            // Whatever a function merged into the documents just read came from objects that
            // exist now: fold them in before replacing anything.
            let mut relisted = archive::list(delivery, policy)
                .await
                .map_err(Error::Archive)?;
            relisted.retain(|l| !seen.contains(&l.key));
            if !relisted.is_empty() {
                progress.inc_length(relisted.iter().map(|l| l.size).sum());
                seen.extend(relisted.iter().map(|l| l.key.clone()));
                let mut more = archive::read(
                    delivery,
                    &relisted,
                    rules,
                    options.workers,
                    options.concurrency,
                    policy,
                    progress,
                )
                .await
                .map_err(Error::Archive)?;
                admit(&mut more, table, &mut claims, rules, policy).await?;
                aggregate.merge(more);
            }
        }
        let mut plan = Plan::new(
            &aggregate,
            rules,
            options.now_ms,
            u64::from(options.settle_seconds) * 1000,
        );
        plan.dry_run = options.dry_run;
        plan.policy = *policy;
        let results = apply::apply_all(&plan, snapshots, table, histories, options.concurrency)
            .await
            .map_err(Error::Write)?;
        let mut again = BTreeSet::new();
        for (doc, outcomes) in results {
            for (item, outcome) in outcomes {
                match outcome {
                    // The first outcome counts: a document written, then redone for another
                    // item's conflict, stays "changed".
                    Outcome::Done(change) => {
                        report.items.entry(item).or_insert(change);
                    }
                    Outcome::Conflict => {
                        again.insert(doc);
                    }
                }
            }
            if !again.contains(&doc) {
                done.insert(doc);
            }
        }
        // Objects found on the relisting may name documents no round has read yet.
        for doc in apply::documents(&aggregate, &classes) {
            if !done.contains(&doc) {
                again.insert(doc);
            }
        }
        docs = again.into_iter().collect();
    }
    report.counts = aggregate.counts;
    Ok(report)
}

/// Reads the claims the aggregate's pending lines need and applies the holder rule.
async fn admit<C: Claims>(
    aggregate: &mut Aggregate,
    claims: &C,
    cache: &mut ClaimCache,
    rules: &Rules,
    policy: &RetryPolicy,
) -> Result<(), Error> {
    cache
        .fetch(claims, &aggregate.pending_racers(), policy)
        .await
        .map_err(Error::Claims)?;
    aggregate.admit_pending(cache.held(), rules);
    Ok(())
}

/// Refuses to rebuild all-time views from an archive that no longer holds stored records.
async fn check_horizon<T: Queries>(
    aggregate: &Aggregate,
    table: &T,
    classes: &[u8],
    options: &Options,
) -> Result<(), Error> {
    if options.allow_archive_gaps {
        return Ok(());
    }
    for &class_id in classes {
        let (rows, _) =
            alleycat_ports::retry(&options.policy, || table.leaderboard(class_id, usize::MAX))
                .await
                .map_err(Error::Write)?;
        let first_race = aggregate.first_race.get(&class_id).copied();
        let older = rows
            .iter()
            .filter(|row| !options.rules.scope.excludes(row.racer_id))
            .filter(|row| first_race.is_none_or(|first| row.race_id < first))
            .count();
        if older > 0 {
            return Err(Error::ArchiveGap {
                class_id,
                rows: older,
                first_race,
            });
        }
    }
    Ok(())
}
