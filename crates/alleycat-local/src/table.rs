//! The single table on the embedded database: DynamoDB's items, indexes and stream, on SQLite.
//!
//! Items live in one SQLite table whose columns mirror the DynamoDB key schema
//! ([`alleycat_ports::keys`]): the primary key `(pk, sk)`, a partial index on `(gsi1pk, gsi1sk)`
//! standing for [`keys::GSI1`] (a class's races by race id) and one on `(pk, best)` standing for
//! [`keys::BY_BEST`] (a class's leaderboard by best output). A value is stored as the compact JSON
//! of its domain type, which keeps outputs exact (an [`Output`] reads back as the same
//! ten-thousandths); max-merged items also carry their `version` and `updated_at`.
//!
//! Every write is one immediate transaction that checks its condition (the version of a
//! max-merged item, the "only if greater" of a leaderboard row), replaces the item, and appends a
//! row to the change log: the table's stream, with NEW_AND_OLD_IMAGES. Images are built exactly as
//! the DynamoDB adapter lays out its items, so the publisher reads them as it reads the real
//! stream's. Once the transaction has committed, [`LocalTable::changed`] wakes the stream's poller.
//!
//! The port methods are `async` but call SQLite synchronously, off the async workers: each write
//! holds the database's writing connection for one short transaction and never across an
//! `.await`, and reads (the API's queries, the merges' loads) run on reading connections of their
//! own, which never wait for a write (see [`crate::db`]).

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use alleycat_cost::units;
use alleycat_domain::leaderboard::rank_leaderboard;
use alleycat_domain::{LeaderboardEntry, Output, RaceKey, RacerFinal, SecondSeries, Standings};
use alleycat_ports::keys::{self, attr};
use alleycat_ports::{BestsKey, Finals, MergeStore, PortError, Queries, StoredStandings, TraceKey};
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_dynamo::{AttributeValue, Item};
use tokio::sync::Notify;

mod claims;
mod ranks;
mod repair;

use crate::db::Db;
use crate::error::{LocalError, port_error};
use crate::meter::Meter;
use crate::now_ms;

/// The tables and indexes, created on open.
///
/// `items` is a rowid table (a standings value of a big race runs to kilobytes, too large for a
/// `WITHOUT ROWID` table). The index columns are NULL on items an index does not list, so both
/// indexes are sparse, as DynamoDB's are. `item_changes` numbers its rows with `AUTOINCREMENT`,
/// so a sequence number is never reused, even once trimming has emptied the log.
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS items (
        pk TEXT NOT NULL,
        sk TEXT NOT NULL,
        gsi1pk TEXT,
        gsi1sk INTEGER,
        best INTEGER,
        version INTEGER,
        updated_at INTEGER,
        data TEXT NOT NULL,
        size INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (pk, sk)
    );
    CREATE INDEX IF NOT EXISTS items_gsi1 ON items (gsi1pk, gsi1sk) WHERE gsi1pk IS NOT NULL;
    CREATE INDEX IF NOT EXISTS items_by_best ON items (pk, best) WHERE best IS NOT NULL;
    CREATE TABLE IF NOT EXISTS item_changes (
        sequence INTEGER PRIMARY KEY AUTOINCREMENT,
        created_ms INTEGER NOT NULL,
        event_name TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        keys TEXT NOT NULL,
        old_image TEXT,
        new_image TEXT
    );
    CREATE INDEX IF NOT EXISTS item_changes_by_time ON item_changes (created_ms);
";

/// The table, with its change log. Cheap to clone: clones share the database and the wake-ups.
/// Open one per database: the last sequence number is kept by the handle.
#[derive(Clone, Debug)]
pub struct LocalTable {
    db: Arc<Db>,
    changed: Arc<Notify>,
    /// Sequence number of the last committed change (0: none yet).
    last_change: Arc<AtomicU64>,
    /// Counts reads and writes in request units, as DynamoDB bills them.
    meter: Arc<Meter>,
}

/// One entry of the change log: what a DynamoDB stream record carries about one write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Position in the log: increasing from 1 and never reused (the record's `SequenceNumber`).
    pub sequence: u64,
    /// [`Change::INSERT`], [`Change::MODIFY`] or [`Change::REMOVE`] (the record's `eventName`).
    pub event_name: &'static str,
    /// The item's key attributes, `pk` and `sk` (`Keys`).
    pub keys: Item,
    /// The item before the write; `None` when it is new (`OldImage`).
    pub old_image: Option<Item>,
    /// The item after the write; `None` for a removal (`NewImage`).
    pub new_image: Option<Item>,
    /// When the write happened, epoch milliseconds (`ApproximateCreationDateTime`).
    pub created_ms: u64,
    /// Bytes of the keys and images as DynamoDB JSON, an over-estimate of the record's `SizeBytes`.
    pub size_bytes: u64,
}

impl Change {
    /// An item was written where none was.
    pub const INSERT: &'static str = "INSERT";
    /// An item was written over another.
    pub const MODIFY: &'static str = "MODIFY";
    /// An item was deleted (only a released claim is).
    pub const REMOVE: &'static str = "REMOVE";
}

impl LocalTable {
    /// Opens the table in `db`, creating its tables and indexes on first use.
    pub fn open(db: Arc<Db>) -> Result<Self, LocalError> {
        let last_change = db
            .call(|conn| {
                conn.execute_batch(SCHEMA)?;
                // AUTOINCREMENT's own record of the largest sequence number ever used, which
                // trimming does not lower.
                conn.query_row(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'item_changes'",
                    [],
                    |row| row.get::<_, u64>(0),
                )
                .optional()
            })
            .map_err(|e| db.error(e))?;
        Ok(Self {
            db,
            changed: Arc::new(Notify::new()),
            last_change: Arc::new(AtomicU64::new(last_change.unwrap_or(0))),
            meter: Arc::default(),
        })
    }

