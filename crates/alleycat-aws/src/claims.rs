//! Racer claims on DynamoDB: read in batches of 100 keys (BatchGetItem), written and deleted
//! with a condition on the claim read, so that "first claim wins" holds under concurrency.

use std::collections::HashMap;

use alleycat_domain::Claim;
use alleycat_ports::schema::{ClaimItem, TableItem};
use alleycat_ports::{Claims, PortError};
use aws_sdk_dynamodb::types::AttributeValue;

use crate::dynamo::DynamoTable;
use crate::error::classify;
use crate::item::{Item, from_item, key_item, n, s, to_item};

fn claim_key(racer_id: u32) -> Item {
    key_item(ClaimItem::key(&racer_id))
}

/// The condition that the stored claim is still `expected`, with its values.
fn still(expected: &Claim) -> (&'static str, [(&'static str, AttributeValue); 3]) {
    (
        "identityId = :identity AND claimedAt = :claimed AND expiresAt = :expires",
        [
            (":identity", s(expected.identity_id.clone())),
            (":claimed", n(expected.claimed_at)),
            (":expires", n(expected.expires_at)),
        ],
    )
}

impl Claims for DynamoTable {
    async fn claims(&self, racer_ids: &[u32]) -> Result<HashMap<u32, Claim>, PortError> {
        let keys = racer_ids.iter().map(|id| claim_key(*id)).collect();
        let mut found = HashMap::with_capacity(racer_ids.len());
        for item in self.batch_get(keys, "claims").await? {
            let claim = Claim::from(from_item::<ClaimItem>(item)?);
            found.insert(claim.racer_id, claim);
        }
        Ok(found)
    }

    async fn put_claim(&self, claim: &Claim, expected: Option<&Claim>) -> Result<(), PortError> {
        let operation = format!(
            "DynamoDB PutItem {}: {}",
            self.table,
            ClaimItem::key(&claim.racer_id)
        );
        let item = to_item(&claim.racer_id, &ClaimItem::from(claim))?;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        put = match expected {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(expected) => {
                let (condition, values) = still(expected);
                values
                    .into_iter()
                    .fold(put.condition_expression(condition), |put, (k, v)| {
                        put.expression_attribute_values(k, v)
                    })
            }
        };
        put.send()
            .await
            .map_err(|e| classify(&operation, &e))
            .map(drop)
    }

    async fn delete_claim(&self, expected: &Claim) -> Result<(), PortError> {
        let operation = format!(
            "DynamoDB DeleteItem {}: {}",
            self.table,
            ClaimItem::key(&expected.racer_id)
        );
        let (condition, values) = still(expected);
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(claim_key(expected.racer_id)))
            .condition_expression(condition);
        values
            .into_iter()
            .fold(delete, |delete, (k, v)| {
                delete.expression_attribute_values(k, v)
            })
            .send()
            .await
            .map_err(|e| classify(&operation, &e))
            .map(drop)
    }
}
