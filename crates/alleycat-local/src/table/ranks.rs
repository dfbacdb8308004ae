//! The rank ports ([`alleycat_ports::ranks`]) on the embedded table: rows and their class's
//! rank counts item changed in one SQLite transaction (DynamoDB's `TransactWriteItems`), each
//! with its change, pages from the `(pk, best)` index, and a place from the counts item plus one
//! count bounded to the racer's bucket.

use std::collections::{BTreeMap, HashMap};

use alleycat_cost::units;
use alleycat_domain::LeaderboardEntry;
use alleycat_domain::leaderboard::{bucket_counts, bucket_range, place_from_counts, rank_bucket};
use alleycat_ports::PortError;
use alleycat_ports::keys::{self, attr};
use alleycat_ports::ranks::{
    LeaderboardPage, PageBuilder, RacerRank, RankedRecords, Ranks, RowWrite, write_deltas,
};
use rusqlite::{Connection, Transaction, params};
use serde_dynamo::Item;

use super::{
    Columns, LocalTable, NewItem, get_value, get_versioned, json_column, leaderboard_image, n, put,
    s, to_json,
};

/// A class's rank counts: rows per bucket (the item's `b<bucket>` attributes).
type Counts = BTreeMap<u32, i64>;

/// The counts item as DynamoDB holds it: the change's image.
fn counts_image(class_id: u8, counts: &Counts, version: u64) -> Item {
    let mut attributes = HashMap::from([
        (keys::PK.to_owned(), s(keys::class_pk(class_id))),
        (keys::SK.to_owned(), s(keys::COUNTS_SK)),
        (attr::VERSION.to_owned(), n(version)),
    ]);
    for (bucket, count) in counts {
        attributes.insert(keys::count_attr(*bucket), n(count));
    }
    attributes.into()
}

/// Writes the counts item of `class_id` at `version` over `old` (with its change); returns the
/// change's sequence number.
fn put_counts(
    tx: &Transaction<'_>,
    table: &LocalTable,
    class_id: u8,
    counts: &Counts,
    old: Option<(&Counts, u64)>,
    now: u64,
) -> rusqlite::Result<u64> {
    let (pk, sk) = (keys::class_pk(class_id), keys::COUNTS_SK);
    let version = old.map_or(0, |(_, v)| v) + 1;
    let item = NewItem {
        pk: &pk,
        sk,
        columns: Columns {
            version: Some(version),
            updated_at: Some(now),
            ..Columns::default()
        },
        data: to_json(counts)?,
        image: counts_image(class_id, counts, version),
    };
    let old_image = old.map(|(counts, version)| counts_image(class_id, counts, version));
    put(tx, item, old_image.as_ref(), now, &table.meter)
}

/// The counts item of `class_id` and its version, if any.
fn get_counts(conn: &Connection, class_id: u8) -> rusqlite::Result<Option<(Counts, u64, u64)>> {
    Ok(
        get_versioned::<Counts>(conn, &keys::class_pk(class_id), keys::COUNTS_SK)?
            .map(|stored| (stored.value, stored.version, stored.size)),
    )
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
            let Some((entry, size)) = get_value::<LeaderboardEntry>(conn, &pk, &sk)? else {
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
        let (counts, _, counts_size) = counts.unwrap_or_default();
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
                    get_value::<LeaderboardEntry>(conn, &pk, &keys::racer_sk(*racer))?
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
                    get_value::<LeaderboardEntry>(tx, &pk, &keys::racer_sk(write.entry.racer_id))?;
                if current.as_ref().map(|(row, _)| row) != write.expected.as_ref() {
                    // A cancelled transaction is billed like its writes, as DynamoDB bills it.
                    let size = current.as_ref().map_or(0, |(_, size)| *size);
                    self.meter
                        .dynamodb_write(2 * units::dynamodb_write_units(size));
                    return Ok(None);
                }
                stored.push(current.map(|(row, _)| row));
            }
            let mut sequence = None;
            for (write, old) in writes.iter().zip(&stored) {
                let sk = keys::racer_sk(write.entry.racer_id);
                let item = NewItem {
                    pk: &pk,
                    sk: &sk,
                    columns: Columns {
                        best: Some(write.entry.best),
                        ..Columns::default()
                    },
                    data: to_json(&write.entry)?,
                    image: leaderboard_image(class_id, &write.entry),
                };
                let old_image = old.as_ref().map(|old| leaderboard_image(class_id, old));
                sequence = Some(put(tx, item, old_image.as_ref(), now, &self.meter)?);
            }
            let deltas = write_deltas(writes);
            if !deltas.is_empty() {
                let old = get_counts(tx, class_id)?;
                let mut counts = old.as_ref().map(|(c, _, _)| c.clone()).unwrap_or_default();
                for (bucket, delta) in deltas {
                    *counts.entry(bucket).or_insert(0) += delta;
                }
                let previous = old.as_ref().map(|(c, v, _)| (c, *v));
                sequence = Some(put_counts(tx, self, class_id, &counts, previous, now)?);
            }
            Ok(sequence)
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
            if old.as_ref().is_some_and(|(c, _, _)| nonzero(c) == counts) {
                // Already right: a recount that changes nothing writes nothing.
                return Ok(None);
            }
            let previous = old.as_ref().map(|(c, v, _)| (c, *v));
            put_counts(tx, self, class_id, &counts, previous, now).map(Some)
        })
        .map(drop)
    }
}
