//! The rank ports on DynamoDB ([`alleycat_ports::ranks`]): leaderboard pages from the `byBest`
//! index, rows and their bucket counts in one `TransactWriteItems`, and a racer's place from
//! the counts item plus one `Select=COUNT` query bounded to its bucket.

use std::collections::{BTreeMap, HashMap};

use alleycat_domain::LeaderboardEntry;
use alleycat_domain::leaderboard::{bucket_counts, bucket_range, place_from_counts, rank_bucket};
use alleycat_ports::PortError;
use alleycat_ports::ranks::{
    LeaderboardPage, PageBuilder, RacerRank, RankedRecords, Ranks, RowWrite, write_deltas,
};
use alleycat_ports::schema::{LeaderboardItem, RacerIn, TableItem};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, Select, TransactWriteItem, Update};

use crate::dynamo::DynamoTable;
use crate::error::{classify, classify_response};
use crate::item::{Item, from_item, key_item, n, s, to_item};
use crate::keys::{self, attr};

/// The item of a leaderboard row: what [`alleycat_ports::Finals::offer_record`] writes too.
fn row_item(class_id: u8, entry: &LeaderboardEntry) -> Result<Item, PortError> {
    to_item(
        &LeaderboardItem::key_of(class_id, entry),
        &LeaderboardItem::from(entry),
    )
}

/// A leaderboard row read back.
fn leaderboard_entry(item: Item) -> Result<LeaderboardEntry, PortError> {
    from_item::<LeaderboardItem>(item).map(LeaderboardEntry::from)
}

/// A number attribute of the counts item (whose bucket attributes are named by bucket, so it is
/// read by name rather than through a schema struct).
fn get_n<T: std::str::FromStr>(item: &Item, name: &str, context: &str) -> Result<T, String> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value
            .parse()
            .map_err(|_| format!("{context}: {name} is not a count: {value}")),
        _ => Err(format!("{context}: {name} is missing or not a number")),
    }
}

/// The counts of a counts item (absent buckets are empty) and its version (0: no item).
fn read_counts(item: Option<&Item>, context: &str) -> Result<(BTreeMap<u32, u64>, u64), String> {
    let Some(item) = item else {
        return Ok((BTreeMap::new(), 0));
    };
    let mut counts = BTreeMap::new();
    for name in item.keys() {
        if let Some(bucket) = keys::count_bucket(name) {
            // A count ADDed below zero would be a bug; read it as empty rather than wrap.
            let count: i64 = get_n(item, name, context)?;
            counts.insert(bucket, u64::try_from(count).unwrap_or(0));
        }
    }
    Ok((counts, get_n(item, attr::VERSION, context)?))
}

impl DynamoTable {
    async fn counts_item(&self, class_id: u8, consistent: bool) -> Result<Option<Item>, PortError> {
        let (pk, sk) = (keys::class_pk(class_id), keys::COUNTS_SK);
        let operation = format!("DynamoDB GetItem {}: {pk}/{sk}", self.table);
        self.client
            .get_item()
            .table_name(&self.table)
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .consistent_read(consistent)
            .send()
            .await
            .map(|output| output.item)
            .map_err(|e| classify(&operation, &e))
    }

    /// How many rows of `class_id` have a best in `low..=high` (ten-thousandths), by a
    /// `Select=COUNT` query of the index: it reads that range only.
    async fn count_between(&self, class_id: u8, low: u32, high: u32) -> Result<u64, PortError> {
        let partition = keys::class_pk(class_id);
        let operation = format!(
            "DynamoDB Query {}/{}: {partition} count",
            self.table,
            keys::BY_BEST
        );
        let mut total = 0u64;
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(keys::BY_BEST)
                .key_condition_expression("#p = :p AND #best BETWEEN :low AND :high")
                .expression_attribute_names("#p", keys::PK)
                .expression_attribute_names("#best", attr::BEST)
                .expression_attribute_values(":p", s(partition.clone()))
                .expression_attribute_values(
                    ":low",
                    n(alleycat_domain::Output::from_ten_thousandths(low)),
                )
                .expression_attribute_values(
                    ":high",
                    n(alleycat_domain::Output::from_ten_thousandths(high)),
                )
                .select(Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify(&operation, &e))?;
            total += u64::try_from(output.count).unwrap_or(0);
            match output.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(total),
            }
        }
    }

    /// Every row of a class (a recount's input), best first.
    async fn all_rows(&self, class_id: u8) -> Result<Vec<LeaderboardEntry>, PortError> {
        let mut rows = Vec::new();
        let mut after: Option<LeaderboardEntry> = None;
        loop {
            let page = self
                .leaderboard_page(class_id, after.as_ref(), 1_000)
                .await?;
            after = page.entries.last().cloned();
            rows.extend(page.entries);
            if !page.more {
                return Ok(rows);
            }
        }
    }
}

