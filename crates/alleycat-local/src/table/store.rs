//! The SQLite side of the table: the items and their change log, each write appending its
//! change in the caller's transaction. Knows rows and JSON only; the items' DynamoDB form comes
//! from [`super::images`].

use alleycat_cost::units;
use alleycat_domain::Output;
use alleycat_ports::schema::{Gsi1Key, ItemKey};
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_dynamo::Item;

use super::{Change, Written};
use crate::meter::DynamoDbWrite;

/// The tables and indexes, created on open.
///
/// `items` is a rowid table (a standings value of a big race runs to kilobytes, too large for a
/// `WITHOUT ROWID` table). The index columns are NULL on items an index does not list, so both
/// indexes are sparse, as DynamoDB's are. `item_changes` numbers its rows with `AUTOINCREMENT`,
/// so a sequence number is never reused, even once trimming has emptied the log.
pub(super) const SCHEMA: &str = "
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

/// A value as stored, with its version and the time of its last write.
pub(super) struct Stored<T> {
    pub value: T,
    pub version: u64,
    pub updated_at: u64,
    /// The item's size as DynamoDB counts it.
    pub size: u64,
}

/// The max-merged value at `key`, if any.
pub(super) fn get_versioned<T: DeserializeOwned>(
    conn: &Connection,
    key: &ItemKey,
) -> rusqlite::Result<Option<Stored<T>>> {
    conn.prepare_cached(
        "SELECT version, updated_at, data, size FROM items WHERE pk = ?1 AND sk = ?2",
    )?
    .query_row([&key.pk, &key.sk], |row| {
        Ok(Stored {
            version: row.get(0)?,
            updated_at: row.get(1)?,
            value: json_column(row, 2)?,
            size: row.get(3)?,
        })
    })
    .optional()
}

/// The value at `key` and the item's size, if any.
pub(super) fn get_value<T: DeserializeOwned>(
    conn: &Connection,
    key: &ItemKey,
) -> rusqlite::Result<Option<(T, u64)>> {
    conn.prepare_cached("SELECT data, size FROM items WHERE pk = ?1 AND sk = ?2")?
        .query_row([&key.pk, &key.sk], |row| {
            Ok((json_column(row, 0)?, row.get(1)?))
        })
        .optional()
}

/// An item about to be written: its row and its image.
pub(super) struct Row {
    pub key: ItemKey,
    /// Its key in [`alleycat_ports::keys::GSI1`], if that index lists it.
    pub gsi1: Option<Gsi1Key>,
    /// Its best output, which [`alleycat_ports::keys::BY_BEST`] orders, if that index lists it.
    pub best: Option<Output>,
    /// The version and last write (epoch milliseconds) of a max-merged item.
    pub versioned: Option<(u64, u64)>,
    /// The value, as compact JSON.
    pub data: String,
    /// The item as DynamoDB holds it: the change's new image.
    pub image: Item,
    /// The key attributes as DynamoDB holds them: the change's keys.
    pub keys: Item,
}

/// Writes `row` over whatever its key holds (DynamoDB's PutItem) and appends its change, with
/// `old_image` the item it replaces, inside `tx`.
pub(super) fn put(
    tx: &Transaction<'_>,
    row: Row,
    old_image: Option<&Item>,
    now: u64,
) -> rusqlite::Result<Written> {
    let size = units::item_size(&row.image);
    let billed = DynamoDbWrite {
        written: size,
        replaced: old_image.map_or(0, units::item_size),
        indexes: u64::from(row.gsi1.is_some()) + u64::from(row.best.is_some()),
    };
    let (gsi1pk, gsi1sk) = row.gsi1.map(|gsi1| (gsi1.pk, gsi1.sk)).unzip();
    let (version, updated_at) = row.versioned.unzip();
    tx.prepare_cached(
        "INSERT OR REPLACE INTO items (pk, sk, gsi1pk, gsi1sk, best, version, updated_at, data, size)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        row.key.pk,
        row.key.sk,
        gsi1pk,
        gsi1sk,
        row.best.map(Output::ten_thousandths),
        version,
        updated_at,
        row.data,
        size,
    ])?;
    let event_name = if old_image.is_some() {
        Change::MODIFY
    } else {
        Change::INSERT
    };
    let sequence = log(tx, event_name, &row.keys, old_image, Some(&row.image), now)?;
    Ok(Written {
        sequence: Some(sequence),
        billed: vec![billed],
    })
}

/// Deletes the item at `key` (DynamoDB's DeleteItem) and appends its `REMOVE` change, with
/// `old_image` the item deleted and `keys` its key attributes.
pub(super) fn remove(
    tx: &Transaction<'_>,
    key: &ItemKey,
    keys: &Item,
    old_image: &Item,
    now: u64,
) -> rusqlite::Result<Written> {
    tx.prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")?
        .execute([&key.pk, &key.sk])?;
    let sequence = log(tx, Change::REMOVE, keys, Some(old_image), None, now)?;
    Ok(Written {
        sequence: Some(sequence),
        billed: vec![DynamoDbWrite {
            replaced: units::item_size(old_image),
            ..DynamoDbWrite::default()
        }],
    })
}

/// Appends a change to the log; returns its sequence number.
fn log(
    tx: &Transaction<'_>,
    event_name: &str,
    keys: &Item,
    old_image: Option<&Item>,
    new_image: Option<&Item>,
    now: u64,
) -> rusqlite::Result<u64> {
    let keys = to_json(keys)?;
    let old_image = old_image.map(to_json).transpose()?;
    let new_image = new_image.map(to_json).transpose()?;
    let size_bytes = keys.len()
        + old_image.as_ref().map_or(0, String::len)
        + new_image.as_ref().map_or(0, String::len);
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
pub(super) fn to_json<T: Serialize + ?Sized>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Reads a JSON column.
pub(super) fn json_column<T: DeserializeOwned>(
    row: &rusqlite::Row<'_>,
    index: usize,
) -> rusqlite::Result<T> {
    parse_json(row.get_ref(index)?.as_str()?, index)
}

/// Reads a JSON column that may be NULL.
pub(super) fn optional_json_column<T: DeserializeOwned>(
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
pub(super) fn event_name(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<&'static str> {
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
