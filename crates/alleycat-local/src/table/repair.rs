//! The repair ports ([`alleycat_ports::repair`]) on the embedded table: deletes and replacements
//! conditional on what the rebuild read, each in one transaction with its change (a `REMOVE`
//! carries the old image, as a DynamoDB stream's does; the publisher ignores it).

use alleycat_domain::{LeaderboardEntry, RaceKey, RacerFinal, SecondSeries, Standings};
use alleycat_ports::keys;
use alleycat_ports::{BestsKey, FinalsRepair, PortError, RemoveStore, TraceKey};

use super::claims::remove;
use super::{
    Columns, LocalTable, Merged, NewItem, final_image, final_key, get_value, get_versioned,
    leaderboard_image, merged_image, put, to_json,
};

/// `Ok` if the write happened, the conflict of a failed condition otherwise.
fn written(written: bool) -> Result<(), PortError> {
    if written {
        Ok(())
    } else {
        Err(PortError::Conflict)
    }
}

impl LocalTable {
    fn remove_merged<K, V: Merged<K>>(&self, key: &K, expected: u64) -> Result<(), PortError> {
        let (pk, sk) = V::key(key);
        let removed = self.write(&format!("{pk}/{sk}"), |tx, now| {
            match get_versioned::<V>(tx, &pk, &sk)? {
                Some(old) if old.version == expected => {
                    let image = merged_image(key, &old.value, old.version, old.updated_at);
                    remove(tx, &pk, &sk, &image, now, &self.meter).map(Some)
                }
                _ => Ok(None),
            }
        })?;
        written(removed)
    }
}

macro_rules! local_remove_store {
    ($key:ty, $value:ty) => {
        impl RemoveStore<$key, $value> for LocalTable {
            async fn remove(&self, key: &$key, expected: &u64) -> Result<(), PortError> {
                self.remove_merged::<$key, $value>(key, *expected)
            }
        }
    };
}

local_remove_store!(RaceKey, Standings);
local_remove_store!(BestsKey, SecondSeries);
local_remove_store!(TraceKey, SecondSeries);

impl FinalsRepair for LocalTable {
    async fn replace_record(
        &self,
        class_id: u8,
        entry: &LeaderboardEntry,
        expected: Option<&LeaderboardEntry>,
    ) -> Result<(), PortError> {
        let (pk, sk) = (keys::class_pk(class_id), keys::racer_sk(entry.racer_id));
        let replaced = self.write(&format!("{pk}/{sk}"), |tx, now| {
            let current = get_value::<LeaderboardEntry>(tx, &pk, &sk)?.map(|(row, _)| row);
            if current.as_ref() != expected {
                return Ok(None);
            }
            let item = NewItem {
                pk: &pk,
                sk: &sk,
                columns: Columns {
                    best: Some(entry.best),
                    ..Columns::default()
                },
                data: to_json(entry)?,
                image: leaderboard_image(class_id, entry),
            };
            let old_image = current.map(|old| leaderboard_image(class_id, &old));
            put(tx, item, old_image.as_ref(), now, &self.meter).map(Some)
        })?;
        written(replaced)
    }

    async fn remove_record(
        &self,
        class_id: u8,
        expected: &LeaderboardEntry,
    ) -> Result<(), PortError> {
        let (pk, sk) = (keys::class_pk(class_id), keys::racer_sk(expected.racer_id));
        let removed = self.write(&format!("{pk}/{sk}"), |tx, now| {
            let current = get_value::<LeaderboardEntry>(tx, &pk, &sk)?.map(|(row, _)| row);
            if current.as_ref() != Some(expected) {
                return Ok(None);
            }
            let image = leaderboard_image(class_id, expected);
            remove(tx, &pk, &sk, &image, now, &self.meter).map(Some)
        })?;
        written(removed)
    }

    async fn remove_final(&self, expected: &RacerFinal) -> Result<(), PortError> {
        let (pk, sk) = final_key(expected);
        let removed = self.write(&format!("{pk}/{sk}"), |tx, now| {
            let current = get_value::<RacerFinal>(tx, &pk, &sk)?.map(|(row, _)| row);
            if current.as_ref() != Some(expected) {
                return Ok(None);
            }
            remove(tx, &pk, &sk, &final_image(expected), now, &self.meter).map(Some)
        })?;
        written(removed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use alleycat_domain::Output;
    use alleycat_ports::{Finals, MergeStore, Queries};

    use super::*;
    use crate::db::Db;
    use crate::table::Change;

    fn table() -> (tempfile::TempDir, LocalTable) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("table.db")).unwrap();
        (dir, LocalTable::open(Arc::new(db)).unwrap())
    }

    #[tokio::test]
    async fn removals_hold_only_at_the_version_read_and_log_a_remove() -> Result<(), PortError> {
        let (_dir, table) = table();
        let race = RaceKey {
            class_id: 1,
            race_id: 4,
        };
        let standings: Standings = [(3, Output::from_ten_thousandths(9))].into_iter().collect();
        table.store(&race, &standings, None).await?;
        assert_eq!(table.remove(&race, &2).await, Err(PortError::Conflict));
        table.remove(&race, &1).await?;
        assert_eq!(table.standings(race).await?, None);
        let last = table.changes_after(0, 10).unwrap().pop().unwrap();
        assert_eq!(last.event_name, Change::REMOVE);
        assert!(last.old_image.is_some() && last.new_image.is_none());
        Ok(())
    }

    #[tokio::test]
    async fn records_and_finals_change_only_as_read() -> Result<(), PortError> {
        let (_dir, table) = table();
        let forged = LeaderboardEntry {
            racer_id: 7,
            name: "Seven".into(),
            best: Output::from_ten_thousandths(4_702_500),
            race_id: 2,
            updated_at: 3,
        };
        assert!(table.offer_record(1, &forged).await?);
        let fair = LeaderboardEntry {
            best: Output::from_ten_thousandths(10),
            ..forged.clone()
        };
        assert_eq!(
            table.replace_record(1, &fair, None).await,
            Err(PortError::Conflict)
        );
        table.replace_record(1, &fair, Some(&forged)).await?;
        assert_eq!(table.leaderboard(1, 10).await?, vec![fair.clone()]);
        assert_eq!(
            table.remove_record(1, &forged).await,
            Err(PortError::Conflict)
        );
        table.remove_record(1, &fair).await?;
        assert!(table.leaderboard(1, 10).await?.is_empty());

        let result = RacerFinal {
            class_id: 1,
            race_id: 2,
            racer_id: 7,
            name: "Seven".into(),
            output: Output::from_ten_thousandths(4_702_500),
            finished_at: 3,
        };
        table.put_final(&result).await?;
        let other = RacerFinal {
            finished_at: 4,
            ..result.clone()
        };
        assert_eq!(table.remove_final(&other).await, Err(PortError::Conflict));
        table.remove_final(&result).await?;
        let race = RaceKey {
            class_id: 1,
            race_id: 2,
        };
        assert!(table.finals(race).await?.is_empty());
        Ok(())
    }
}
