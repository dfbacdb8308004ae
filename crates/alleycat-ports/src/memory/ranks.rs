//! The rank ports in memory ([`crate::ranks`]): rows and their bucket counts changed together,
//! pages and places computed as the real stores compute them (counts + one bucket), so handler
//! tests exercise the same arithmetic.

use std::collections::{BTreeMap, HashMap};

use alleycat_domain::LeaderboardEntry;
use alleycat_domain::leaderboard::{bucket_counts, bucket_range, place_from_counts, rank_bucket};

use super::{MemoryTable, lock};
use crate::error::PortError;
use crate::ranks::{
    LeaderboardPage, PageBuilder, RacerRank, RankedRecords, Ranks, RowWrite, apply_deltas,
    write_deltas,
};

/// A class's rank counts item: rows per bucket, and a version every change bumps.
#[derive(Clone, Debug, Default)]
pub(super) struct Counts {
    buckets: BTreeMap<u32, i64>,
    version: u64,
}

impl MemoryTable {
    /// The rank counts of a class (buckets with a non-zero count), for assertions.
    pub fn rank_counts(&self, class_id: u8) -> BTreeMap<u32, i64> {
        lock(&self.tables)
            .counts
            .get(&class_id)
            .map(|c| {
                c.buckets
                    .iter()
                    .filter(|(_, n)| **n != 0)
                    .map(|(b, n)| (*b, *n))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Ranks for MemoryTable {
    async fn leaderboard_page(
        &self,
        class_id: u8,
        after: Option<&LeaderboardEntry>,
        limit: usize,
    ) -> Result<LeaderboardPage, PortError> {
        self.faults.check(&["leaderboard_page"])?;
        let mut rows: Vec<LeaderboardEntry> = lock(&self.tables)
            .leaderboard
            .range((class_id, 0)..=(class_id, u32::MAX))
            .map(|(_, row)| row.clone())
            .collect();
        // The index's order: best first, ties by racer id descending (any order would do).
        rows.sort_unstable_by(|a, b| b.best.cmp(&a.best).then(b.racer_id.cmp(&a.racer_id)));
        let mut page = PageBuilder::new(after, limit);
        for row in rows {
            if page.start().is_some_and(|start| row.best > start) {
                continue;
            }
            if page.push(row) {
                break;
            }
        }
        Ok(page.finish())
    }

    async fn rank(&self, class_id: u8, racer_id: u32) -> Result<Option<RacerRank>, PortError> {
        self.faults.check(&["rank"])?;
        let tables = lock(&self.tables);
        let Some(entry) = tables.leaderboard.get(&(class_id, racer_id)).cloned() else {
            return Ok(None);
        };
        let counts: BTreeMap<u32, u64> = tables
            .counts
            .get(&class_id)
            .map(|c| {
                c.buckets
                    .iter()
                    .map(|(b, n)| (*b, u64::try_from(*n).unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        let bucket = rank_bucket(entry.best);
        let (_, high) = bucket_range(bucket);
        let above = tables
            .leaderboard
            .range((class_id, 0)..=(class_id, u32::MAX))
            .filter(|(_, row)| row.best > entry.best && row.best <= high)
            .count() as u64;
        let (place, of) = place_from_counts(&counts, bucket, above);
        Ok(Some(RacerRank { entry, place, of }))
    }
}

impl RankedRecords for MemoryTable {
    async fn records(
        &self,
        class_id: u8,
        racer_ids: &[u32],
    ) -> Result<HashMap<u32, LeaderboardEntry>, PortError> {
        self.faults.check(&["records"])?;
        let tables = lock(&self.tables);
        Ok(racer_ids
            .iter()
            .filter_map(|id| {
                tables
                    .leaderboard
                    .get(&(class_id, *id))
                    .map(|row| (*id, row.clone()))
            })
            .collect())
    }

    async fn write_records(&self, class_id: u8, writes: &[RowWrite]) -> Result<(), PortError> {
        self.faults.check(&["write_records"])?;
        let mut tables = lock(&self.tables);
        for write in writes {
            let stored = tables.leaderboard.get(&(class_id, write.entry.racer_id));
            if stored != write.expected.as_ref() {
                return Err(PortError::Conflict);
            }
        }
        for write in writes {
            tables
                .leaderboard
                .insert((class_id, write.entry.racer_id), write.entry.clone());
        }
        let counts = tables.counts.entry(class_id).or_default();
        apply_deltas(&mut counts.buckets, write_deltas(writes));
        counts.version += 1;
        Ok(())
    }

    async fn recount(&self, class_id: u8) -> Result<(), PortError> {
        self.faults.check(&["recount"])?;
        let mut tables = lock(&self.tables);
        let buckets = bucket_counts(
            tables
                .leaderboard
                .range((class_id, 0)..=(class_id, u32::MAX))
                .map(|(_, row)| row),
        )
        .into_iter()
        .map(|(b, n)| (b, i64::try_from(n).unwrap_or(i64::MAX)))
        .collect::<BTreeMap<u32, i64>>();
        let counts = tables.counts.entry(class_id).or_default();
        let current: BTreeMap<u32, i64> = counts
            .buckets
            .iter()
            .filter(|(_, n)| **n != 0)
            .map(|(b, n)| (*b, *n))
            .collect();
        if current != buckets {
            counts.buckets = buckets;
            counts.version += 1;
        }
        Ok(())
    }
}
