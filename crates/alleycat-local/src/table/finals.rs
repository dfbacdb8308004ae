//! Final results and the class leaderboard on the embedded table ([`Finals`]): a final replaces
//! the racer's; a leaderboard row is written only if it beats the stored one.

use alleycat_domain::{LeaderboardEntry, RacerFinal};
use alleycat_ports::schema::{LeaderboardItem, RacerFinalItem};
use alleycat_ports::{Finals, PortError};

use super::LocalTable;

impl Finals for LocalTable {
    async fn put_final(&self, result: &RacerFinal) -> Result<(), PortError> {
        let key = RacerFinalItem::key_of(result);
        self.put_if::<RacerFinalItem, _>(&key, result, |_| true)
            .map(drop)
    }

    async fn offer_record(
        &self,
        class_id: u8,
        entry: &LeaderboardEntry,
    ) -> Result<bool, PortError> {
        let key = LeaderboardItem::key_of(class_id, entry);
        self.put_if::<LeaderboardItem, _>(&key, entry, |stored| entry.beats(stored))
    }
}
