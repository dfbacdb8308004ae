//! The single table on the embedded database: DynamoDB's items, indexes and stream, on SQLite.
//!
//! - [`store`]: the SQLite tables. Items live in one table whose columns mirror the DynamoDB key
//!   schema ([`alleycat_ports::keys`]): the primary key `(pk, sk)`, a partial index on
//!   `(gsi1pk, gsi1sk)` standing for [`keys::GSI1`] (a class's races by race id) and one on
//!   `(pk, best)` standing for [`keys::BY_BEST`] (a class's leaderboard by best output). A value
//!   is stored as the compact JSON of its domain type, which keeps outputs exact; max-merged items
//!   also carry their `version` and `updated_at`. Beside it, the change log.
//! - [`images`]: the items as DynamoDB holds them, built by the shared schema
//!   ([`alleycat_ports::schema`]), so the change log's images are the DynamoDB adapter's items and
//!   the publisher reads them as it reads the real stream's.
//! - the ports, one module each: [`merged`] (standings, bests, traces), [`finals`] (finals and
//!   the leaderboard), [`queries`], [`claims`] and [`repair`].
//! - metering: the store reports what each write touched ([`DynamoDbWrite`], DynamoDB's
//!   consumed capacity) and [`LocalTable::write`] bills it, once committed; reads are billed
//!   where the ports read.
//!
//! Every write is one immediate transaction that checks its condition (the version of a
//! max-merged item, the "only if greater" of a leaderboard row), replaces the item, and appends a
//! row to the change log: the table's stream, with NEW_AND_OLD_IMAGES. Once the transaction has
//! committed, [`LocalTable::changed`] wakes the stream's poller.
//!
//! The port methods are `async` but call SQLite synchronously, off the async workers: each write
//! holds the database's writing connection for one short transaction and never across an
//! `.await`, and reads (the API's queries, the merges' loads) run on reading connections of their
//! own, which never wait for a write (see [`crate::db`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use alleycat_ports::PortError;
#[cfg(doc)]
use alleycat_ports::keys;
use alleycat_ports::schema::TableItem;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_dynamo::Item;
use tokio::sync::Notify;

mod claims;
mod finals;
mod images;
mod merged;
mod queries;
mod ranks;
mod repair;
mod store;
#[cfg(test)]
mod tests;

use crate::db::Db;
use crate::error::{LocalError, port_error};
use crate::meter::{DynamoDbWrite, Meter};
use crate::now_ms;

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

/// What a write's transaction did: the change it logged, if its condition held, and what
/// DynamoDB would bill for it either way.
struct Written {
    /// The change's sequence number; `None` when the condition failed and nothing was written.
    sequence: Option<u64>,
    /// The sizes the write is billed by: one entry per item it wrote or was refused by (a
    /// transaction lists each of its items twice, as DynamoDB bills them), none if it wrote
    /// nothing and checked nothing.
    billed: Vec<DynamoDbWrite>,
}

impl Written {
    /// A conditional write refused by the stored item of `stored_size` bytes (0: none).
    fn refused(stored_size: u64) -> Self {
        Self {
            sequence: None,
            billed: vec![DynamoDbWrite {
                replaced: stored_size,
                ..DynamoDbWrite::default()
            }],
        }
    }

    /// A write that found nothing to do.
    fn nothing() -> Self {
        Self {
            sequence: None,
            billed: Vec::new(),
        }
    }
}

