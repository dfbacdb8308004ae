//! Final results and the class leaderboard on the embedded table ([`Finals`]): a final replaces
//! the racer's; a leaderboard row is written only if it beats the stored one.

use alleycat_domain::{LeaderboardEntry, RacerFinal};
use alleycat_ports::schema::{LeaderboardItem, RacerFinalItem, TableItem};
use alleycat_ports::{Finals, PortError};

use super::images::{image, row};
use super::store::{get_value, put};
use super::{LocalTable, Written};

impl Finals for LocalTable {
    async fn put_final(&self, result: &RacerFinal) -> Result<(), PortError> {
        let key = RacerFinalItem::key_of(result);
        let item_key = RacerFinalItem::key(&key);
        self.write(&item_key.to_string(), |tx, now| {
            let old_image = get_value::<RacerFinal>(tx, &item_key)?
                .map(|(old, _)| image(&key, &RacerFinalItem::from(&old)))
                .transpose()?;
            let row = row(&key, &RacerFinalItem::from(result), result)?;
            put(tx, row, old_image.as_ref(), now)
        })
        .map(drop)
    }

    async fn offer_record(
        &self,
        class_id: u8,
        entry: &LeaderboardEntry,
    ) -> Result<bool, PortError> {
        let key = LeaderboardItem::key_of(class_id, entry);
        let item_key = LeaderboardItem::key(&key);
        self.write(&item_key.to_string(), |tx, now| {
            let current = get_value::<LeaderboardEntry>(tx, &item_key)?;
            if !entry.beats(current.as_ref().map(|(stored, _)| stored)) {
                return Ok(Written::refused(current.map_or(0, |(_, size)| size)));
            }
            let old_image = current
                .map(|(old, _)| image(&key, &LeaderboardItem::from(&old)))
                .transpose()?;
            let row = row(&key, &LeaderboardItem::from(entry), entry)?;
            put(tx, row, old_image.as_ref(), now)
        })
    }
}
