//! The embedded database: one SQLite file per store, in WAL mode: one writing connection behind
//! a mutex, and a pool of reading connections.
//!
//! SQLite serializes writers anyway, so one writing connection per file behind a
//! [`std::sync::Mutex`] is the simplest correct choice; every call holds it for one short
//! statement or transaction and never across an `.await`. Readers do not queue behind it: WAL
//! lets any number of connections read the last committed state while a write is under way, so
//! [`Db::read`] takes a connection of its own from a small pool (opened on demand, at most
//! [`IDLE_READERS`] kept). That is what keeps the API answering while the stream, the race
//! aggregator and Firehose write as fast as they can.
//!
//! SQLite calls block, for the length of a statement or a wait for the lock; on the runtime's
//! few worker threads (two on a laptop) a few of them would hold up every request and every
//! MQTT connection. So every call runs through [`blocking`], which hands the worker's other
//! tasks to another thread for its duration.
//!
//! `synchronous = NORMAL` in WAL mode keeps every committed transaction through a crash of the
//! process (the case the stack promises: kill it, restart it, nothing acknowledged is lost);
//! surviving power loss as well would need `FULL`, one fsync per commit.
//!
//! Checkpoints (copying the WAL back into the database file, with an fsync) run on a thread of
//! their own ([`Checkpointer`]), not inside whichever commit crosses SQLite's 1,000-page
//! threshold: that commit would hold the writing connection, and every writer queued behind it,
//! for the length of the copy. Under 30,000 messages a second the stream's WAL crosses it about
//! twice a second.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction};
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::error::LocalError;

/// Reading connections kept open between reads, per file; more are opened while more reads run
/// at once, and closed after.
pub const IDLE_READERS: usize = 4;

/// How often the checkpointer copies the WAL back into the database file. Between checkpoints
/// the WAL grows by what was written meanwhile (at 30,000 messages a second, about 3 MB).
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// Runs `f`, which blocks (on SQLite, a file), off the async worker threads: on a multi-threaded
/// runtime the worker's other tasks move to another thread while `f` runs
/// ([`tokio::task::block_in_place`]); outside a runtime, or on a current-thread one (tests),
/// `f` simply runs. Unlike `spawn_blocking` it needs no `'static` closure, so callers keep
/// borrowing their keys and values.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// One database file.
#[derive(Debug)]
pub struct Db {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Idle reading connections.
    readers: Mutex<Vec<Connection>>,
    /// Held for its thread: dropping the database stops it.
    _checkpointer: Checkpointer,
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
             PRAGMA wal_autocheckpoint = 0;
             CREATE TABLE IF NOT EXISTS checkpoints (
                 consumer TEXT PRIMARY KEY,
                 position TEXT NOT NULL
             ) WITHOUT ROWID;",
        )
        .map_err(fail)?;
        let checkpointer = Checkpointer::start(path)?;
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
            readers: Mutex::default(),
            _checkpointer: checkpointer,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the writing connection (the lock is held for the call only), off the async
    /// workers ([`blocking`]).
    pub fn call<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        blocking(|| {
            let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
    }

    /// Runs `f` on a reading connection of its own, off the async workers: it sees everything
    /// committed before it started, and never waits for a writer. `f` must only read (the
    /// connection is read-only).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        blocking(|| {
            let idle = self
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let conn = match idle {
                Some(conn) => conn,
                None => self.open_reader()?,
            };
            let result = f(&conn);
            let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
            if readers.len() < IDLE_READERS {
                readers.push(conn);
            }
            result
        })
    }

    /// A read-only connection to the file, which the writing connection has set up (WAL).
    fn open_reader(&self) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(conn)
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
        self.read(|conn| {
            conn.query_row(
                "SELECT position FROM checkpoints WHERE consumer = ?1",
                [consumer],
                |row| row.get(0),
            )
            .optional()
        })
    }
}

/// The thread that checkpoints one database file every [`CHECKPOINT_INTERVAL`], on a connection
/// of its own, until the [`Db`] is dropped.
///
/// Its checkpoints are `PASSIVE`: they copy what no reader still needs and never wait for, or
/// block, a reader or the writer. Once a checkpoint has copied the whole WAL, the next write
/// starts it again from the beginning, so the file stays as small as with automatic checkpoints.
#[derive(Debug)]
struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Self, LocalError> {
        let conn = Connection::open(path)
            .and_then(|conn| conn.busy_timeout(Duration::from_secs(5)).map(|()| conn))
            .map_err(|source| LocalError::Db {
                path: path.to_owned(),
                source,
            })?;
        let (stop, stopped) = mpsc::channel::<()>();
        let name = format!("checkpoint {}", path.display());
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                loop {
                    let stopping = match stopped.recv_timeout(CHECKPOINT_INTERVAL) {
                        Err(RecvTimeoutError::Timeout) => false,
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
                    };
                    // `wal_checkpoint` answers a row (busy, frames, checkpointed), which only
                    // a query reads; a failure is retried at the next tick, and the WAL keeps
                    // every committed frame meanwhile.
                    let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    if let Err(error) = result {
                        tracing::warn!(%error, "checkpoint failed; retrying");
                    }
                    if stopping {
                        return;
                    }
                }
            })
            .map_err(|source| LocalError::Io {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    /// Stops the thread after one last checkpoint, so a stopped stack leaves a small WAL.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
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
