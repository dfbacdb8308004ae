//! The repair ports ([`alleycat_ports::repair`]) on DynamoDB and S3: deletes and replacements
//! conditional on what the rebuild read (the version of a max-merged item, every attribute of a
//! leaderboard row or a final), and the delivery bucket's listing.

use std::fmt::Write as _;

use alleycat_domain::{LeaderboardEntry, RacerFinal};
use alleycat_ports::schema::{
    ItemKey, LeaderboardItem, MergeKey, Merged, RacerFinalItem, TableItem,
};
use alleycat_ports::{FinalsRepair, ListObjects, Listed, PortError, RemoveStore};
use aws_sdk_dynamodb::types::AttributeValue;

use crate::error::classify;
use crate::item::{key_item, n, s, to_item};
use crate::keys::{self, attr};
use crate::{DynamoTable, S3Objects};

/// A condition that every named attribute still holds its value, with its names and values.
struct Still {
    expression: String,
    names: Vec<(String, &'static str)>,
    values: Vec<(String, AttributeValue)>,
}

impl Still {
    fn new(attributes: Vec<(&'static str, AttributeValue)>) -> Self {
        let mut still = Self {
            expression: String::new(),
            names: Vec::new(),
            values: Vec::new(),
        };
        for (i, (name, value)) in attributes.into_iter().enumerate() {
            if i > 0 {
                still.expression.push_str(" AND ");
            }
            let _ = write!(still.expression, "#a{i} = :v{i}");
            still.names.push((format!("#a{i}"), name));
            still.values.push((format!(":v{i}"), value));
        }
        still
    }

    fn of_record(entry: &LeaderboardEntry) -> Self {
        Self::new(vec![
            (attr::BEST, n(entry.best)),
            (attr::RACE_ID, n(entry.race_id)),
            (attr::UPDATED_AT, n(entry.updated_at)),
            (attr::NAME, s(entry.name.clone())),
        ])
    }
}

/// Applies a [`Still`] to any request builder with DynamoDB's condition methods.
macro_rules! conditioned {
    ($request:expr, $still:expr) => {{
        let still = $still;
        let mut request = $request.condition_expression(still.expression);
        for (placeholder, name) in still.names {
            request = request.expression_attribute_names(placeholder, name);
        }
        for (placeholder, value) in still.values {
            request = request.expression_attribute_values(placeholder, value);
        }
        request
    }};
}

impl DynamoTable {
    async fn delete_if(&self, key: ItemKey, still: Still) -> Result<(), PortError> {
        let operation = format!("DynamoDB DeleteItem {}: {key}", self.table);
        let request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)));
        conditioned!(request, still)
            .send()
            .await
            .map(drop)
            .map_err(|e| classify(&operation, &e))
    }
}

impl<K: MergeKey + Sync> RemoveStore<K, Merged<K>> for DynamoTable
where
    Merged<K>: Default + Clone + Sync,
{
    async fn remove(&self, key: &K, expected: &u64) -> Result<(), PortError> {
        let still = Still::new(vec![(attr::VERSION, n(expected))]);
        self.delete_if(K::Item::key(key), still).await
    }
}

impl FinalsRepair for DynamoTable {
    async fn replace_record(
        &self,
        class_id: u8,
        entry: &LeaderboardEntry,
        expected: Option<&LeaderboardEntry>,
    ) -> Result<(), PortError> {
        let key = LeaderboardItem::key_of(class_id, entry);
        let operation = format!(
            "DynamoDB PutItem {}: {} (leaderboard)",
            self.table,
            LeaderboardItem::key(&key)
        );
        let item = to_item(&key, &LeaderboardItem::from(entry))?;
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let request = match expected {
            Some(expected) => conditioned!(request, Still::of_record(expected)),
            None => request
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", keys::PK),
        };
        request
            .send()
            .await
            .map(drop)
            .map_err(|e| classify(&operation, &e))
    }

    async fn remove_record(
        &self,
        class_id: u8,
        expected: &LeaderboardEntry,
    ) -> Result<(), PortError> {
        let key = LeaderboardItem::key(&LeaderboardItem::key_of(class_id, expected));
        self.delete_if(key, Still::of_record(expected)).await
    }

    async fn remove_final(&self, expected: &RacerFinal) -> Result<(), PortError> {
        let key = RacerFinalItem::key(&RacerFinalItem::key_of(expected));
        let still = Still::new(vec![
            (attr::OUTPUT, n(expected.output)),
            (attr::FINISHED_AT, n(expected.finished_at)),
            (attr::NAME, s(expected.name.clone())),
        ]);
        self.delete_if(key, still).await
    }
}

impl ListObjects for S3Objects {
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, PortError> {
        let operation = format!("S3 ListObjectsV2 {}/{prefix}", self.bucket);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut listed = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(&operation, &e))?;
            listed.extend(
                page.contents
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|object| {
                        Some(Listed {
                            key: object.key?,
                            size: object
                                .size
                                .and_then(|size| u64::try_from(size).ok())
                                .unwrap_or(0),
                        })
                    }),
            );
        }
        listed.sort();
        Ok(listed)
    }
}
