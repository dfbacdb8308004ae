//! The items as DynamoDB holds them, built by the shared schema ([`alleycat_ports::schema`]) with
//! `serde_dynamo`: a row's image and keys, which the change log carries as a DynamoDB stream
//! record does and the DynamoDB adapter writes as its items.

use alleycat_ports::schema::{ItemKey, TableItem};
use serde::Serialize;
use serde_dynamo::Item;

use super::store::{Row, to_json};

/// `item` at `key` as DynamoDB holds it, key attributes included.
pub(super) fn image<T: TableItem>(key: &T::Key, item: &T) -> rusqlite::Result<Item> {
    convert(&item.keyed(key))
}

/// The key attributes of the item at `key` (a stream record's `Keys`).
pub(super) fn keys_image(key: &ItemKey) -> rusqlite::Result<Item> {
    convert(key)
}

/// The row of `item` at `key`, storing `value` (its domain value) as its data.
pub(super) fn row<T: TableItem>(
    key: &T::Key,
    item: &T,
    value: &impl Serialize,
) -> rusqlite::Result<Row> {
    let keyed = item.keyed(key);
    Ok(Row {
        key: keyed.key().clone(),
        gsi1: item.gsi1(),
        best: item.best(),
        versioned: None,
        data: to_json(value)?,
        image: convert(&keyed)?,
        keys: convert(keyed.key())?,
    })
}

fn convert(value: &impl Serialize) -> rusqlite::Result<Item> {
    serde_dynamo::to_item(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}