    /// Counts every read and write from now on with `meter`, in DynamoDB's request units: a
    /// write takes the larger of the old and new item's size in 1 KB units, once for the table
    /// and once more for each index listing the item; a refused conditional write takes the
    /// stored item's; reads take the items' size in 4 KB units, strongly consistent for the
    /// merges' reads and eventually consistent for the API's.
    #[must_use]
    pub fn metered(mut self, meter: Arc<Meter>) -> Self {
        self.meter = meter;
        self
    }

    /// The database it lives in.
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// The sequence number of the last change, if any was ever made (trimmed ones included):
    /// where a consumer starting at the latest position starts after.
    pub fn last_change(&self) -> Option<u64> {
        Some(self.last_change.load(Ordering::Acquire)).filter(|&sequence| sequence > 0)
    }

    /// Woken (`notify_waiters`) after each committed write. It keeps no permit, so a consumer
    /// registers (`Notified::enable`) before reading the log, then awaits, to miss no write.
    pub fn changed(&self) -> Arc<Notify> {
        Arc::clone(&self.changed)
    }

    /// Up to `limit` changes with a sequence number above `after` (from the start: 0), in order.
    pub fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<Change>, LocalError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .read(|conn| {
                let mut select = conn.prepare_cached(
                    "SELECT sequence, event_name, keys, old_image, new_image, created_ms, size_bytes
                     FROM item_changes WHERE sequence > ?1 ORDER BY sequence LIMIT ?2",
                )?;
                select
                    .query_map(params![after, limit], |row| {
                        Ok(Change {
                            sequence: row.get(0)?,
                            event_name: event_name(row, 1)?,
                            keys: json_column(row, 2)?,
                            old_image: optional_json_column(row, 3)?,
                            new_image: optional_json_column(row, 4)?,
                            created_ms: row.get(5)?,
                            size_bytes: row.get(6)?,
                        })
                    })?
                    .collect()
            })
            .map_err(|e| self.db.error(e))
    }

    /// Deletes the changes made before `before_ms` (the stream's retention: 24 hours on
    /// DynamoDB), returning how many went. Images are whole items, a 1,000-racer race's
    /// standings some 20 KB each, so a stack riding for hours wants a retention of minutes.
    pub fn trim_changes(&self, before_ms: u64) -> Result<usize, LocalError> {
        let before_ms = i64::try_from(before_ms).unwrap_or(i64::MAX);
        self.db
            .call(|conn| {
                conn.execute(
                    "DELETE FROM item_changes WHERE created_ms < ?1",
                    [before_ms],
                )
            })
            .map_err(|e| self.db.error(e))
    }

    /// Runs a read on the connection; `what` names the item or query in errors.
    fn read<T>(
        &self,
        what: &str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, PortError> {
        self.db.read(f).map_err(|e| failure(what, &e))
    }

    /// Runs a write in one transaction given the time now, and says whether it wrote: `f`
    /// returns the sequence number of its change, or `None` when its condition failed and it
    /// wrote nothing. Once a change has committed, the change log's consumers are woken.
    fn write(
        &self,
        what: &str,
        f: impl FnOnce(&Transaction<'_>, u64) -> rusqlite::Result<Option<u64>>,
    ) -> Result<bool, PortError> {
        let now = now_ms();
        let change = self
            .db
            .transaction(|tx| f(tx, now))
            .map_err(|e| failure(what, &e))?;
        let Some(sequence) = change else {
            return Ok(false);
        };
        self.last_change.fetch_max(sequence, Ordering::AcqRel);
        self.changed.notify_waiters();
        Ok(true)
    }

    /// Reads a max-merged value and its version.
    fn load_merged<K, V: Merged<K>>(&self, key: &K) -> Result<Option<(V, u64)>, PortError> {
        let (pk, sk) = V::key(key);
        let stored = self.read(&format!("{pk}/{sk}"), |conn| get_versioned(conn, &pk, &sk))?;
        self.meter
            .dynamodb_read(stored.as_ref().map_or(0, |stored| stored.size), true);
        Ok(stored.map(|stored| (stored.value, stored.version)))
    }

    /// Writes a max-merged value if its version is still `expected` (`None`: if it does not
    /// exist), bumping the version; [`PortError::Conflict`] otherwise.
    fn store_merged<K, V: Merged<K>>(
        &self,
        key: &K,
        value: &V,
        expected: Option<&u64>,
    ) -> Result<(), PortError> {
        let (pk, sk) = V::key(key);
        let written = self.write(&format!("{pk}/{sk}"), |tx, now| {
            let current = get_versioned::<V>(tx, &pk, &sk)?;
            if current.as_ref().map(|stored| stored.version) != expected.copied() {
                let size = current.as_ref().map_or(0, |stored| stored.size);
                self.meter.dynamodb_write(units::dynamodb_write_units(size));
                return Ok(None);
            }
            let old_image =
                current.map(|old| merged_image(key, &old.value, old.version, old.updated_at));
            let version = expected.map_or(1, |version| version + 1);
            let item = NewItem {
                pk: &pk,
                sk: &sk,
                columns: Columns {
                    gsi1: V::gsi1(key),
                    version: Some(version),
                    updated_at: Some(now),
                    ..Columns::default()
                },
                data: to_json(value)?,
                image: merged_image(key, value, version, now),
            };
            put(tx, item, old_image.as_ref(), now, &self.meter).map(Some)
        })?;
        if written {
            Ok(())
        } else {
            Err(PortError::Conflict)
        }
    }
}

/// A database failure of an operation on `what`, classified for the ports.
fn failure(what: &str, error: &rusqlite::Error) -> PortError {
    match port_error(error) {
        PortError::Transient(message) => PortError::Transient(format!("table {what}: {message}")),
        PortError::Permanent(message) => PortError::Permanent(format!("table {what}: {message}")),
        other => other,
    }
}

/// A value as stored, with its version and the time of its last write.
struct Stored<T> {
    value: T,
    version: u64,
    updated_at: u64,
    /// The item's size as DynamoDB counts it.
    size: u64,
}

/// The max-merged value at `(pk, sk)`, if any.
fn get_versioned<T: DeserializeOwned>(
    conn: &Connection,
    pk: &str,
    sk: &str,
) -> rusqlite::Result<Option<Stored<T>>> {
    conn.prepare_cached(
        "SELECT version, updated_at, data, size FROM items WHERE pk = ?1 AND sk = ?2",
    )?
    .query_row([pk, sk], |row| {
        Ok(Stored {
            version: row.get(0)?,
            updated_at: row.get(1)?,
            value: json_column(row, 2)?,
            size: row.get(3)?,
        })
    })
    .optional()
}

/// The value at `(pk, sk)` and the item's size, if any.
fn get_value<T: DeserializeOwned>(
    conn: &Connection,
    pk: &str,
    sk: &str,
) -> rusqlite::Result<Option<(T, u64)>> {
    conn.prepare_cached("SELECT data, size FROM items WHERE pk = ?1 AND sk = ?2")?
        .query_row([pk, sk], |row| Ok((json_column(row, 0)?, row.get(1)?)))
        .optional()
}

/// The columns of an item besides its keys and value: what the indexes and conditions read.
#[derive(Default)]
struct Columns {
    /// `(gsi1pk, gsi1sk)` of an item [`keys::GSI1`] lists.
    gsi1: Option<(String, u64)>,
    /// The best output of a leaderboard row, which [`keys::BY_BEST`] orders.
    best: Option<Output>,
    /// The version of a max-merged item.
    version: Option<u64>,
    /// The last write of a max-merged item, epoch milliseconds.
    updated_at: Option<u64>,
}

/// An item about to be written.
struct NewItem<'a> {
    pk: &'a str,
    sk: &'a str,
    columns: Columns,
    /// The value, as compact JSON.
    data: String,
    /// The item as DynamoDB holds it: the change's new image.
    image: Item,
}