impl LocalTable {
    /// Opens the table in `db`, creating its tables and indexes on first use.
    pub fn open(db: Arc<Db>) -> Result<Self, LocalError> {
        let last_change = db
            .call(|conn| {
                conn.execute_batch(store::SCHEMA)?;
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
                            event_name: store::event_name(row, 1)?,
                            keys: store::json_column(row, 2)?,
                            old_image: store::optional_json_column(row, 3)?,
                            new_image: store::optional_json_column(row, 4)?,
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

    /// Runs a read on a reading connection; `what` names the item or query in errors.
    fn read<T>(
        &self,
        what: &str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, PortError> {
        self.db.read(f).map_err(|e| failure(what, &e))
    }

    /// Counts a read of `bytes` of items in one request.
    fn bill_read(&self, bytes: u64, consistent: bool) {
        self.meter.dynamodb_read(bytes, consistent);
    }

    /// Counts a query's read (eventually consistent, as the API's are) of `rows` with their
    /// sizes, and returns the rows.
    fn bill_query<T>(&self, rows: Vec<(T, u64)>) -> Vec<T> {
        self.bill_read(rows.iter().map(|(_, size)| size).sum(), false);
        rows.into_iter().map(|(row, _)| row).collect()
    }

    /// Runs a write in one transaction given the time now, and says whether it wrote. Once the
    /// transaction has committed, the write is billed and, if it changed the table, the change
    /// log's consumers are woken.
    fn write(
        &self,
        what: &str,
        f: impl FnOnce(&Transaction<'_>, u64) -> rusqlite::Result<Written>,
    ) -> Result<bool, PortError> {
        let now = now_ms();
        let written = self
            .db
            .transaction(|tx| f(tx, now))
            .map_err(|e| failure(what, &e))?;
        for billed in written.billed {
            self.meter.dynamodb_write(billed);
        }
        let Some(sequence) = written.sequence else {
            return Ok(false);
        };
        self.last_change.fetch_max(sequence, Ordering::AcqRel);
        self.changed.notify_waiters();
        Ok(true)
    }

    /// [`LocalTable::write`] for a conditional write: [`PortError::Conflict`] when its condition
    /// failed.
    fn write_if(
        &self,
        what: &str,
        f: impl FnOnce(&Transaction<'_>, u64) -> rusqlite::Result<Written>,
    ) -> Result<(), PortError> {
        if self.write(what, f)? {
            Ok(())
        } else {
            Err(PortError::Conflict)
        }
    }

    /// Writes `value` as the item of kind `T` at `key` if `holds` accepts the value stored there
    /// (DynamoDB's conditional PutItem), and says whether it wrote.
    fn put_if<T, V>(
        &self,
        key: &T::Key,
        value: &V,
        holds: impl FnOnce(Option<&V>) -> bool,
    ) -> Result<bool, PortError>
    where
        T: TableItem + for<'v> From<&'v V>,
        V: Serialize + DeserializeOwned,
    {
        let item_key = T::key(key);
        self.write(&item_key.to_string(), |tx, now| {
            let current = store::get_value::<V>(tx, &item_key)?;
            if !holds(current.as_ref().map(|(stored, _)| stored)) {
                return Ok(Written::refused(current.map_or(0, |(_, size)| size)));
            }
            let old_image = current
                .map(|(old, _)| images::image(key, &T::from(&old)))
                .transpose()?;
            let row = images::row(key, &T::from(value), value)?;
            store::put(tx, row, old_image.as_ref(), now)
        })
    }

    /// Deletes the item of kind `T` at `key` if it still holds `expected` (DynamoDB's
    /// conditional DeleteItem); [`PortError::Conflict`] otherwise.
    fn remove_if_still<T, V>(&self, key: &T::Key, expected: &V) -> Result<(), PortError>
    where
        T: TableItem + for<'v> From<&'v V>,
        V: DeserializeOwned + PartialEq,
    {
        let item_key = T::key(key);
        self.write_if(&item_key.to_string(), |tx, now| {
            match store::get_value::<V>(tx, &item_key)? {
                Some((current, _)) if current == *expected => {
                    let old_image = images::image(key, &T::from(expected))?;
                    let keys = images::keys_image(&item_key)?;
                    store::remove(tx, &item_key, &keys, &old_image, now)
                }
                current => Ok(Written::refused(current.map_or(0, |(_, size)| size))),
            }
        })
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
