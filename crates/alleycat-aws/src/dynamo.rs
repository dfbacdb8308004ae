//! The single DynamoDB table: race standings, racer finals, class leaderboards, racer bests and
//! racer traces (key schema in [`crate::keys`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alleycat_domain::leaderboard::rank_leaderboard;
use alleycat_domain::{LeaderboardEntry, RaceKey, RacerFinal, SecondSeries, Standings};
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
    KeyType, LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};

use crate::error::classify;
use crate::item::{
    Item, get_n, get_output, get_s, get_series, get_standings, n, s, series_value, standings_value,
};
use crate::keys::{self, attr};

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

    async fn get_item(
        &self,
        pk: String,
        sk: String,
        consistent: bool,
    ) -> Result<Option<Item>, PortError> {
        let operation = || format!("DynamoDB GetItem {}: {pk}/{sk}", self.table);
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(keys::PK, s(pk.clone()))
            .key(keys::SK, s(sk.clone()))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| classify(&operation(), &e))?;
        Ok(output.item)
    }

    /// Reads a max-merged item strongly consistently: a stale read would only cost a conflict on
    /// the conditional write, but a fresh one saves that wasted write.
    async fn load_versioned<K, V: Versioned<K>>(
        &self,
        key: &K,
    ) -> Result<Option<(V, u64)>, PortError> {
        let (pk, sk) = V::key(key);
        let context = format!("{pk}/{sk}");
        let Some(item) = self.get_item(pk, sk, true).await? else {
            return Ok(None);
        };
        let value = V::from_item(&item, &context).map_err(PortError::Permanent)?;
        let version = get_n(&item, attr::VERSION, &context).map_err(PortError::Permanent)?;
        Ok(Some((value, version)))
    }

    /// Writes a max-merged item only if its version is still `expected` (or it does not exist
    /// yet), bumping the version: the optimistic concurrency [`alleycat_ports::merge_into`]
    /// relies on.
    async fn store_versioned<K, V: Versioned<K>>(
        &self,
        key: &K,
        value: &V,
        expected: Option<&u64>,
    ) -> Result<(), PortError> {
        let (pk, sk) = V::key(key);
        let operation = format!("DynamoDB PutItem {}: {pk}/{sk} ({})", self.table, V::KIND);
        let mut item = Item::new();
        V::put_attributes(key, value, &mut item);
        item.insert(keys::PK.to_owned(), s(pk));
        item.insert(keys::SK.to_owned(), s(sk));
        item.insert(attr::UPDATED_AT.to_owned(), n(now_ms()));
        item.insert(
            attr::VERSION.to_owned(),
            n(expected.map_or(1, |version| version + 1)),
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

/// Epoch milliseconds now, for `updatedAt`.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A query page size for `limit` rows (DynamoDB wants 1 ..= i32::MAX).
fn page_limit(limit: usize) -> i32 {
    i32::try_from(limit.max(1)).unwrap_or(i32::MAX)
}

/// How a max-merged document is laid out as an item.
trait Versioned<K>: Sized + Sync {
    /// Names the kind of document in error messages.
    const KIND: &'static str;
    /// `(pk, sk)`.
    fn key(key: &K) -> (String, String);
    /// The attributes other than the keys, `updatedAt` and `version`.
    fn put_attributes(key: &K, value: &Self, item: &mut Item);
    /// Reads the value back.
    fn from_item(item: &Item, context: &str) -> Result<Self, String>;
}

impl Versioned<RaceKey> for Standings {
    const KIND: &'static str = "standings";

    fn key(race: &RaceKey) -> (String, String) {
        (keys::race_pk(*race), keys::STANDINGS_SK.to_owned())
    }

    fn put_attributes(race: &RaceKey, standings: &Self, item: &mut Item) {
        item.insert(attr::CLASS_ID.to_owned(), n(race.class_id));
        item.insert(attr::RACE_ID.to_owned(), n(race.race_id));
        item.insert(attr::RESULTS.to_owned(), standings_value(standings));
        item.insert(
            keys::GSI1_PK.to_owned(),
            s(keys::class_races_gsi1pk(race.class_id)),
        );
        item.insert(keys::GSI1_SK.to_owned(), n(race.race_id));
    }

    fn from_item(item: &Item, context: &str) -> Result<Self, String> {
        get_standings(item, attr::RESULTS, context)
    }
}

impl Versioned<BestsKey> for SecondSeries {
    const KIND: &'static str = "bests";

    fn key(key: &BestsKey) -> (String, String) {
        (keys::racer_pk(key.racer_id), keys::bests_sk(key.class_id))
    }

    fn put_attributes(key: &BestsKey, series: &Self, item: &mut Item) {
        item.insert(attr::CLASS_ID.to_owned(), n(key.class_id));
        item.insert(attr::RACER_ID.to_owned(), n(key.racer_id));
        item.insert(attr::SECONDS.to_owned(), series_value(series));
    }

    fn from_item(item: &Item, context: &str) -> Result<Self, String> {
        get_series(item, attr::SECONDS, context)
    }
}

impl Versioned<TraceKey> for SecondSeries {
    const KIND: &'static str = "trace";

    fn key(key: &TraceKey) -> (String, String) {
        (keys::racer_pk(key.racer_id), keys::trace_sk(key.race))
    }

    fn put_attributes(key: &TraceKey, series: &Self, item: &mut Item) {
        item.insert(attr::CLASS_ID.to_owned(), n(key.race.class_id));
        item.insert(attr::RACE_ID.to_owned(), n(key.race.race_id));
        item.insert(attr::RACER_ID.to_owned(), n(key.racer_id));
        item.insert(attr::SECONDS.to_owned(), series_value(series));
    }

    fn from_item(item: &Item, context: &str) -> Result<Self, String> {
        get_series(item, attr::SECONDS, context)
    }
}

/// Implements [`MergeStore`] for one kind of max-merged item.
macro_rules! dynamo_merge_store {
    ($key:ty, $value:ty) => {
        impl MergeStore<$key, $value> for DynamoTable {
            type Version = u64;

            fn empty(&self, _key: &$key) -> $value {
                <$value>::default()
            }

            async fn load(&self, key: &$key) -> Result<Option<($value, u64)>, PortError> {
                self.load_versioned::<$key, $value>(key).await
            }

            async fn store(
                &self,
                key: &$key,
                value: &$value,
                expected: Option<&u64>,
            ) -> Result<(), PortError> {
                self.store_versioned::<$key, $value>(key, value, expected)
                    .await
            }
        }
    };
}

dynamo_merge_store!(RaceKey, Standings);
dynamo_merge_store!(BestsKey, SecondSeries);
dynamo_merge_store!(TraceKey, SecondSeries);

/// The "only if greater" condition of a leaderboard row: exactly [`LeaderboardEntry::beats`],
/// evaluated by DynamoDB against the stored row so that concurrent offers cannot lower a record.
const BEATS_CONDITION: &str = "attribute_not_exists(#pk) \
    OR #best < :b \
    OR (#best = :b AND #raceId > :r) \
    OR (#best = :b AND #raceId = :r AND #updatedAt > :u) \
    OR (#best = :b AND #raceId = :r AND #updatedAt = :u AND #name > :n)";

impl Finals for DynamoTable {
    async fn put_final(&self, result: &RacerFinal) -> Result<(), PortError> {
        let race = RaceKey {
            class_id: result.class_id,
            race_id: result.race_id,
        };
        let (pk, sk) = (keys::race_pk(race), keys::racer_sk(result.racer_id));
        let operation = format!("DynamoDB PutItem {}: {pk}/{sk} (final)", self.table);
        self.client
            .put_item()
            .table_name(&self.table)
            .item(keys::PK, s(pk))
            .item(keys::SK, s(sk))
            .item(attr::CLASS_ID, n(result.class_id))
            .item(attr::RACE_ID, n(result.race_id))
            .item(attr::RACER_ID, n(result.racer_id))
            .item(attr::NAME, s(result.name.clone()))
            .item(attr::OUTPUT, n(result.output))
            .item(attr::FINISHED_AT, n(result.finished_at))
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
        let (pk, sk) = (keys::class_pk(class_id), keys::racer_sk(entry.racer_id));
        let operation = format!("DynamoDB PutItem {}: {pk}/{sk} (leaderboard)", self.table);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(keys::PK, s(pk))
            .item(keys::SK, s(sk))
            .item(attr::RACER_ID, n(entry.racer_id))
            .item(attr::NAME, s(entry.name.clone()))
            .item(attr::BEST, n(entry.best))
            .item(attr::RACE_ID, n(entry.race_id))
            .item(attr::UPDATED_AT, n(entry.updated_at))
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

fn stored_standings(item: &Item) -> Result<StoredStandings, String> {
    let context = format!(
        "{}/{}",
        get_s(item, keys::PK, "?").unwrap_or("?"),
        get_s(item, keys::SK, "?").unwrap_or("?")
    );
    Ok(StoredStandings {
        race: RaceKey {
            class_id: get_n(item, attr::CLASS_ID, &context)?,
            race_id: get_n(item, attr::RACE_ID, &context)?,
        },
        standings: get_standings(item, attr::RESULTS, &context)?,
        updated_at: get_n(item, attr::UPDATED_AT, &context)?,
    })
}

pub(crate) fn leaderboard_entry(item: &Item, context: &str) -> Result<LeaderboardEntry, String> {
    Ok(LeaderboardEntry {
        racer_id: get_n(item, attr::RACER_ID, context)?,
        name: get_s(item, attr::NAME, context)?.to_owned(),
        best: get_output(item, attr::BEST, context)?,
        race_id: get_n(item, attr::RACE_ID, context)?,
        updated_at: get_n(item, attr::UPDATED_AT, context)?,
    })
}

fn racer_final(item: &Item, context: &str) -> Result<RacerFinal, String> {
    Ok(RacerFinal {
        class_id: get_n(item, attr::CLASS_ID, context)?,
        race_id: get_n(item, attr::RACE_ID, context)?,
        racer_id: get_n(item, attr::RACER_ID, context)?,
        name: get_s(item, attr::NAME, context)?.to_owned(),
        output: get_output(item, attr::OUTPUT, context)?,
        finished_at: get_n(item, attr::FINISHED_AT, context)?,
    })
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
            .iter()
            .map(stored_standings)
            .collect::<Result<_, _>>()
            .map_err(PortError::Permanent)
    }

    async fn standings(&self, race: RaceKey) -> Result<Option<StoredStandings>, PortError> {
        let item = self
            .get_item(keys::race_pk(race), keys::STANDINGS_SK.to_owned(), false)
            .await?;
        item.as_ref()
            .map(stored_standings)
            .transpose()
            .map_err(PortError::Permanent)
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
            .iter()
            .map(|item| leaderboard_entry(item, &operation))
            .collect::<Result<Vec<_>, _>>()
            .map_err(PortError::Permanent)?;
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
            .iter()
            .map(|item| racer_final(item, &operation))
            .collect::<Result<Vec<_>, _>>()
            .map_err(PortError::Permanent)?;
        // Sort keys order racer ids as strings (`racer#10` < `racer#9`); callers get id order.
        finals.sort_unstable_by_key(|f| f.racer_id);
        Ok(finals)
    }

    async fn bests(&self, key: BestsKey) -> Result<Option<SecondSeries>, PortError> {
        self.read_series(&key).await
    }

    async fn trace(&self, key: TraceKey) -> Result<Option<SecondSeries>, PortError> {
        self.read_series(&key).await
    }
}

impl DynamoTable {
    async fn read_series<K>(&self, key: &K) -> Result<Option<SecondSeries>, PortError>
    where
        SecondSeries: Versioned<K>,
    {
        let (pk, sk) = SecondSeries::key(key);
        let context = format!("{pk}/{sk}");
        let item = self.get_item(pk, sk, false).await?;
        item.map(|item| SecondSeries::from_item(&item, &context))
            .transpose()
            .map_err(PortError::Permanent)
    }
}

/// Orders two DynamoDB numbers (leaderboard bests) as outputs; absent or malformed sorts first.
fn compare_numbers(a: Option<&AttributeValue>, b: Option<&AttributeValue>) -> std::cmp::Ordering {
    let value = |v: Option<&AttributeValue>| match v {
        Some(AttributeValue::N(text)) => crate::item::parse_output(text),
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
