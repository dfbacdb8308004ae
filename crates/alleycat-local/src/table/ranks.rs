//! The rank ports ([`alleycat_ports::ranks`]) on the embedded table: rows and their class's
//! rank counts item changed in one SQLite transaction (DynamoDB's `TransactWriteItems`), each
//! with its change, pages from the `(pk, best)` index, and a place from the counts item plus one
//! count bounded to the racer's bucket.

use std::collections::{BTreeMap, HashMap};

use alleycat_domain::LeaderboardEntry;
use alleycat_domain::leaderboard::{bucket_counts, bucket_range, place_from_counts, rank_bucket};
use alleycat_ports::PortError;
use alleycat_ports::keys::{self, attr};
use alleycat_ports::ranks::{
    LeaderboardPage, PageBuilder, RacerRank, RankedRecords, Ranks, RowWrite, apply_deltas,
    write_deltas,
};
use alleycat_ports::schema::{ItemKey, LeaderboardItem};
use rusqlite::{Connection, Transaction, params};
use serde_dynamo::{AttributeValue, Item};

use super::store::{self, Row, get_value, get_versioned, json_column, to_json};
use super::{LocalTable, Written, images};
use crate::meter::DynamoDbWrite;

/// A class's rank counts: rows per bucket (the item's `b<bucket>` attributes).
type Counts = BTreeMap<u32, i64>;

/// The key of a class's counts item.
fn counts_key(class_id: u8) -> ItemKey {
    ItemKey::new(keys::class_pk(class_id), keys::COUNTS_SK)
}

/// The key of a racer's row in a class.
fn row_key(class_id: u8, racer_id: u32) -> ItemKey {
    ItemKey::new(keys::class_pk(class_id), keys::racer_sk(racer_id))
}

/// The counts item as DynamoDB holds it: the change's image. Its bucket attributes are named
/// by their bucket (`b<bucket>`, [`keys::count_attr`]), which is why it is not a schema struct:
/// the DynamoDB adapter `ADD`s to those attributes by name.
fn counts_image(class_id: u8, counts: &Counts, version: u64, updated_at: u64) -> Item {
    let key = counts_key(class_id);
    let mut attributes = HashMap::from([
        (keys::PK.to_owned(), AttributeValue::S(key.pk)),
        (keys::SK.to_owned(), AttributeValue::S(key.sk)),
        (
            attr::VERSION.to_owned(),
            AttributeValue::N(version.to_string()),
        ),
        (
            attr::UPDATED_AT.to_owned(),
            AttributeValue::N(updated_at.to_string()),
        ),
    ]);
    for (bucket, count) in counts {
        attributes.insert(
            keys::count_attr(*bucket),
            AttributeValue::N(count.to_string()),
        );
    }
    attributes.into()
}

/// The stored counts of a class: the value, its version, its last write and its size.
type StoredCounts = (Counts, u64, u64, u64);

/// Writes the counts item of `class_id` over `old` (with its change).
fn put_counts(
    tx: &Transaction<'_>,
    class_id: u8,
    counts: &Counts,
    old: Option<&StoredCounts>,
    now: u64,
) -> rusqlite::Result<Written> {
    let key = counts_key(class_id);
    let version = old.map_or(0, |(_, v, _, _)| *v) + 1;
    let row = Row {
        keys: keys_of(&key),
        key,
        gsi1: None,
        best: None,
        versioned: Some((version, now)),
        data: to_json(counts)?,
        image: counts_image(class_id, counts, version, now),
    };
    let old_image =
        old.map(|(counts, version, at, _)| counts_image(class_id, counts, *version, *at));
    store::put(tx, row, old_image.as_ref(), now)
}