impl Ranks for DynamoTable {
    async fn leaderboard_page(
        &self,
        class_id: u8,
        after: Option<&LeaderboardEntry>,
        limit: usize,
    ) -> Result<LeaderboardPage, PortError> {
        let partition = keys::class_pk(class_id);
        let operation = format!(
            "DynamoDB Query {}/{}: {partition} page",
            self.table,
            keys::BY_BEST
        );
        let mut page = PageBuilder::new(after, limit);
        let mut start = None;
        loop {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(keys::BY_BEST)
                .expression_attribute_names("#p", keys::PK)
                .expression_attribute_values(":p", s(partition.clone()))
                .scan_index_forward(false)
                .limit(i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start);
            // Rows tied with the cursor's best may still follow it, so the range includes it.
            let query = match page.start() {
                Some(best) => query
                    .key_condition_expression("#p = :p AND #best <= :b")
                    .expression_attribute_names("#best", attr::BEST)
                    .expression_attribute_values(":b", n(best)),
                None => query.key_condition_expression("#p = :p"),
            };
            let output = query.send().await.map_err(|e| classify(&operation, &e))?;
            for item in output.items.unwrap_or_default() {
                let row = leaderboard_entry(item)?;
                if page.push(row) {
                    return Ok(page.finish());
                }
            }
            match output.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(page.finish()),
            }
        }
    }

    async fn rank(&self, class_id: u8, racer_id: u32) -> Result<Option<RacerRank>, PortError> {
        let (pk, sk) = (keys::class_pk(class_id), keys::racer_sk(racer_id));
        let operation = format!("DynamoDB GetItem {}: {pk}/{sk}", self.table);
        let row = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .send()
            .await
            .map_err(|e| classify(&operation, &e))?;
        let Some(item) = row.item else {
            return Ok(None);
        };
        let entry = leaderboard_entry(item)?;
        let counts = self.counts_item(class_id, false).await?;
        let (counts, _) = read_counts(counts.as_ref(), &operation).map_err(PortError::Permanent)?;
        let bucket = rank_bucket(entry.best);
        let (_, high) = bucket_range(bucket);
        let low = entry.best.ten_thousandths() + 1;
        let above = if low <= high.ten_thousandths() {
            self.count_between(class_id, low, high.ten_thousandths())
                .await?
        } else {
            0
        };
        let (place, of) = place_from_counts(&counts, bucket, above);
        Ok(Some(RacerRank { entry, place, of }))
    }
}

impl RankedRecords for DynamoTable {
    async fn records(
        &self,
        class_id: u8,
        racer_ids: &[u32],
    ) -> Result<HashMap<u32, LeaderboardEntry>, PortError> {
        let keys = racer_ids
            .iter()
            .map(|&racer_id| {
                key_item(LeaderboardItem::key(&RacerIn {
                    parent: class_id,
                    racer_id,
                }))
            })
            .collect();
        let what = format!("rows of {}", keys::class_pk(class_id));
        let mut rows = HashMap::with_capacity(racer_ids.len());
        for item in self.batch_get(keys, &what).await? {
            let row = leaderboard_entry(item)?;
            rows.insert(row.racer_id, row);
        }
        Ok(rows)
    }

