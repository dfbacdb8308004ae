//! The repair ports in memory ([`crate::repair`]): conditional deletes and replacements with the
//! semantics of the real stores, fault injection included.

use std::collections::BTreeMap;

use alleycat_domain::{LeaderboardEntry, RaceKey, RacerFinal, SecondSeries, Standings};

use super::{MemoryObjects, MemoryTable, Versioned, lock};
use crate::error::PortError;
use crate::repair::{FinalsRepair, ListObjects, Listed, RemoveStore};
use crate::table::{BestsKey, TraceKey};

fn remove_versioned<K: Ord, V>(
    map: &mut BTreeMap<K, Versioned<V>>,
    key: &K,
    expected: u64,
) -> Result<(), PortError> {
    if map.get(key).map(|v| v.version) != Some(expected) {
        return Err(PortError::Conflict);
    }
    map.remove(key);
    Ok(())
}

macro_rules! memory_remove_store {
    ($key:ty, $value:ty, $field:ident, $kind:literal) => {
        impl RemoveStore<$key, $value> for MemoryTable {
            async fn remove(&self, key: &$key, expected: &u64) -> Result<(), PortError> {
                self.faults.check(&["remove", concat!("remove:", $kind)])?;
                remove_versioned(&mut lock(&self.tables).$field, key, *expected)
            }
        }
    };
}

memory_remove_store!(RaceKey, Standings, standings, "standings");
memory_remove_store!(BestsKey, SecondSeries, bests, "bests");
memory_remove_store!(TraceKey, SecondSeries, traces, "trace");

impl FinalsRepair for MemoryTable {
    async fn replace_record(
        &self,
        class_id: u8,
        entry: &LeaderboardEntry,
        expected: Option<&LeaderboardEntry>,
    ) -> Result<(), PortError> {
        self.faults.check(&["replace_record"])?;
        let mut tables = lock(&self.tables);
        let key = (class_id, entry.racer_id);
        if tables.leaderboard.get(&key) != expected {
            return Err(PortError::Conflict);
        }
        tables.leaderboard.insert(key, entry.clone());
        Ok(())
    }

    async fn remove_record(
        &self,
        class_id: u8,
        expected: &LeaderboardEntry,
    ) -> Result<(), PortError> {
        self.faults.check(&["remove_record"])?;
        let mut tables = lock(&self.tables);
        let key = (class_id, expected.racer_id);
        if tables.leaderboard.get(&key) != Some(expected) {
            return Err(PortError::Conflict);
        }
        tables.leaderboard.remove(&key);
        Ok(())
    }

    async fn remove_final(&self, expected: &RacerFinal) -> Result<(), PortError> {
        self.faults.check(&["remove_final"])?;
        let race = RaceKey {
            class_id: expected.class_id,
            race_id: expected.race_id,
        };
        let mut tables = lock(&self.tables);
        let key = (race, expected.racer_id);
        if tables.finals.get(&key) != Some(expected) {
            return Err(PortError::Conflict);
        }
        tables.finals.remove(&key);
        Ok(())
    }
}

impl ListObjects for MemoryObjects {
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, PortError> {
        self.faults.check(&["list"])?;
        Ok(lock(&self.bucket)
            .objects
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(key, (object, _))| Listed {
                key: key.clone(),
                size: object.bytes.len() as u64,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Finals, MergeStore};
    use alleycat_domain::Output;

    fn entry(racer_id: u32, best: u32) -> LeaderboardEntry {
        LeaderboardEntry {
            racer_id,
            name: "r".into(),
            best: Output::from_ten_thousandths(best),
            race_id: 1,
            updated_at: 1,
        }
    }

    #[tokio::test]
    async fn removals_hold_only_for_the_version_read() -> Result<(), PortError> {
        let table = MemoryTable::new();
        let race = RaceKey {
            class_id: 1,
            race_id: 9,
        };
        let standings: Standings = [(7, Output::from_ten_thousandths(5))].into_iter().collect();
        table.store(&race, &standings, None).await?;
        assert_eq!(table.remove(&race, &2).await, Err(PortError::Conflict));
        table.remove(&race, &1).await?;
        assert_eq!(table.remove(&race, &1).await, Err(PortError::Conflict));
        assert!(table.all_standings().is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn a_record_can_be_lowered_and_removed_only_as_read() -> Result<(), PortError> {
        let table = MemoryTable::new();
        let forged = entry(7, 4_702_500);
        table.offer_record(1, &forged).await?;
        let fair = entry(7, 1_000_000);
        // A lower row is refused by the functions' offer, accepted by a replace of what was read.
        assert!(!table.offer_record(1, &fair).await?);
        assert_eq!(
            table.replace_record(1, &fair, None).await,
            Err(PortError::Conflict)
        );
        table.replace_record(1, &fair, Some(&forged)).await?;
        assert_eq!(table.all_leaderboard_rows()[&(1, 7)], fair);
        assert_eq!(
            table.remove_record(1, &forged).await,
            Err(PortError::Conflict)
        );
        table.remove_record(1, &fair).await?;
        assert!(table.all_leaderboard_rows().is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn a_final_is_removed_only_if_unchanged() -> Result<(), PortError> {
        let table = MemoryTable::new();
        let result = RacerFinal {
            class_id: 1,
            race_id: 2,
            racer_id: 3,
            name: "r".into(),
            output: Output::from_ten_thousandths(10),
            finished_at: 4,
        };
        table.put_final(&result).await?;
        let other = RacerFinal {
            finished_at: 5,
            ..result.clone()
        };
        assert_eq!(table.remove_final(&other).await, Err(PortError::Conflict));
        table.remove_final(&result).await?;
        assert!(table.all_finals().is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn listings_keep_to_their_prefix() -> Result<(), PortError> {
        let bucket = MemoryObjects::new();
        bucket.insert("raw/b", vec![0; 3]);
        bucket.insert("raw/a", vec![0; 2]);
        bucket.insert("processing-failed/c", vec![0]);
        let listed = bucket.list("raw/").await?;
        let keys: Vec<(&str, u64)> = listed.iter().map(|l| (l.key.as_str(), l.size)).collect();
        assert_eq!(keys, [("raw/a", 2), ("raw/b", 3)]);
        Ok(())
    }
}
