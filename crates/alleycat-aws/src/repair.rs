//! The repair ports ([`alleycat_ports::repair`]) on DynamoDB and S3: deletes and replacements
//! conditional on what the rebuild read (the version of a max-merged item, every attribute of a
//! leaderboard row or a final), and the delivery bucket's listing.

use std::fmt::Write as _;

use alleycat_domain::{LeaderboardEntry, RaceKey, RacerFinal, SecondSeries, Standings};
use alleycat_ports::{
    BestsKey, FinalsRepair, ListObjects, Listed, PortError, RemoveStore, TraceKey,
};
use aws_sdk_dynamodb::types::AttributeValue;

use crate::error::classify;
use crate::item::{Item, n, s};
use crate::keys::{self, attr};
use crate::{DynamoTable, S3Objects};

/// `(pk, sk)` of each max-merged document, as [`crate::dynamo`] lays it out.
trait Keyed {
    fn item_key(&self) -> (String, String);
}

impl Keyed for RaceKey {
    fn item_key(&self) -> (String, String) {
        (keys::race_pk(*self), keys::STANDINGS_SK.to_owned())
    }
}

impl Keyed for BestsKey {
    fn item_key(&self) -> (String, String) {
        (keys::racer_pk(self.racer_id), keys::bests_sk(self.class_id))
    }
}

impl Keyed for TraceKey {
    fn item_key(&self) -> (String, String) {
        (keys::racer_pk(self.racer_id), keys::trace_sk(self.race))
    }
}

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
    async fn delete_if(&self, pk: String, sk: String, still: Still) -> Result<(), PortError> {
        let operation = format!("DynamoDB DeleteItem {}: {pk}/{sk}", self.table);
        let request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk));
        conditioned!(request, still)
            .send()
            .await
            .map(drop)
            .map_err(|e| classify(&operation, &e))
    }
}

macro_rules! dynamo_remove_store {
    ($key:ty, $value:ty) => {
        impl RemoveStore<$key, $value> for DynamoTable {
            async fn remove(&self, key: &$key, expected: &u64) -> Result<(), PortError> {
                let (pk, sk) = key.item_key();
                self.delete_if(pk, sk, Still::new(vec![(attr::VERSION, n(expected))]))
                    .await
            }
        }
    };
}

dynamo_remove_store!(RaceKey, Standings);
dynamo_remove_store!(BestsKey, SecondSeries);
dynamo_remove_store!(TraceKey, SecondSeries);

impl FinalsRepair for DynamoTable {
    async fn replace_record(
        &self,
        class_id: u8,
        entry: &LeaderboardEntry,
        expected: Option<&LeaderboardEntry>,
    ) -> Result<(), PortError> {
        let (pk, sk) = (keys::class_pk(class_id), keys::racer_sk(entry.racer_id));
        let operation = format!("DynamoDB PutItem {}: {pk}/{sk} (leaderboard)", self.table);
        let item: Item = [
            (keys::PK, s(pk)),
            (keys::SK, s(sk)),
            (attr::RACER_ID, n(entry.racer_id)),
            (attr::NAME, s(entry.name.clone())),
            (attr::BEST, n(entry.best)),
            (attr::RACE_ID, n(entry.race_id)),
            (attr::UPDATED_AT, n(entry.updated_at)),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
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
        let (pk, sk) = (keys::class_pk(class_id), keys::racer_sk(expected.racer_id));
        self.delete_if(pk, sk, Still::of_record(expected)).await
    }

    async fn remove_final(&self, expected: &RacerFinal) -> Result<(), PortError> {
        let race = RaceKey {
            class_id: expected.class_id,
            race_id: expected.race_id,
        };
        let (pk, sk) = (keys::race_pk(race), keys::racer_sk(expected.racer_id));
        let still = Still::new(vec![
            (attr::OUTPUT, n(expected.output)),
            (attr::FINISHED_AT, n(expected.finished_at)),
            (attr::NAME, s(expected.name.clone())),
        ]);
        self.delete_if(pk, sk, still).await
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
