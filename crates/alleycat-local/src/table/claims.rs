//! Racer claims on the embedded table: the same items and conditions as on DynamoDB (`racer#<id>`
//! / `claim`, written only if the claim read is still stored), each write in one transaction with
//! its change.

use std::collections::HashMap;

use alleycat_cost::units;
use alleycat_domain::Claim;
use alleycat_ports::keys::{self, attr};
use alleycat_ports::{Claims, PortError};
use rusqlite::{Transaction, params};

use super::{Change, Columns, LocalTable, NewItem, get_value, item, key_item, n, put, s, to_json};
use crate::meter::Meter;

/// The image of a claim, as the DynamoDB adapter writes it (`ttl` in epoch seconds).
fn claim_image(claim: &Claim) -> super::Item {
    item([
        (keys::PK, s(keys::racer_pk(claim.racer_id))),
        (keys::SK, s(keys::CLAIM_SK)),
        (attr::RACER_ID, n(claim.racer_id)),
        (attr::IDENTITY_ID, s(claim.identity_id.as_str())),
        (attr::CLAIMED_AT, n(claim.claimed_at)),
        (attr::EXPIRES_AT, n(claim.expires_at)),
        (attr::TTL, n(claim.expires_at.div_ceil(1000))),
    ])
}

/// The stored claim of `racer_id` and its size, if any.
fn stored(tx: &rusqlite::Connection, racer_id: u32) -> rusqlite::Result<Option<(Claim, u64)>> {
    get_value::<Claim>(tx, &keys::racer_pk(racer_id), keys::CLAIM_SK)
}

/// Deletes the item at `(pk, sk)` (DynamoDB's DeleteItem) and appends its `REMOVE` change.
pub(super) fn remove(
    tx: &Transaction<'_>,
    pk: &str,
    sk: &str,
    old_image: &super::Item,
    now: u64,
    meter: &Meter,
) -> rusqlite::Result<u64> {
    meter.dynamodb_write(units::dynamodb_write_units(units::item_size(old_image)));
    tx.prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")?
        .execute([pk, sk])?;
    let keys = to_json(&key_item(pk, sk))?;
    let old = to_json(old_image)?;
    let size_bytes = keys.len() + old.len();
    tx.prepare_cached(
        "INSERT INTO item_changes (created_ms, event_name, size_bytes, keys, old_image, new_image)
         VALUES (?1, ?2, ?3, ?4, ?5, NULL) RETURNING sequence",
    )?
    .query_row(params![now, Change::REMOVE, size_bytes, keys, old], |row| {
        row.get(0)
    })
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
                    self.meter.dynamodb_read(size, true);
                    (racer_id, claim)
                })
            })
            .collect())
    }

    async fn put_claim(&self, claim: &Claim, expected: Option<&Claim>) -> Result<(), PortError> {
        let (pk, sk) = (keys::racer_pk(claim.racer_id), keys::CLAIM_SK);
        let written = self.write(&format!("{pk}/{sk}"), |tx, now| {
            let current = stored(tx, claim.racer_id)?;
            if current.as_ref().map(|(stored, _)| stored) != expected {
                let size = current.as_ref().map_or(0, |(_, size)| *size);
                self.meter.dynamodb_write(units::dynamodb_write_units(size));
                return Ok(None);
            }
            let item = NewItem {
                pk: &pk,
                sk,
                columns: Columns::default(),
                data: to_json(claim)?,
                image: claim_image(claim),
            };
            let old_image = current.map(|(old, _)| claim_image(&old));
            put(tx, item, old_image.as_ref(), now, &self.meter).map(Some)
        })?;
        if written {
            Ok(())
        } else {
            Err(PortError::Conflict)
        }
    }

    async fn delete_claim(&self, expected: &Claim) -> Result<(), PortError> {
        let (pk, sk) = (keys::racer_pk(expected.racer_id), keys::CLAIM_SK);
        let written = self.write(&format!("{pk}/{sk}"), |tx, now| {
            let current = stored(tx, expected.racer_id)?;
            if current.as_ref().map(|(stored, _)| stored) != Some(expected) {
                let size = current.as_ref().map_or(0, |(_, size)| *size);
                self.meter.dynamodb_write(units::dynamodb_write_units(size));
                return Ok(None);
            }
            remove(tx, &pk, sk, &claim_image(expected), now, &self.meter).map(Some)
        })?;
        if written {
            Ok(())
        } else {
            Err(PortError::Conflict)
        }
    }
}
