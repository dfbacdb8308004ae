//! The single DynamoDB table: race standings, racer finals, class leaderboards, racer bests and
//! racer traces (key schema in [`crate::keys`]).

use std::time::Duration;

use alleycat_domain::leaderboard::rank_leaderboard;
use alleycat_domain::{LeaderboardEntry, RaceKey, RacerFinal, SecondSeries};
use alleycat_ports::schema::{
    BestsItem, LeaderboardItem, MergeKey, Merged, MergedItem, RacerFinalItem, StandingsItem,
    TableItem, TraceItem,
};
use alleycat_ports::{BestsKey, Finals, MergeStore, PortError, Queries, StoredStandings, TraceKey};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, LocalSecondaryIndex, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType,
};

use crate::error::classify;
use crate::item::{Item, from_item, key_item, n, parse_output, s, to_item};
use crate::keys::{self, attr};

/// Keys `BatchGetItem` takes in one request.
const BATCH_GET_KEYS: usize = 100;

/// Rounds of unprocessed keys read again (DynamoDB returns them when throttled) before a batch
/// read counts as throttled.
const UNPROCESSED_ROUNDS: u32 = 5;

/// The table every function shares. Cheap to clone: the client is a handle on one connection
/// pool.
#[derive(Clone, Debug)]
pub struct DynamoTable {
    /// The SDK client.
    pub client: Client,
    /// The table name.
    pub table: String,
}

impl DynamoTable {
    /// The table `table` through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table `table` with a client of `config` (what a function's `main` does at init).
    pub fn from_conf(config: &SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(config), table)
    }

    /// The item of kind `T` at `key`, if any.
    async fn get_item<T: TableItem>(
        &self,
        key: &T::Key,
        consistent: bool,
    ) -> Result<Option<T>, PortError> {
        let key = T::key(key);
        let operation = || format!("DynamoDB GetItem {}: {key}", self.table);
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key.clone())))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| classify(&operation(), &e))?;
        output.item.map(from_item).transpose()
    }

    /// Reads a max-merged item strongly consistently: a stale read would only cost a conflict on
    /// the conditional write, but a fresh one saves that wasted write.
    async fn load_versioned<I: MergedItem>(
        &self,
        key: &I::Key,
    ) -> Result<Option<(I::Value, u64)>, PortError> {
        let item: Option<I> = self.get_item(key, true).await?;
        Ok(item.map(|item| {
            let version = item.version();
            (item.into_value(), version)
        }))
    }

    /// Writes a max-merged item only if its version is still `expected` (or it does not exist
    /// yet), bumping the version: the optimistic concurrency [`alleycat_ports::merge_into`]
    /// relies on.
    async fn store_versioned<I: MergedItem>(
        &self,
        key: &I::Key,
        value: &I::Value,
        expected: Option<&u64>,
    ) -> Result<(), PortError>
    where
        I::Value: Clone,
    {
        let version = expected.map_or(1, |version| version + 1);
        let item = to_item(
            key,
            &I::new(key, value.clone(), version, alleycat_lambda::now_ms()),
        )?;
        let operation = format!(
            "DynamoDB PutItem {}: {} ({})",
            self.table,
            I::key(key),
            I::KIND
        );
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let request = match expected {
            None => request
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", keys::PK),
            Some(version) => request
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", attr::VERSION)
                .expression_attribute_values(":expected", n(version)),
        };
        request
            .send()
            .await
            .map(drop)
            .map_err(|e| classify(&operation, &e))
    }

    /// Reads the items at `keys` strongly consistently, 100 keys a `BatchGetItem` (its limit),
    /// in no particular order; absent keys are simply missing from the answer. Keys DynamoDB
    /// leaves unprocessed (it sheds load that way) are read again after a short backoff, a few
    /// rounds, then reported as throttling for the caller's retry. `what` names the items in
    /// errors ("claims", "rows of class#1").
    pub(crate) async fn batch_get(
        &self,
        keys: Vec<Item>,
        what: &str,
    ) -> Result<Vec<Item>, PortError> {
        let mut items = Vec::with_capacity(keys.len());
        let mut keys = keys.into_iter();
        loop {
            let mut pending: Vec<Item> = keys.by_ref().take(BATCH_GET_KEYS).collect();
            if pending.is_empty() {
                return Ok(items);
            }
            let operation = format!(
                "DynamoDB BatchGetItem {}: {} {what}",
                self.table,
                pending.len()
            );
            for round in 0.. {
                if round == UNPROCESSED_ROUNDS {
                    return Err(PortError::Throttled(format!(
                        "{operation}: {} keys still unprocessed",
                        pending.len()
                    )));
                }
                if round > 0 {
                    tokio::time::sleep(Duration::from_millis(25 << round)).await;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| PortError::Permanent(format!("{operation}: {e}")))?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| classify(&operation, &e))?;
                items.extend(
                    output
                        .responses
                        .and_then(|mut r| r.remove(&self.table))
                        .unwrap_or_default(),
                );
                pending = output
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
            }
        }
    }

    /// Runs a query to the end (or until `enough` says so), page by page.
    async fn query_all(
        &self,
        operation: &str,
        query: impl Fn() -> QueryFluentBuilder,
        mut enough: impl FnMut(&[Item]) -> bool,
    ) -> Result<Vec<Item>, PortError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = query()
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify(operation, &e))?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) if !enough(&items) => start = Some(key),
                _ => return Ok(items),
            }
        }
    }
}