/// Writes `new_item` over whatever its key holds (DynamoDB's PutItem) and appends its change,
/// with `old_image` the item it replaces, inside `tx`; returns the change's sequence number.
fn put(
    tx: &Transaction<'_>,
    new_item: NewItem<'_>,
    old_image: Option<&Item>,
    now: u64,
    meter: &Meter,
) -> rusqlite::Result<u64> {
    let Columns {
        gsi1,
        best,
        version,
        updated_at,
    } = new_item.columns;
    let size = units::item_size(&new_item.image);
    let replaced = old_image.map_or(0, units::item_size);
    // The table's copy, then one per index listing the item (GSI1; byBest).
    let indexes = u64::from(gsi1.is_some()) + u64::from(best.is_some());
    meter.dynamodb_write(
        units::dynamodb_write_units(size.max(replaced))
            + indexes * units::dynamodb_write_units(size),
    );
    let (gsi1pk, gsi1sk) = gsi1.unzip();
    tx.prepare_cached(
        "INSERT OR REPLACE INTO items (pk, sk, gsi1pk, gsi1sk, best, version, updated_at, data, size)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        new_item.pk,
        new_item.sk,
        gsi1pk,
        gsi1sk,
        best.map(Output::ten_thousandths),
        version,
        updated_at,
        new_item.data,
        size,
    ])?;
    let event_name = if old_image.is_some() {
        Change::MODIFY
    } else {
        Change::INSERT
    };
    let keys = to_json(&key_item(new_item.pk, new_item.sk))?;
    let old_image = old_image.map(to_json).transpose()?;
    let new_image = to_json(&new_item.image)?;
    let size_bytes = keys.len() + old_image.as_ref().map_or(0, String::len) + new_image.len();
    tx.prepare_cached(
        "INSERT INTO item_changes (created_ms, event_name, size_bytes, keys, old_image, new_image)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING sequence",
    )?
    .query_row(
        params![now, event_name, size_bytes, keys, old_image, new_image],
        |row| row.get(0),
    )
}

/// Serializes a value or an image for a column.
fn to_json<T: Serialize>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Reads a JSON column.
fn json_column<T: DeserializeOwned>(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<T> {
    parse_json(row.get_ref(index)?.as_str()?, index)
}

/// Reads a JSON column that may be NULL.
fn optional_json_column<T: DeserializeOwned>(
    row: &rusqlite::Row<'_>,
    index: usize,
) -> rusqlite::Result<Option<T>> {
    row.get_ref(index)?
        .as_str_or_null()?
        .map(|text| parse_json(text, index))
        .transpose()
}

fn parse_json<T: DeserializeOwned>(text: &str, index: usize) -> rusqlite::Result<T> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(e)))
}

/// Reads an event name column back as one of [`Change`]'s constants.
fn event_name(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<&'static str> {
    let text = row.get_ref(index)?.as_str()?;
    [Change::INSERT, Change::MODIFY, Change::REMOVE]
        .into_iter()
        .find(|name| *name == text)
        .ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                index,
                Type::Text,
                format!("unknown event name {text:?}").into(),
            )
        })
}

