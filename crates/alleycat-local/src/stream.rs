//! The durable local stream: Kinesis's data model on the embedded database.
//!
//! A stream has a fixed number of shards; a record goes to the shard whose slice of the 128-bit
//! hash key space holds the MD5 of its partition key, as on Kinesis, so one racer's records stay
//! in order on one shard. Each shard numbers its records with increasing sequence numbers. An
//! [`LocalStream::append`] is one transaction: when it returns, the records are on disk and
//! survive a crash of the process (they are "acknowledged"). Consumers keep their own
//! checkpoints ([`crate::db`]) and read on from them, so a restart resumes every consumer where it
//! stopped.
//!
//! The same type carries the stack's other durable queue, the bucket notifications the
//! history-merger consumes (one shard).

use std::sync::{Arc, Mutex, PoisonError};

use md5::{Digest, Md5};
use rusqlite::{OptionalExtension, Transaction, params};
use tokio::sync::Notify;

use crate::db::Db;
use crate::error::LocalError;
use crate::meter::Meter;

/// One stored record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamRecord {
    /// Its shard.
    pub shard: u32,
    /// Its sequence number in the shard.
    pub sequence: u64,
    /// The partition key it was put with.
    pub partition_key: String,
    /// Its bytes.
    pub data: Vec<u8>,
    /// When it was appended, epoch milliseconds (`approximateArrivalTimestamp`).
    pub arrival_ms: u64,
}

/// Where an appended record went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The shard.
    pub shard: u32,
    /// The sequence number.
    pub sequence: u64,
}

/// A stream on the embedded database.
#[derive(Debug)]
pub struct LocalStream {
    db: Arc<Db>,
    name: String,
    shards: u32,
    /// Next sequence number of each shard.
    next: Mutex<Vec<u64>>,
    appended: Arc<Notify>,
    /// Counts appends as Kinesis PUT payload units (the stream, not the stack's internal queue).
    meter: Option<Arc<Meter>>,
}

/// Kinesis's shard id of shard `index`.
pub fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

/// A sequence number as consumers see it: zero-padded, so that string order is numeric order, as
/// with Kinesis's own.
pub fn sequence_string(sequence: u64) -> String {
    format!("{sequence:020}")
}

/// Reads a sequence number back (from a reported batch item failure, say).
pub fn parse_sequence(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// The shard of `partition_key` among `shards`: the MD5 hash of the key as a 128-bit number,
/// placed in `shards` equal slices of the hash key range (the last slice takes the remainder),
/// as a Kinesis stream with evenly split shards does.
pub fn shard_for(partition_key: &str, shards: u32) -> u32 {
    if shards <= 1 {
        return 0;
    }
    let hash = u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into());
    let slice = u128::MAX / u128::from(shards);
    u32::try_from(hash / slice)
        .unwrap_or(u32::MAX)
        .min(shards - 1)
}