/// The key attributes of an item, as a change carries them.
fn keys_of(key: &ItemKey) -> Item {
    HashMap::from([
        (keys::PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (keys::SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
    .into()
}

/// The counts item of `class_id`, if any.
fn get_counts(conn: &Connection, class_id: u8) -> rusqlite::Result<Option<StoredCounts>> {
    Ok(get_versioned::<Counts>(conn, &counts_key(class_id))?
        .map(|stored| (stored.value, stored.version, stored.updated_at, stored.size)))
}

/// A transaction's writes are billed twice, as `TransactWriteItems` is.
fn transactional(written: &Written) -> impl Iterator<Item = DynamoDbWrite> + '_ {
    written.billed.iter().flat_map(|billed| [*billed, *billed])
}

impl Ranks for LocalTable {
    async fn leaderboard_page(
        &self,
        class_id: u8,
        after: Option<&LeaderboardEntry>,
        limit: usize,
    ) -> Result<LeaderboardPage, PortError> {
        let partition = keys::class_pk(class_id);
        let (page, read) = self.read(&partition, |conn| {
            let mut page = PageBuilder::new(after, limit);
            // Rows tied with the cursor's best may still follow it, so the range includes it.
            let start = page
                .start()
                .map_or(i64::MAX, |b| i64::from(b.ten_thousandths()));
            let mut select = conn.prepare_cached(
                "SELECT data, size FROM items
                 WHERE pk = ?1 AND best IS NOT NULL AND best <= ?2 ORDER BY best DESC",
            )?;
            let mut rows = select.query(params![partition, start])?;
            let mut read = 0u64;
            while let Some(row) = rows.next()? {
                read += row.get::<_, u64>(1)?;
                if page.push(json_column(row, 0)?) {
                    break;
                }
            }
            Ok((page.finish(), read))
        })?;
        self.meter.dynamodb_read(read, false);
        Ok(page)
    }

    async fn rank(&self, class_id: u8, racer_id: u32) -> Result<Option<RacerRank>, PortError> {
        let (pk, sk) = (keys::class_pk(class_id), keys::racer_sk(racer_id));
        let found = self.read(&format!("{pk}/{sk}"), |conn| {
            let Some((entry, size)) =
                get_value::<LeaderboardEntry>(conn, &row_key(class_id, racer_id))?
            else {
                return Ok(None);
            };
            let counts = get_counts(conn, class_id)?;
            let bucket = rank_bucket(entry.best);
            let (_, high) = bucket_range(bucket);
            let (above, above_size): (u64, u64) = conn
                .prepare_cached(
                    "SELECT count(*), coalesce(sum(size), 0) FROM items
                     WHERE pk = ?1 AND best IS NOT NULL AND best > ?2 AND best <= ?3",
                )?
                .query_row(
                    params![pk, entry.best.ten_thousandths(), high.ten_thousandths()],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )?;
            Ok(Some((entry, size, counts, bucket, above, above_size)))
        })?;
        let Some((entry, size, counts, bucket, above, above_size)) = found else {
            self.meter.dynamodb_read(0, false);
            return Ok(None);
        };
        // Three requests, as on DynamoDB: the row, the counts item, the bucket's count.
        self.meter.dynamodb_read(size, false);
        let (counts, _, _, counts_size) = counts.unwrap_or_default();
        self.meter.dynamodb_read(counts_size, false);
        self.meter.dynamodb_read(above_size, false);
        let counts: BTreeMap<u32, u64> = counts
            .into_iter()
            .map(|(b, c)| (b, u64::try_from(c).unwrap_or(0)))
            .collect();
        let (place, of) = place_from_counts(&counts, bucket, above);
        Ok(Some(RacerRank { entry, place, of }))
    }
}

impl RankedRecords for LocalTable {
    async fn records(
        &self,
        class_id: u8,
        racer_ids: &[u32],
    ) -> Result<HashMap<u32, LeaderboardEntry>, PortError> {
        let pk = keys::class_pk(class_id);
        let (rows, size) = self.read(&pk, |conn| {
            let mut rows = HashMap::new();
            let mut size = 0;
            for racer in racer_ids {
                if let Some((row, bytes)) =
                    get_value::<LeaderboardEntry>(conn, &row_key(class_id, *racer))?
                {
                    size += bytes;
                    rows.insert(*racer, row);
                }
            }
            Ok((rows, size))
        })?;
        self.meter.dynamodb_read(size, true);
        Ok(rows)
    }

    async fn write_records(&self, class_id: u8, writes: &[RowWrite]) -> Result<(), PortError> {
        let pk = keys::class_pk(class_id);
        let written = self.write(&format!("{pk} rows"), |tx, now| {
            let mut stored = Vec::with_capacity(writes.len());
            for write in writes {
                let current =
                    get_value::<LeaderboardEntry>(tx, &row_key(class_id, write.entry.racer_id))?;
                if current.as_ref().map(|(row, _)| row) != write.expected.as_ref() {
                    // A cancelled transaction is billed like its writes, as DynamoDB bills it.
                    let refused = Written::refused(current.as_ref().map_or(0, |(_, size)| *size));
                    return Ok(Written {
                        sequence: None,
                        billed: transactional(&refused).collect(),
                    });
                }
                stored.push(current.map(|(row, _)| row));
            }
            let mut done = Written::nothing();
            let mut bill = |written: Written| {
                done.billed.extend(transactional(&written));
                done.sequence = written.sequence.max(done.sequence);
            };
            for (write, old) in writes.iter().zip(&stored) {
                let key = LeaderboardItem::key_of(class_id, &write.entry);
                let row = images::row(&key, &LeaderboardItem::from(&write.entry), &write.entry)?;
                let old_image = old
                    .as_ref()
                    .map(|old| images::image(&key, &LeaderboardItem::from(old)))
                    .transpose()?;
                bill(store::put(tx, row, old_image.as_ref(), now)?);
            }
            let deltas = write_deltas(writes);
            if !deltas.is_empty() {
                let old = get_counts(tx, class_id)?;
                let mut counts = old.as_ref().map(|(c, ..)| c.clone()).unwrap_or_default();
                apply_deltas(&mut counts, deltas);
                bill(put_counts(tx, class_id, &counts, old.as_ref(), now)?);
            }
            Ok(done)
        })?;
        if written || writes.is_empty() {
            Ok(())
        } else {
            Err(PortError::Conflict)
        }
    }

    /// One transaction reads the rows and writes the counts, so no writer can come between.
    async fn recount(&self, class_id: u8) -> Result<(), PortError> {
        let pk = keys::class_pk(class_id);
        self.write(&format!("{pk}/{}", keys::COUNTS_SK), |tx, now| {
            let rows = tx
                .prepare_cached("SELECT data FROM items WHERE pk = ?1 AND best IS NOT NULL")?
                .query_map([&pk], |row| json_column::<LeaderboardEntry>(row, 0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let counts: Counts = bucket_counts(&rows)
                .into_iter()
                .map(|(b, c)| (b, i64::try_from(c).unwrap_or(i64::MAX)))
                .collect();
            let old = get_counts(tx, class_id)?;
            let nonzero = |c: &Counts| {
                c.iter()
                    .filter(|(_, n)| **n != 0)
                    .map(|(b, n)| (*b, *n))
                    .collect::<Counts>()
            };
            if old.as_ref().is_some_and(|(c, ..)| nonzero(c) == counts) {
                // Already right: a recount that changes nothing writes nothing.
                return Ok(Written::nothing());
            }
            put_counts(tx, class_id, &counts, old.as_ref(), now)
        })
        .map(drop)
    }
}