/// A query page size for `limit` rows (DynamoDB wants 1 ..= i32::MAX).
fn page_limit(limit: usize) -> i32 {
    i32::try_from(limit.max(1)).unwrap_or(i32::MAX)
}

/// Every max-merged document (standings, bests, traces), laid out by its item in
/// [`alleycat_ports::schema`].
impl<K: MergeKey + Sync> MergeStore<K, Merged<K>> for DynamoTable
where
    Merged<K>: Default + Clone + Sync,
{
    type Version = u64;

    fn empty(&self, _key: &K) -> Merged<K> {
        Merged::<K>::default()
    }

    async fn load(&self, key: &K) -> Result<Option<(Merged<K>, u64)>, PortError> {
        self.load_versioned::<K::Item>(key).await
    }

    async fn store(
        &self,
        key: &K,
        value: &Merged<K>,
        expected: Option<&u64>,
    ) -> Result<(), PortError> {
        self.store_versioned::<K::Item>(key, value, expected).await
    }
}

/// The "only if greater" condition of a leaderboard row: exactly [`LeaderboardEntry::beats`],
/// evaluated by DynamoDB against the stored row so that concurrent offers cannot lower a record.
const BEATS_CONDITION: &str = "attribute_not_exists(#pk) \
    OR #best < :b \
    OR (#best = :b AND #raceId > :r) \
    OR (#best = :b AND #raceId = :r AND #updatedAt > :u) \
    OR (#best = :b AND #raceId = :r AND #updatedAt = :u AND #name > :n)";