/// A string attribute.
fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute, in the decimal form `Display` gives (exact for an [`Output`]), as the
/// DynamoDB adapter writes it.
fn n(value: impl Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Standings as a map of racer id to best output.
fn standings_value(standings: &Standings) -> AttributeValue {
    AttributeValue::M(
        standings
            .results()
            .iter()
            .map(|(racer, output)| (racer.to_string(), n(output)))
            .collect(),
    )
}

/// A series as a list with second 1 first, `NULL` where the racer has no data.
fn series_value(series: &SecondSeries) -> AttributeValue {
    AttributeValue::L(
        series
            .as_slice()
            .iter()
            .map(|output| output.map_or(AttributeValue::Null(true), n))
            .collect(),
    )
}

/// An image of the given attributes.
fn item(attributes: impl IntoIterator<Item = (&'static str, AttributeValue)>) -> Item {
    attributes
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect::<HashMap<_, _>>()
        .into()
}

/// The key attributes of an item.
fn key_item(pk: &str, sk: &str) -> Item {
    item([(keys::PK, s(pk)), (keys::SK, s(sk))])
}

/// How a max-merged document is laid out as an item: as the DynamoDB adapter lays it out.
trait Merged<K>: Serialize + DeserializeOwned {
    /// `(pk, sk)`.
    fn key(key: &K) -> (String, String);
    /// The attributes other than the keys, the index keys, `updatedAt` and `version`.
    fn attributes(key: &K, value: &Self) -> Vec<(&'static str, AttributeValue)>;
    /// `(gsi1pk, gsi1sk)`, for an item that [`keys::GSI1`] lists.
    fn gsi1(_key: &K) -> Option<(String, u64)> {
        None
    }
}

/// The image of a max-merged item.
fn merged_image<K, V: Merged<K>>(key: &K, value: &V, version: u64, updated_at: u64) -> Item {
    let (pk, sk) = V::key(key);
    let mut image = key_item(&pk, &sk);
    image.extend(
        V::attributes(key, value)
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value)),
    );
    if let Some((gsi1pk, gsi1sk)) = V::gsi1(key) {
        image.insert(keys::GSI1_PK.to_owned(), s(gsi1pk));
        image.insert(keys::GSI1_SK.to_owned(), n(gsi1sk));
    }
    image.insert(attr::UPDATED_AT.to_owned(), n(updated_at));
    image.insert(attr::VERSION.to_owned(), n(version));
    image
}

impl Merged<RaceKey> for Standings {
    fn key(race: &RaceKey) -> (String, String) {
        (keys::race_pk(*race), keys::STANDINGS_SK.to_owned())
    }

    fn attributes(race: &RaceKey, standings: &Self) -> Vec<(&'static str, AttributeValue)> {
        vec![
            (attr::CLASS_ID, n(race.class_id)),
            (attr::RACE_ID, n(race.race_id)),
            (attr::RESULTS, standings_value(standings)),
        ]
    }

    fn gsi1(race: &RaceKey) -> Option<(String, u64)> {
        Some((keys::class_races_gsi1pk(race.class_id), race.race_id))
    }
}

impl Merged<BestsKey> for SecondSeries {
    fn key(key: &BestsKey) -> (String, String) {
        (keys::racer_pk(key.racer_id), keys::bests_sk(key.class_id))
    }

    fn attributes(key: &BestsKey, series: &Self) -> Vec<(&'static str, AttributeValue)> {
        vec![
            (attr::CLASS_ID, n(key.class_id)),
            (attr::RACER_ID, n(key.racer_id)),
            (attr::SECONDS, series_value(series)),
        ]
    }
}

impl Merged<TraceKey> for SecondSeries {
    fn key(key: &TraceKey) -> (String, String) {
        (keys::racer_pk(key.racer_id), keys::trace_sk(key.race))
    }

    fn attributes(key: &TraceKey, series: &Self) -> Vec<(&'static str, AttributeValue)> {
        vec![
            (attr::CLASS_ID, n(key.race.class_id)),
            (attr::RACE_ID, n(key.race.race_id)),
            (attr::RACER_ID, n(key.racer_id)),
            (attr::SECONDS, series_value(series)),
        ]
    }
}

/// Implements [`MergeStore`] for one kind of max-merged item.
macro_rules! local_merge_store {
    ($key:ty, $value:ty) => {
        impl MergeStore<$key, $value> for LocalTable {
            type Version = u64;

            fn empty(&self, _key: &$key) -> $value {
                <$value>::default()
            }

            async fn load(&self, key: &$key) -> Result<Option<($value, u64)>, PortError> {
                self.load_merged::<$key, $value>(key)
            }

            async fn store(
                &self,
                key: &$key,
                value: &$value,
                expected: Option<&u64>,
            ) -> Result<(), PortError> {
                self.store_merged::<$key, $value>(key, value, expected)
            }
        }
    };
}

local_merge_store!(RaceKey, Standings);
local_merge_store!(BestsKey, SecondSeries);
local_merge_store!(TraceKey, SecondSeries);

/// `(pk, sk)` of a racer's final.
fn final_key(result: &RacerFinal) -> (String, String) {
    let race = RaceKey {
        class_id: result.class_id,
        race_id: result.race_id,
    };
    (keys::race_pk(race), keys::racer_sk(result.racer_id))
}

/// The image of a racer's final.
fn final_image(result: &RacerFinal) -> Item {
    let (pk, sk) = final_key(result);
    item([
        (keys::PK, s(pk)),
        (keys::SK, s(sk)),
        (attr::CLASS_ID, n(result.class_id)),
        (attr::RACE_ID, n(result.race_id)),
        (attr::RACER_ID, n(result.racer_id)),
        (attr::NAME, s(result.name.as_str())),
        (attr::OUTPUT, n(result.output)),
        (attr::FINISHED_AT, n(result.finished_at)),
    ])
}

/// The image of a class's leaderboard row.
fn leaderboard_image(class_id: u8, entry: &LeaderboardEntry) -> Item {
    item([
        (keys::PK, s(keys::class_pk(class_id))),
        (keys::SK, s(keys::racer_sk(entry.racer_id))),
        (attr::RACER_ID, n(entry.racer_id)),
        (attr::NAME, s(entry.name.as_str())),
        (attr::BEST, n(entry.best)),
        (attr::RACE_ID, n(entry.race_id)),
        (attr::UPDATED_AT, n(entry.updated_at)),
    ])
}

impl Finals for LocalTable {
    async fn put_final(&self, result: &RacerFinal) -> Result<(), PortError> {
        let (pk, sk) = final_key(result);
        self.write(&format!("{pk}/{sk}"), |tx, now| {
            let old_image =
                get_value::<RacerFinal>(tx, &pk, &sk)?.map(|(old, _)| final_image(&old));
            let item = NewItem {
                pk: &pk,
                sk: &sk,
                columns: Columns::default(),
                data: to_json(result)?,
                image: final_image(result),
            };
            put(tx, item, old_image.as_ref(), now, &self.meter).map(Some)
        })
        .map(drop)
    }

    async fn offer_record(
        &self,
        class_id: u8,
        entry: &LeaderboardEntry,
    ) -> Result<bool, PortError> {
        let (pk, sk) = (keys::class_pk(class_id), keys::racer_sk(entry.racer_id));
        self.write(&format!("{pk}/{sk}"), |tx, now| {
            let current = get_value::<LeaderboardEntry>(tx, &pk, &sk)?;
            if !entry.beats(current.as_ref().map(|(stored, _)| stored)) {
                let size = current.as_ref().map_or(0, |(_, size)| *size);
                self.meter.dynamodb_write(units::dynamodb_write_units(size));
                return Ok(None);
            }
            let item = NewItem {
                pk: &pk,
                sk: &sk,
                columns: Columns {
                    best: Some(entry.best),
                    ..Columns::default()
                },
                data: to_json(entry)?,
                image: leaderboard_image(class_id, entry),
            };
            let old_image = current.map(|(old, _)| leaderboard_image(class_id, &old));
            put(tx, item, old_image.as_ref(), now, &self.meter).map(Some)
        })
    }
}

impl Queries for LocalTable {
    async fn latest_races(
        &self,
        class_id: u8,
        limit: usize,
    ) -> Result<Vec<StoredStandings>, PortError> {
        let partition = keys::class_races_gsi1pk(class_id);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(&partition, |conn| {
            conn.prepare_cached(
                "SELECT gsi1sk, updated_at, data, size FROM items
                 WHERE gsi1pk = ?1 ORDER BY gsi1sk DESC LIMIT ?2",
            )?
            .query_map(params![partition, limit], |row| {
                Ok((
                    StoredStandings {
                        race: RaceKey {
                            class_id,
                            race_id: row.get(0)?,
                        },
                        updated_at: row.get(1)?,
                        standings: json_column(row, 2)?,
                    },
                    row.get::<_, u64>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map(|rows| self.metered_query(rows))
    }

    async fn standings(&self, race: RaceKey) -> Result<Option<StoredStandings>, PortError> {
        let (pk, sk) = <Standings as Merged<RaceKey>>::key(&race);
        let stored = self.read(&format!("{pk}/{sk}"), |conn| {
            get_versioned::<Standings>(conn, &pk, &sk)
        })?;
        self.meter
            .dynamodb_read(stored.as_ref().map_or(0, |stored| stored.size), false);
        Ok(stored.map(|stored| StoredStandings {
            race,
            standings: stored.value,
            updated_at: stored.updated_at,
        }))
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
        let mut rows = self
            .read(&partition, |conn| {
                let mut select = conn.prepare_cached(
                    "SELECT best, data, size FROM items
                 WHERE pk = ?1 AND best IS NOT NULL ORDER BY best DESC",
                )?;
                let mut selected = select.query([&partition])?;
                let mut entries: Vec<(LeaderboardEntry, u64)> = Vec::new();
                while let Some(row) = selected.next()? {
                    // The index orders by best only, and rows tied with the `limit`-th best may rank
                    // above it by the record order: read on until the best drops below it.
                    let best = Output::from_ten_thousandths(row.get(0)?);
                    if entries
                        .get(limit - 1)
                        .is_some_and(|(kth, _)| best < kth.best)
                    {
                        break;
                    }
                    entries.push((json_column(row, 1)?, row.get(2)?));
                }
                Ok(entries)
            })
            .map(|rows| self.metered_query(rows))?;
        rank_leaderboard(&mut rows);
        rows.truncate(limit);
        Ok(rows)
    }

    async fn finals(&self, race: RaceKey) -> Result<Vec<RacerFinal>, PortError> {
        let partition = keys::race_pk(race);
        let mut finals = self
            .read(&partition, |conn| {
                conn.prepare_cached(
                    "SELECT data, size FROM items WHERE pk = ?1 AND substr(sk, 1, length(?2)) = ?2",
                )?
                .query_map([partition.as_str(), keys::RACER_PREFIX], |row| {
                    Ok((json_column::<RacerFinal>(row, 0)?, row.get::<_, u64>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map(|rows| self.metered_query(rows))?;
        // Sort keys order racer ids as strings (`racer#10` < `racer#9`); callers get id order.
        finals.sort_unstable_by_key(|f| f.racer_id);
        Ok(finals)
    }

    async fn bests(&self, key: BestsKey) -> Result<Option<SecondSeries>, PortError> {
        self.read_series(&key)
    }

    async fn trace(&self, key: TraceKey) -> Result<Option<SecondSeries>, PortError> {
        self.read_series(&key)
    }
}

impl LocalTable {
    /// A racer's bests or trace.
    fn read_series<K>(&self, key: &K) -> Result<Option<SecondSeries>, PortError>
    where
        SecondSeries: Merged<K>,
    {
        let (pk, sk) = SecondSeries::key(key);
        let stored = self.read(&format!("{pk}/{sk}"), |conn| get_value(conn, &pk, &sk))?;
        self.meter
            .dynamodb_read(stored.as_ref().map_or(0, |(_, size)| *size), false);
        Ok(stored.map(|(series, _)| series))
    }

    /// Counts a query's read (eventually consistent, as the API's are) of `rows` with their
    /// sizes, and returns the rows.
    fn metered_query<T>(&self, rows: Vec<(T, u64)>) -> Vec<T> {
        self.meter
            .dynamodb_read(rows.iter().map(|(_, size)| size).sum(), false);
        rows.into_iter().map(|(row, _)| row).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use alleycat_domain::MaxMerge;
    use alleycat_ports::{RetryPolicy, merge_into};
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    fn open(path: &std::path::Path) -> LocalTable {
        LocalTable::open(Arc::new(Db::open(path).unwrap())).unwrap()
    }

    fn table() -> (tempfile::TempDir, LocalTable) {
        let dir = tempfile::tempdir().unwrap();
        let table = open(&dir.path().join("table.db"));
        (dir, table)
    }

    fn out(ten_thousandths: u32) -> Output {
        Output::from_ten_thousandths(ten_thousandths)
    }

    fn race(class_id: u8, race_id: u64) -> RaceKey {
        RaceKey { class_id, race_id }
    }

    fn standings(results: &[(u32, u32)]) -> Standings {
        results.iter().map(|&(racer, o)| (racer, out(o))).collect()
    }

    fn entry(racer_id: u32, name: &str, best: u32, race_id: u64) -> LeaderboardEntry {
        LeaderboardEntry {
            racer_id,
            name: name.to_owned(),
            best: out(best),
            race_id,
            updated_at: race_id * 1_000,
        }
    }

    fn racer_final(race: RaceKey, racer_id: u32, output: u32) -> RacerFinal {
        RacerFinal {
            class_id: race.class_id,
            race_id: race.race_id,
            racer_id,
            name: format!("racer {racer_id}"),
            output: out(output),
            finished_at: 1_700_000_000_000,
        }
    }

    /// An image as DynamoDB JSON, without `updatedAt` when the clock set it.
    fn image_json(image: Option<&Item>, drop_updated_at: bool) -> serde_json::Value {
        let mut image = image.expect("an image").clone();
        if drop_updated_at {
            image.remove("updatedAt").expect("updatedAt is set");
        }
        serde_json::to_value(&image).unwrap()
    }

    /// The publisher's view of a standings image (`publisher::StandingsImage`).
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct StandingsImage {
        class_id: u8,
        race_id: u64,
        results: Standings,
        updated_at: u64,
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_merges_into_one_item_lose_no_update() {
        let (_dir, table) = table();
        let key = race(3, 5_400_172);
        let mut rng = fastrand::Rng::with_seed(7);
        let deltas: Vec<Vec<Standings>> = (0..8)
            .map(|_| {
                (0..25)
                    .map(|_| {
                        (0..5)
                            .map(|_| (rng.u32(1..40), out(rng.u32(1..3_000_000))))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let mut expected = Standings::new();
        for delta in deltas.iter().flatten() {
            expected.merge(delta);
        }
        let policy = RetryPolicy {
            max_attempts: 10_000,
            base_delay: Duration::from_micros(200),
            max_delay: Duration::from_millis(2),
        };
        let tasks: Vec<_> = deltas
            .into_iter()
            .map(|task_deltas| {
                let table = table.clone();
                tokio::spawn(async move {
                    let mut writes = 0;
                    for delta in &task_deltas {
                        let outcome = merge_into(&table, &key, delta, &policy).await.unwrap();
                        writes += u64::from(outcome.written);
                    }
                    writes
                })
            })
            .collect();
        let mut writes = 0;
        for task in tasks {
            writes += task.await.unwrap();
        }

        let (stored, version) = MergeStore::<RaceKey, Standings>::load(&table, &key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored, expected);
        assert_eq!(version, writes, "one version per successful write");
        let changes = table.changes_after(0, 10_000).unwrap();
        assert_eq!(changes.len() as u64, writes, "one change per write");
        let last: StandingsImage =
            serde_dynamo::from_item(changes.last().unwrap().new_image.clone().unwrap()).unwrap();
        assert_eq!(last.results, expected);
    }

    #[tokio::test]
    async fn a_stale_version_conflicts_and_writes_nothing() {
        let (_dir, table) = table();
        let key = race(1, 10);
        let (first, second) = (standings(&[(1, 100)]), standings(&[(1, 200)]));
        table.store(&key, &first, None).await.unwrap();
        assert_eq!(
            table.store(&key, &second, None).await,
            Err(PortError::Conflict),
            "an insert finds the item there"
        );
        table.store(&key, &second, Some(&1)).await.unwrap();
        assert_eq!(
            table.store(&key, &first, Some(&1)).await,
            Err(PortError::Conflict),
            "version 1 is stale"
        );
        assert_eq!(
            MergeStore::<RaceKey, Standings>::load(&table, &key)
                .await
                .unwrap(),
            Some((second, 2))
        );
        assert_eq!(table.changes_after(0, 10).unwrap().len(), 2);
        let other = race(2, 10);
        assert_eq!(
            table.store(&other, &first, Some(&1)).await,
            Err(PortError::Conflict),
            "an update finds no item"
        );
        assert_eq!(table.standings(other).await.unwrap(), None);
    }

    #[tokio::test]
    async fn records_only_improve_and_rank_best_first() {
        let (_dir, table) = table();
        assert!(
            table
                .offer_record(3, &entry(1, "ann", 1_500_000, 20))
                .await
                .unwrap()
        );
        assert!(
            !table
                .offer_record(3, &entry(1, "ann", 1_400_000, 21))
                .await
                .unwrap()
        );
        assert!(
            !table
                .offer_record(3, &entry(1, "ann", 1_500_000, 22))
                .await
                .unwrap(),
            "an equal best of a later race is no record"
        );
        assert!(
            table
                .offer_record(3, &entry(1, "ann", 1_500_000, 19))
                .await
                .unwrap(),
            "an equal best of an earlier race keeps the record"
        );
        assert!(
            table
                .offer_record(3, &entry(1, "ann", 1_600_000, 30))
                .await
                .unwrap()
        );
        // Three rows tied at 90, the record holder (the earliest race) inserted in the middle:
        // whichever way the index orders ties, the second place is decided by the record order.
        for (racer, name, race_id) in [(2, "bob", 7), (3, "cat", 3), (6, "fay", 9)] {
            let row = entry(racer, name, 900_000, race_id);
            assert!(table.offer_record(3, &row).await.unwrap());
        }
        table
            .offer_record(3, &entry(4, "dan", 100_000, 1))
            .await
            .unwrap();
        table
            .offer_record(4, &entry(5, "eve", 9_900_000, 1))
            .await
            .unwrap();

        let ids = |rows: Vec<LeaderboardEntry>| rows.iter().map(|r| r.racer_id).collect::<Vec<_>>();
        assert_eq!(
            ids(table.leaderboard(3, 10).await.unwrap()),
            [1, 3, 2, 6, 4]
        );
        assert_eq!(ids(table.leaderboard(3, 2).await.unwrap()), [1, 3]);
        assert_eq!(ids(table.leaderboard(3, 3).await.unwrap()), [1, 3, 2]);
        assert_eq!(
            ids(table.leaderboard(3, 0).await.unwrap()),
            Vec::<u32>::new()
        );
        assert_eq!(ids(table.leaderboard(4, 10).await.unwrap()), [5]);
        assert_eq!(
            table.leaderboard(3, 1).await.unwrap(),
            [entry(1, "ann", 1_600_000, 30)]
        );

        let changes = table.changes_after(0, 100).unwrap();
        assert_eq!(changes.len(), 8, "refused offers write no change");
        let record = &changes[2];
        assert_eq!(record.event_name, Change::MODIFY);
        assert_eq!(
            image_json(record.new_image.as_ref(), false),
            json!({
                "pk": {"S": "class#3"},
                "sk": {"S": "racer#1"},
                "racerId": {"N": "1"},
                "name": {"S": "ann"},
                "best": {"N": "160"},
                "raceId": {"N": "30"},
                "updatedAt": {"N": "30000"}
            })
        );
        assert_eq!(record.old_image, changes[1].new_image);
    }

    #[tokio::test]
    async fn latest_races_are_newest_first_per_class_and_limited() {
        let (_dir, table) = table();
        for key in [race(1, 9), race(1, 12), race(2, 20), race(1, 5)] {
            let results = standings(&[(1, u32::try_from(key.race_id).unwrap())]);
            table.store(&key, &results, None).await.unwrap();
        }
        let races = |rows: Vec<StoredStandings>| rows.iter().map(|r| r.race).collect::<Vec<_>>();
        assert_eq!(
            races(table.latest_races(1, 2).await.unwrap()),
            [race(1, 12), race(1, 9)],
            "race ids sort as numbers"
        );
        assert_eq!(
            races(table.latest_races(1, 10).await.unwrap()),
            [race(1, 12), race(1, 9), race(1, 5)]
        );
        assert_eq!(
            races(table.latest_races(2, 10).await.unwrap()),
            [race(2, 20)]
        );
        assert!(table.latest_races(3, 10).await.unwrap().is_empty());
        assert!(table.latest_races(1, 0).await.unwrap().is_empty());

        let latest = &table.latest_races(1, 1).await.unwrap()[0];
        assert_eq!(latest.standings, standings(&[(1, 12)]));
        assert_eq!(
            Some(latest),
            table.standings(race(1, 12)).await.unwrap().as_ref()
        );
        assert!(
            latest.updated_at > 1_700_000_000_000,
            "stamped with the clock"
        );
    }

    #[tokio::test]
    async fn finals_of_a_race_in_racer_order() {
        let (_dir, table) = table();
        let here = race(3, 77);
        table
            .store(&here, &standings(&[(9, 1)]), None)
            .await
            .unwrap();
        for racer in [10, 9, 2] {
            table
                .put_final(&racer_final(here, racer, 1_000 + racer))
                .await
                .unwrap();
        }
        table
            .put_final(&racer_final(race(4, 77), 5, 1))
            .await
            .unwrap();
        let mut renamed = racer_final(here, 9, 1_009);
        renamed.name = "nine".to_owned();
        table.put_final(&renamed).await.unwrap();

        let finals = table.finals(here).await.unwrap();
        assert_eq!(
            finals.iter().map(|f| f.racer_id).collect::<Vec<_>>(),
            [2, 9, 10]
        );
        assert_eq!(finals[1], renamed, "a final put again overwrites");
        assert!(table.finals(race(3, 78)).await.unwrap().is_empty());

        let last = table.changes_after(0, 100).unwrap().pop().unwrap();
        assert_eq!(last.event_name, Change::MODIFY);
        assert_eq!(
            image_json(last.new_image.as_ref(), false),
            json!({
                "pk": {"S": "race#3#77"},
                "sk": {"S": "racer#9"},
                "classId": {"N": "3"},
                "raceId": {"N": "77"},
                "racerId": {"N": "9"},
                "name": {"S": "nine"},
                "output": {"N": "0.1009"},
                "finishedAt": {"N": "1700000000000"}
            })
        );
        assert_eq!(
            image_json(last.old_image.as_ref(), false)["name"],
            json!({"S": "racer 9"})
        );
    }

    #[tokio::test]
    async fn bests_and_traces_round_trip_exactly() {
        let (_dir, table) = table();
        let bests_key = BestsKey {
            racer_id: 8,
            class_id: 3,
        };
        let trace_key = TraceKey {
            racer_id: 8,
            race: race(3, 5_400_172),
        };
        let bests: SecondSeries = [(1, out(u32::MAX)), (3, out(1_517_880)), (300, out(1))]
            .into_iter()
            .collect();
        let trace: SecondSeries = [(2, out(5))].into_iter().collect();
        assert_eq!(table.bests(bests_key).await.unwrap(), None);
        table.store(&bests_key, &bests, None).await.unwrap();
        table.store(&trace_key, &trace, None).await.unwrap();

        assert_eq!(table.bests(bests_key).await.unwrap(), Some(bests.clone()));
        assert_eq!(table.trace(trace_key).await.unwrap(), Some(trace.clone()));
        assert_eq!(
            table
                .bests(BestsKey {
                    class_id: 4,
                    ..bests_key
                })
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            MergeStore::<BestsKey, SecondSeries>::load(&table, &bests_key)
                .await
                .unwrap(),
            Some((bests, 1))
        );

        let changes = table.changes_after(0, 10).unwrap();
        assert_eq!(
            image_json(changes[1].new_image.as_ref(), true),
            json!({
                "pk": {"S": "racer#8"},
                "sk": {"S": "race#3#5400172"},
                "classId": {"N": "3"},
                "raceId": {"N": "5400172"},
                "racerId": {"N": "8"},
                "seconds": {"L": [{"NULL": true}, {"N": "0.0005"}]},
                "version": {"N": "1"}
            })
        );
        let seconds = &image_json(changes[0].new_image.as_ref(), true)["seconds"]["L"];
        assert_eq!(seconds[0], json!({"N": "429496.7295"}));
        assert_eq!(seconds[2], json!({"N": "151.788"}));
        assert_eq!(seconds[299], json!({"N": "0.0001"}));
    }

    #[tokio::test]
    async fn changes_carry_old_and_new_images_like_a_dynamodb_stream() {
        let (_dir, table) = table();
        let key = race(3, 5_400_172);
        let changed = table.changed();
        let notified = changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let before = now_ms();
        let first = standings(&[(8, 1_517_880), (12, 1_402_500)]);
        table.store(&key, &first, None).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), notified)
            .await
            .expect("a write wakes the change log's consumers");
        let mut second = first.clone();
        second.merge(&standings(&[(8, 1_531_204), (31, 985_000)]));
        table.store(&key, &second, Some(&1)).await.unwrap();
        let after = now_ms();

        let changes = table.changes_after(0, 10).unwrap();
        let [insert, modify] = changes.as_slice() else {
            panic!("two changes: {changes:?}")
        };
        assert_eq!((insert.sequence, modify.sequence), (1, 2));
        assert_eq!((insert.event_name, modify.event_name), ("INSERT", "MODIFY"));
        let keys = json!({"pk": {"S": "race#3#5400172"}, "sk": {"S": "standings"}});
        assert_eq!(serde_json::to_value(&insert.keys).unwrap(), keys);
        assert_eq!(serde_json::to_value(&modify.keys).unwrap(), keys);
        assert_eq!(insert.old_image, None);
        assert_eq!(modify.old_image, insert.new_image);
        assert_eq!(
            image_json(modify.new_image.as_ref(), true),
            json!({
                "pk": {"S": "race#3#5400172"},
                "sk": {"S": "standings"},
                "classId": {"N": "3"},
                "raceId": {"N": "5400172"},
                "results": {"M": {
                    "8": {"N": "153.1204"},
                    "12": {"N": "140.25"},
                    "31": {"N": "98.5"}
                }},
                "version": {"N": "2"},
                "gsi1pk": {"S": "class#3#races"},
                "gsi1sk": {"N": "5400172"}
            })
        );
        for change in &changes {
            assert!((before..=after).contains(&change.created_ms));
            assert!(change.size_bytes > 200, "{}", change.size_bytes);
        }
        assert!(modify.size_bytes > insert.size_bytes, "two images");

        let image: StandingsImage =
            serde_dynamo::from_item(modify.new_image.clone().unwrap()).unwrap();
        assert_eq!((image.class_id, image.race_id), (3, 5_400_172));
        assert_eq!(image.results, second);
        let stored = table.standings(key).await.unwrap().unwrap();
        assert_eq!(image.updated_at, stored.updated_at);

        assert_eq!(
            table.changes_after(1, 10).unwrap(),
            std::slice::from_ref(modify)
        );
        assert_eq!(
            table.changes_after(0, 1).unwrap(),
            std::slice::from_ref(insert)
        );
        assert!(table.changes_after(2, 10).unwrap().is_empty());
        assert_eq!(table.last_change(), Some(2));
    }

    #[tokio::test]
    async fn trimming_drops_old_changes_and_never_reuses_a_sequence() {
        let (_dir, table) = table();
        assert_eq!(table.last_change(), None);
        let key = race(1, 1);
        table
            .store(&key, &standings(&[(1, 1)]), None)
            .await
            .unwrap();
        table
            .store(&key, &standings(&[(1, 2)]), Some(&1))
            .await
            .unwrap();
        assert_eq!(table.trim_changes(0).unwrap(), 0);
        assert_eq!(table.trim_changes(now_ms() + 1).unwrap(), 2);
        assert!(table.changes_after(0, 10).unwrap().is_empty());
        assert_eq!(table.last_change(), Some(2), "trimming keeps the numbering");
        table
            .store(&key, &standings(&[(1, 3)]), Some(&2))
            .await
            .unwrap();
        let changes = table.changes_after(0, 10).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].sequence, 3);
    }

    #[tokio::test]
    async fn state_survives_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.db");
        let key = race(2, 40);
        let results = standings(&[(1, 1_234_567), (2, 7)]);
        {
            let table = open(&path);
            table.store(&key, &results, None).await.unwrap();
            table
                .offer_record(2, &entry(1, "ann", 1_234_567, 40))
                .await
                .unwrap();
            table
                .put_final(&racer_final(key, 1, 1_234_567))
                .await
                .unwrap();
        }
        let table = open(&path);
        assert_eq!(table.last_change(), Some(3));
        assert_eq!(
            MergeStore::<RaceKey, Standings>::load(&table, &key)
                .await
                .unwrap(),
            Some((results.clone(), 1))
        );
        assert_eq!(
            table.latest_races(2, 5).await.unwrap()[0].standings,
            results
        );
        assert_eq!(
            table.leaderboard(2, 5).await.unwrap(),
            [entry(1, "ann", 1_234_567, 40)]
        );
        assert_eq!(
            table.finals(key).await.unwrap(),
            [racer_final(key, 1, 1_234_567)]
        );
        assert_eq!(table.changes_after(0, 10).unwrap().len(), 3);
        table.store(&key, &results, Some(&1)).await.unwrap();
        assert_eq!(table.changes_after(3, 10).unwrap()[0].sequence, 4);
    }
}