    async fn write_records(&self, class_id: u8, writes: &[RowWrite]) -> Result<(), PortError> {
        let operation = format!(
            "DynamoDB TransactWriteItems {}: {} rows of {}",
            self.table,
            writes.len(),
            keys::class_pk(class_id)
        );
        let built = |e: aws_sdk_dynamodb::error::BuildError| {
            PortError::Permanent(format!("{operation}: {e}"))
        };
        let mut items = Vec::with_capacity(writes.len() + 1);
        for write in writes {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(row_item(class_id, &write.entry)?))
                .expression_attribute_names("#pk", keys::PK);
            // The row exactly as read, or none: a concurrent writer makes the whole
            // transaction fail, and the caller re-reads.
            let put = match &write.expected {
                None => put.condition_expression("attribute_not_exists(#pk)"),
                Some(old) => put
                    .condition_expression(
                        "attribute_exists(#pk) AND #best = :b AND #raceId = :r \
                         AND #updatedAt = :u AND #name = :n",
                    )
                    .expression_attribute_names("#best", attr::BEST)
                    .expression_attribute_names("#raceId", attr::RACE_ID)
                    .expression_attribute_names("#updatedAt", attr::UPDATED_AT)
                    .expression_attribute_names("#name", attr::NAME)
                    .expression_attribute_values(":b", n(old.best))
                    .expression_attribute_values(":r", n(old.race_id))
                    .expression_attribute_values(":u", n(old.updated_at))
                    .expression_attribute_values(":n", s(old.name.clone())),
            };
            items.push(
                TransactWriteItem::builder()
                    .put(put.build().map_err(built)?)
                    .build(),
            );
        }
        let deltas = write_deltas(writes);
        if !deltas.is_empty() {
            let mut update = Update::builder()
                .table_name(&self.table)
                .key(keys::PK, s(keys::class_pk(class_id)))
                .key(keys::SK, s(keys::COUNTS_SK))
                .expression_attribute_names("#version", attr::VERSION)
                .expression_attribute_values(":one", n(1));
            let mut adds = vec!["#version :one".to_owned()];
            for (i, (bucket, delta)) in deltas.iter().enumerate() {
                update = update
                    .expression_attribute_names(format!("#c{i}"), keys::count_attr(*bucket))
                    .expression_attribute_values(format!(":c{i}"), n(delta));
                adds.push(format!("#c{i} :c{i}"));
            }
            let update = update
                .update_expression(format!("ADD {}", adds.join(", ")))
                .build()
                .map_err(built)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) => Err(match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    cancellation(&operation, cancelled)
                }
                _ => classify(&operation, &error),
            }),
        }
    }

    async fn recount(&self, class_id: u8) -> Result<(), PortError> {
        let (pk, sk) = (keys::class_pk(class_id), keys::COUNTS_SK);
        let operation = format!("DynamoDB PutItem {}: {pk}/{sk} (recount)", self.table);
        let current = self.counts_item(class_id, true).await?;
        let (stored, version) =
            read_counts(current.as_ref(), &operation).map_err(PortError::Permanent)?;
        let rows = self.all_rows(class_id).await?;
        let counts = bucket_counts(&rows);
        let stored: BTreeMap<u32, u64> = stored.into_iter().filter(|(_, n)| *n != 0).collect();
        if current.is_some() && stored == counts {
            // Already right: a recount that changes nothing writes nothing.
            return Ok(());
        }
        let mut item = Item::from([
            (keys::PK.to_owned(), s(pk)),
            (keys::SK.to_owned(), s(sk)),
            (attr::VERSION.to_owned(), n(version + 1)),
        ]);
        for (bucket, count) in counts {
            item.insert(keys::count_attr(bucket), n(count));
        }
        // Only if no writer moved a count since the counts were read: rows read after that
        // read include every write before it.
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .expression_attribute_names("#pk", keys::PK);
        let request = if current.is_some() {
            request
                .condition_expression("#version = :v")
                .expression_attribute_names("#version", attr::VERSION)
                .expression_attribute_values(":v", n(version))
        } else {
            request.condition_expression("attribute_not_exists(#pk)")
        };
        request
            .send()
            .await
            .map(drop)
            .map_err(|e| classify(&operation, &e))
    }
}

/// A cancelled transaction, by its reasons: a failed condition or a conflicting transaction is a
/// conflict (re-read and retry), throttling is throttling, anything else is reported as is.
fn cancellation(
    operation: &str,
    cancelled: &aws_sdk_dynamodb::types::error::TransactionCanceledException,
) -> PortError {
    let codes: Vec<&str> = cancelled
        .cancellation_reasons()
        .iter()
        .filter_map(|r| r.code())
        .filter(|code| *code != "None")
        .collect();
    if codes
        .iter()
        .any(|c| *c == "ConditionalCheckFailed" || *c == "TransactionConflict")
    {
        return PortError::Conflict;
    }
    let code = codes
        .iter()
        .find(|c| c.contains("Throughput") || c.contains("Throttl"))
        .map(|_| "ThrottlingException")
        .or(cancelled.code());
    classify_response(
        operation,
        Some(400),
        code,
        Some(&format!(
            "{} ({})",
            cancelled.message().unwrap_or(""),
            codes.join(", ")
        )),
    )
}