impl Finals for DynamoTable {
    async fn put_final(&self, result: &RacerFinal) -> Result<(), PortError> {
        let key = RacerFinalItem::key_of(result);
        let operation = format!(
            "DynamoDB PutItem {}: {} (final)",
            self.table,
            RacerFinalItem::key(&key)
        );
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&key, &RacerFinalItem::from(result))?))
            .send()
            .await
            .map(drop)
            .map_err(|e| classify(&operation, &e))
    }

    async fn offer_record(
        &self,
        class_id: u8,
        entry: &LeaderboardEntry,
    ) -> Result<bool, PortError> {
        let key = LeaderboardItem::key_of(class_id, entry);
        let operation = format!(
            "DynamoDB PutItem {}: {} (leaderboard)",
            self.table,
            LeaderboardItem::key(&key)
        );
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&key, &LeaderboardItem::from(entry))?))
            .condition_expression(BEATS_CONDITION)
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#best", attr::BEST)
            .expression_attribute_names("#raceId", attr::RACE_ID)
            .expression_attribute_names("#updatedAt", attr::UPDATED_AT)
            .expression_attribute_names("#name", attr::NAME)
            .expression_attribute_values(":b", n(entry.best))
            .expression_attribute_values(":r", n(entry.race_id))
            .expression_attribute_values(":u", n(entry.updated_at))
            .expression_attribute_values(":n", s(entry.name.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(PutItemError::is_conditional_check_failed_exception) =>
            {
                Ok(false)
            }
            Err(error) => Err(classify(&operation, &error)),
        }
    }
}

fn stored_standings(item: StandingsItem) -> StoredStandings {
    StoredStandings {
        race: item.race(),
        updated_at: item.updated_at,
        standings: item.results,
    }
}

impl Queries for DynamoTable {
    async fn latest_races(
        &self,
        class_id: u8,
        limit: usize,
    ) -> Result<Vec<StoredStandings>, PortError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let partition = keys::class_races_gsi1pk(class_id);
        let operation = format!("DynamoDB Query {}/{}: {partition}", self.table, keys::GSI1);
        let query = || {
            self.client
                .query()
                .table_name(&self.table)
                .index_name(keys::GSI1)
                .key_condition_expression("#p = :p")
                .expression_attribute_names("#p", keys::GSI1_PK)
                .expression_attribute_values(":p", s(partition.clone()))
                .scan_index_forward(false)
                .limit(page_limit(limit))
        };
        let mut items = self
            .query_all(&operation, query, |items| items.len() >= limit)
            .await?;
        items.truncate(limit);
        items
            .into_iter()
            .map(|item| from_item(item).map(stored_standings))
            .collect()
    }

    async fn standings(&self, race: RaceKey) -> Result<Option<StoredStandings>, PortError> {
        let item = self.get_item(&race, false).await?;
        Ok(item.map(stored_standings))
    }

    async fn leaderboard(
        &self,
        class_id: u8,
        limit: usize,
    ) -> Result<Vec<LeaderboardEntry>, PortError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let partition = keys::class_pk(class_id);
        let operation = format!(
            "DynamoDB Query {}/{}: {partition}",
            self.table,
            keys::BY_BEST
        );
        let query = || {
            self.client
                .query()
                .table_name(&self.table)
                .index_name(keys::BY_BEST)
                .key_condition_expression("#p = :p")
                .expression_attribute_names("#p", keys::PK)
                .expression_attribute_values(":p", s(partition.clone()))
                .scan_index_forward(false)
                .limit(page_limit(limit))
        };
        // The index orders by best only; rows tied with the last one kept may rank above it by
        // the record order, so read on until a page ends below the `limit`-th best.
        let best = |item: &Item| item.get(attr::BEST).cloned();
        let items = self
            .query_all(&operation, query, |items| {
                items.len() >= limit
                    && items
                        .last()
                        .zip(items.get(limit - 1))
                        .is_some_and(|(last, kth)| {
                            compare_numbers(best(last).as_ref(), best(kth).as_ref()).is_lt()
                        })
            })
            .await?;
        let mut rows = items
            .into_iter()
            .map(|item| from_item::<LeaderboardItem>(item).map(LeaderboardEntry::from))
            .collect::<Result<Vec<_>, _>>()?;
        rank_leaderboard(&mut rows);
        rows.truncate(limit);
        Ok(rows)
    }

    async fn finals(&self, race: RaceKey) -> Result<Vec<RacerFinal>, PortError> {
        let partition = keys::race_pk(race);
        let operation = format!("DynamoDB Query {}: {partition} finals", self.table);
        let query = || {
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", keys::PK)
                .expression_attribute_names("#sk", keys::SK)
                .expression_attribute_values(":pk", s(partition.clone()))
                .expression_attribute_values(":prefix", s(keys::RACER_PREFIX))
        };
        let items = self.query_all(&operation, query, |_| false).await?;
        let mut finals = items
            .into_iter()
            .map(|item| from_item::<RacerFinalItem>(item).map(RacerFinal::from))
            .collect::<Result<Vec<_>, _>>()?;
        // Sort keys order racer ids as strings (`racer#10` < `racer#9`); callers get id order.
        finals.sort_unstable_by_key(|f| f.racer_id);
        Ok(finals)
    }

    async fn bests(&self, key: BestsKey) -> Result<Option<SecondSeries>, PortError> {
        let item: Option<BestsItem> = self.get_item(&key, false).await?;
        Ok(item.map(MergedItem::into_value))
    }

    async fn trace(&self, key: TraceKey) -> Result<Option<SecondSeries>, PortError> {
        let item: Option<TraceItem> = self.get_item(&key, false).await?;
        Ok(item.map(MergedItem::into_value))
    }
}

