//! The embedded database: one SQLite file per store, in WAL mode, behind a mutex.
//!
//! SQLite serializes writers anyway, so one connection per file behind a [`std::sync::Mutex`] is
//! the simplest correct choice; every call holds it for one short statement or transaction and
//! never across an `.await`. `synchronous = NORMAL` in WAL mode keeps every committed
//! transaction through a crash of the process (the case the stack promises: kill it, restart it,
//! nothing acknowledged is lost); surviving power loss as well would need `FULL`, one fsync per
//! commit.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::error::LocalError;

/// One database file.
#[derive(Debug)]
pub struct Db {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Db {
    /// Opens (creating) the database at `path` and its checkpoints table.
    pub fn open(path: &Path) -> Result<Self, LocalError> {
        let fail = |source| LocalError::Db {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(fail)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS checkpoints (
                 consumer TEXT PRIMARY KEY,
                 position TEXT NOT NULL
             ) WITHOUT ROWID;",
        )
        .map_err(fail)?;
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the connection (the lock is held for the call only).
    pub fn call<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut conn)
    }

    /// Runs `f` in one immediate transaction, committed if it returns `Ok`.
    pub fn transaction<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.call(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
    }

    /// Wraps a database error with this file's path.
    pub fn error(&self, source: rusqlite::Error) -> LocalError {
        LocalError::Db {
            path: self.path.clone(),
            source,
        }
    }

    /// Where `consumer` stopped, if it ever checkpointed.
    pub fn checkpoint(&self, consumer: &str) -> rusqlite::Result<Option<String>> {
        self.call(|conn| {
            conn.query_row(
                "SELECT position FROM checkpoints WHERE consumer = ?1",
                [consumer],
                |row| row.get(0),
            )
            .optional()
        })
    }
}

/// Records, inside `tx`, that `consumer` has processed everything up to `position`: committed
/// together with whatever else `tx` writes (a delivery notification, say), so a crash never
/// leaves one without the other.
pub fn set_checkpoint(
    tx: &Transaction<'_>,
    consumer: &str,
    position: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO checkpoints (consumer, position) VALUES (?1, ?2)
         ON CONFLICT (consumer) DO UPDATE SET position = excluded.position",
        [consumer, position],
    )
    .map(drop)
}
