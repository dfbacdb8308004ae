//! The repair ports' finals and leaderboard rows on the embedded table ([`FinalsRepair`]):
//! replacements and deletes conditional on what the rebuild read, each in one transaction with
//! its change (a `REMOVE` carries the old image, as a DynamoDB stream's does; the publisher
//! ignores it). Max-merged documents are removed in [`super::merged`].

use alleycat_domain::{LeaderboardEntry, RacerFinal};
use alleycat_ports::schema::{LeaderboardItem, RacerFinalItem, TableItem};
use alleycat_ports::{FinalsRepair, PortError};

use super::images::{image, row};
use super::store::{get_value, put};
use super::{LocalTable, Written};

impl FinalsRepair for LocalTable {
    async fn replace_record(
        &self,
        class_id: u8,
        entry: &LeaderboardEntry,
        expected: Option<&LeaderboardEntry>,
    ) -> Result<(), PortError> {
        let key = LeaderboardItem::key_of(class_id, entry);
        let item_key = LeaderboardItem::key(&key);
        self.write_if(&item_key.to_string(), |tx, now| {
            let current = get_value::<LeaderboardEntry>(tx, &item_key)?;
            if current.as_ref().map(|(row, _)| row) != expected {
                return Ok(Written::refused(current.map_or(0, |(_, size)| size)));
            }
            let old_image = current
                .map(|(old, _)| image(&key, &LeaderboardItem::from(&old)))
                .transpose()?;
            let row = row(&key, &LeaderboardItem::from(entry), entry)?;
            put(tx, row, old_image.as_ref(), now)
        })
    }

    async fn remove_record(
        &self,
        class_id: u8,
        expected: &LeaderboardEntry,
    ) -> Result<(), PortError> {
        let key = LeaderboardItem::key_of(class_id, expected);
        self.remove_if_still(&LeaderboardItem::key(&key), expected, || {
            image(&key, &LeaderboardItem::from(expected))
        })
    }

    async fn remove_final(&self, expected: &RacerFinal) -> Result<(), PortError> {
        let key = RacerFinalItem::key_of(expected);
        self.remove_if_still(&RacerFinalItem::key(&key), expected, || {
            image(&key, &RacerFinalItem::from(expected))
        })
    }
}