/// Orders two DynamoDB numbers (leaderboard bests) as outputs; absent or malformed sorts first.
fn compare_numbers(a: Option<&AttributeValue>, b: Option<&AttributeValue>) -> std::cmp::Ordering {
    let value = |v: Option<&AttributeValue>| match v {
        Some(AttributeValue::N(text)) => parse_output(text),
        _ => None,
    };
    value(a).cmp(&value(b))
}

/// The table's definition: keys, the [`keys::GSI1`] index of a class's races, the
/// [`keys::BY_BEST`] local index of a class's leaderboard, on-demand billing and a stream of new
/// and old images (the publisher reads standings changes from it). The SAM template declares the
/// same; tests and the local stack create the table from this.
pub fn table_schema(client: &Client, table: &str) -> CreateTableFluentBuilder {
    let attribute = |name: &str, kind: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .expect("attribute name and type are set")
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("attribute name and key type are set")
    };
    let all = || {
        Projection::builder()
            .projection_type(ProjectionType::All)
            .build()
    };
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(attribute(keys::PK, ScalarAttributeType::S))
        .attribute_definitions(attribute(keys::SK, ScalarAttributeType::S))
        .attribute_definitions(attribute(keys::GSI1_PK, ScalarAttributeType::S))
        .attribute_definitions(attribute(keys::GSI1_SK, ScalarAttributeType::N))
        .attribute_definitions(attribute(attr::BEST, ScalarAttributeType::N))
        .key_schema(key(keys::PK, KeyType::Hash))
        .key_schema(key(keys::SK, KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(keys::GSI1)
                .key_schema(key(keys::GSI1_PK, KeyType::Hash))
                .key_schema(key(keys::GSI1_SK, KeyType::Range))
                .projection(all())
                .build()
                .expect("index name, keys and projection are set"),
        )
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name(keys::BY_BEST)
                .key_schema(key(keys::PK, KeyType::Hash))
                .key_schema(key(attr::BEST, KeyType::Range))
                .projection(all())
                .build()
                .expect("index name, keys and projection are set"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .expect("stream settings are set"),
        )
}

/// Creates the table ([`table_schema`]) and waits until it is active, at most `max_wait`.
pub async fn create_table(
    client: &Client,
    table: &str,
    max_wait: Duration,
) -> Result<(), PortError> {
    table_schema(client, table)
        .send()
        .await
        .map_err(|e| classify(&format!("DynamoDB CreateTable {table}"), &e))?;
    client
        .wait_until_table_exists()
        .table_name(table)
        .wait(max_wait)
        .await
        .map(drop)
        .map_err(|e| {
            PortError::Transient(format!(
                "DynamoDB CreateTable {table}: not active: {}",
                DisplayErrorContext(e)
            ))
        })
}