impl LocalStream {
    /// Opens stream `name` with `shards` shards, creating it on first use. A stream keeps the
    /// shard count it was created with: reopening it with another is an error that names both.
    pub fn open(db: Arc<Db>, name: &str, shards: u32) -> Result<Self, LocalError> {
        if shards == 0 {
            return Err(LocalError::Config(format!(
                "stream {name}: needs at least one shard"
            )));
        }
        let stored = db
            .transaction(|tx| {
                tx.execute_batch(
                    "CREATE TABLE IF NOT EXISTS streams (
                         name TEXT PRIMARY KEY,
                         shards INTEGER NOT NULL
                     ) WITHOUT ROWID;
                     CREATE TABLE IF NOT EXISTS stream_records (
                         stream TEXT NOT NULL,
                         shard INTEGER NOT NULL,
                         seq INTEGER NOT NULL,
                         partition_key TEXT NOT NULL,
                         data BLOB NOT NULL,
                         arrival_ms INTEGER NOT NULL,
                         PRIMARY KEY (stream, shard, seq)
                     ) WITHOUT ROWID;",
                )?;
                tx.execute(
                    "INSERT OR IGNORE INTO streams (name, shards) VALUES (?1, ?2)",
                    params![name, shards],
                )?;
                tx.query_row(
                    "SELECT shards FROM streams WHERE name = ?1",
                    [name],
                    |row| row.get::<_, u32>(0),
                )
            })
            .map_err(|e| db.error(e))?;
        if stored != shards {
            return Err(LocalError::Config(format!(
                "stream {name} in {} has {stored} shards, not {shards}: start with --shards \
                 {stored}, or --reset to start over",
                db.path().display()
            )));
        }
        let next = (0..shards)
            .map(|shard| {
                db.call(|conn| {
                    conn.query_row(
                        "SELECT MAX(seq) FROM stream_records WHERE stream = ?1 AND shard = ?2",
                        params![name, shard],
                        |row| row.get::<_, Option<u64>>(0),
                    )
                })
                .map(|max| max.map_or(1, |seq| seq + 1))
                .map_err(|e| db.error(e))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            db,
            name: name.to_owned(),
            shards,
            next: Mutex::new(next),
            appended: Arc::new(Notify::new()),
            meter: None,
        })
    }

    /// Counts every record appended from now on with `meter`, as Kinesis bills a `PutRecords`
    /// entry.
    #[must_use]
    pub fn metered(mut self, meter: Arc<Meter>) -> Self {
        self.meter = Some(meter);
        self
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its shard count.
    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// The database it lives in (for transactions that append and checkpoint together).
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// Appends `records` (partition key, data) in one transaction, each to its key's shard, and
    /// wakes the consumers. On `Ok` every record is durable.
    pub fn append<K: AsRef<str>, D: AsRef<[u8]>>(
        &self,
        records: &[(K, D)],
        arrival_ms: u64,
    ) -> Result<Vec<Appended>, LocalError> {
        let appended = self
            .db
            .transaction(|tx| self.append_in(tx, records, arrival_ms))
            .map_err(|e| self.db.error(e))?;
        self.appended.notify_waiters();
        Ok(appended)
    }

    /// Appends inside a caller's transaction; call [`LocalStream::wake`] once it has committed.
    /// Sequence numbers a rolled-back transaction took are skipped, as Kinesis skips numbers too.
    pub fn append_in<K: AsRef<str>, D: AsRef<[u8]>>(
        &self,
        tx: &Transaction<'_>,
        records: &[(K, D)],
        arrival_ms: u64,
    ) -> rusqlite::Result<Vec<Appended>> {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let mut insert = tx.prepare_cached(
            "INSERT INTO stream_records (stream, shard, seq, partition_key, data, arrival_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut appended = Vec::with_capacity(records.len());
        for (key, data) in records {
            let key = key.as_ref();
            let shard = shard_for(key, self.shards);
            let slot = &mut next[shard as usize];
            let sequence = *slot;
            *slot += 1;
            insert.execute(params![
                self.name,
                shard,
                sequence,
                key,
                data.as_ref(),
                arrival_ms
            ])?;
            if let Some(meter) = &self.meter {
                meter.kinesis_put(data.as_ref().len());
            }
            appended.push(Appended { shard, sequence });
        }
        Ok(appended)
    }

    /// Wakes the consumers after a caller's transaction with [`LocalStream::append_in`]
    /// committed.
    pub fn wake(&self) {
        self.appended.notify_waiters();
    }

    /// Up to `limit` records of `shard` after sequence number `after` (from the start: `None`).
    pub fn read(
        &self,
        shard: u32,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StreamRecord>, LocalError> {
        let after = after.unwrap_or(0);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .read(|conn| {
                let mut select = conn.prepare_cached(
                    "SELECT seq, partition_key, data, arrival_ms FROM stream_records
                     WHERE stream = ?1 AND shard = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
                )?;
                select
                    .query_map(params![self.name, shard, after, limit], |row| {
                        Ok(StreamRecord {
                            shard,
                            sequence: row.get(0)?,
                            partition_key: row.get(1)?,
                            data: row.get(2)?,
                            arrival_ms: row.get(3)?,
                        })
                    })?
                    .collect()
            })
            .map_err(|e| self.db.error(e))
    }

    /// The last sequence number of `shard`, if it holds any record.
    pub fn last_sequence(&self, shard: u32) -> Option<u64> {
        let next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        next.get(shard as usize)
            .and_then(|n| n.checked_sub(1))
            .filter(|n| *n > 0)
    }

    /// Resolves at the next append (register before reading, then await, to miss none).
    pub fn appended(&self) -> Arc<Notify> {
        Arc::clone(&self.appended)
    }

    /// Deletes the records appended before `before_ms` (the stream's retention), returning how
    /// many went. A consumer that lags by more than the retention loses them, as on Kinesis.
    pub fn trim(&self, before_ms: u64) -> Result<usize, LocalError> {
        self.db
            .call(|conn| {
                conn.execute(
                    "DELETE FROM stream_records WHERE stream = ?1 AND arrival_ms < ?2",
                    params![self.name, before_ms],
                )
            })
            .map_err(|e| self.db.error(e))
    }

    /// How many records the stream holds (for the stack's status and tests).
    pub fn count(&self) -> Result<u64, LocalError> {
        self.db
            .read(|conn| {
                conn.query_row(
                    "SELECT COUNT(*) FROM stream_records WHERE stream = ?1",
                    [&self.name],
                    |row| row.get(0),
                )
                .optional()
            })
            .map(Option::unwrap_or_default)
            .map_err(|e| self.db.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(shards: u32) -> (tempfile::TempDir, LocalStream) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(&dir.path().join("stream.db")).unwrap());
        let stream = LocalStream::open(db, "alleycat", shards).unwrap();
        (dir, stream)
    }

    #[test]
    fn one_shard_takes_every_key() {
        assert_eq!(shard_for("8", 1), 0);
        assert_eq!(shard_for("", 1), 0);
    }

    #[test]
    fn keys_spread_over_shards_by_md5_range() {
        // MD5("8") = c9f0f895fb98ab9159f51fd0297e236d: in the upper half of the key space.
        assert_eq!(shard_for("8", 2), 1);
        // MD5("11") = 6512bd43d9caa6e02c990b0a82652dca: in the lower half.
        assert_eq!(shard_for("11", 2), 0);
        let mut counts = [0u32; 4];
        for racer in 0..4000 {
            counts[shard_for(&racer.to_string(), 4) as usize] += 1;
        }
        assert!(counts.iter().all(|&n| n > 800), "{counts:?}");
    }

    #[test]
    fn appends_number_each_shard_and_read_on_from_a_checkpoint() {
        let (_dir, stream) = stream(2);
        let records: Vec<(String, Vec<u8>)> = (0..10)
            .map(|i| (i.to_string(), format!("r{i}").into_bytes()))
            .collect();
        let appended = stream.append(&records, 1_000).unwrap();
        for shard in 0..2 {
            let seqs: Vec<u64> = appended
                .iter()
                .filter(|a| a.shard == shard)
                .map(|a| a.sequence)
                .collect();
            let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
            assert_eq!(seqs, expected);
            let read = stream.read(shard, Some(1), 100).unwrap();
            assert_eq!(read.len(), seqs.len() - 1);
            assert!(read.iter().all(|r| r.sequence > 1 && r.arrival_ms == 1_000));
        }
    }

    #[test]
    fn a_reopened_stream_continues_its_numbering_and_keeps_its_shards() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stream.db");
        {
            let stream = LocalStream::open(Arc::new(Db::open(&path).unwrap()), "s", 1).unwrap();
            stream.append(&[("a", b"1"), ("b", b"2")], 0).unwrap();
        }
        let db = Arc::new(Db::open(&path).unwrap());
        let stream = LocalStream::open(Arc::clone(&db), "s", 1).unwrap();
        assert_eq!(stream.append(&[("c", b"3")], 0).unwrap()[0].sequence, 3);
        let error = LocalStream::open(db, "s", 4).unwrap_err().to_string();
        assert!(error.contains("has 1 shards, not 4"), "{error}");
    }

    #[test]
    fn sequence_strings_sort_numerically() {
        assert!(sequence_string(9) < sequence_string(10));
        assert_eq!(parse_sequence(&sequence_string(42)), Some(42));
    }
}
