//! Racer claims on the embedded table: the same items and conditions as on DynamoDB (`racer#<id>`
//! / `claim`, written only if the claim read is still stored), each write in one transaction with
//! its change.

use std::collections::HashMap;

use alleycat_domain::Claim;
use alleycat_ports::schema::{ClaimItem, TableItem};
use alleycat_ports::{Claims, PortError};

use super::LocalTable;
use super::store::get_value;

/// The stored claim of `racer_id` and its size, if any.
fn stored(conn: &rusqlite::Connection, racer_id: u32) -> rusqlite::Result<Option<(Claim, u64)>> {
    get_value::<Claim>(conn, &ClaimItem::key(&racer_id))
}

impl Claims for LocalTable {
    async fn claims(&self, racer_ids: &[u32]) -> Result<HashMap<u32, Claim>, PortError> {
        let found = self.read("claims", |conn| {
            let mut found = Vec::new();
            for &racer_id in racer_ids {
                found.push((racer_id, stored(conn, racer_id)?));
            }
            Ok(found)
        })?;
        // BatchGetItem, strongly consistent: one read unit per 4 KB of each item found.
        Ok(found
            .into_iter()
            .filter_map(|(racer_id, claim)| {
                claim.map(|(claim, size)| {
                    self.bill_read(size, true);
                    (racer_id, claim)
                })
            })
            .collect())
    }

    async fn put_claim(&self, claim: &Claim, expected: Option<&Claim>) -> Result<(), PortError> {
        let holds = |stored: Option<&Claim>| stored == expected;
        if self.put_if::<ClaimItem, _>(&claim.racer_id, claim, holds)? {
            Ok(())
        } else {
            Err(PortError::Conflict)
        }
    }

    async fn delete_claim(&self, expected: &Claim) -> Result<(), PortError> {
        self.remove_if_still::<ClaimItem, _>(&expected.racer_id, expected)
    }
}
