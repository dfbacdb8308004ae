//! The repair ports' finals and leaderboard rows on the embedded table ([`FinalsRepair`]):
//! replacements and deletes conditional on what the rebuild read, each in one transaction with
//! its change (a `REMOVE` carries the old image, as a DynamoDB stream's does; the publisher
//! ignores it). Max-merged documents are removed in [`super::merged`].

use alleycat_domain::{LeaderboardEntry, RacerFinal};
use alleycat_ports::schema::{LeaderboardItem, RacerFinalItem};
use alleycat_ports::{FinalsRepair, PortError};

use super::LocalTable;

impl FinalsRepair for LocalTable {
    async fn replace_record(
        &self,
        class_id: u8,
        entry: &LeaderboardEntry,
        expected: Option<&LeaderboardEntry>,
    ) -> Result<(), PortError> {
        let key = LeaderboardItem::key_of(class_id, entry);
        if self.put_if::<LeaderboardItem, _>(&key, entry, |stored| stored == expected)? {
            Ok(())
        } else {
            Err(PortError::Conflict)
        }
    }

    async fn remove_record(
        &self,
        class_id: u8,
        expected: &LeaderboardEntry,
    ) -> Result<(), PortError> {
        let key = LeaderboardItem::key_of(class_id, expected);
        self.remove_if_still::<LeaderboardItem, _>(&key, expected)
    }

    async fn remove_final(&self, expected: &RacerFinal) -> Result<(), PortError> {
        let key = RacerFinalItem::key_of(expected);
        self.remove_if_still::<RacerFinalItem, _>(&key, expected)
    }
}
