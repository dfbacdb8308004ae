//! The read side of the embedded table ([`Queries`]), for the API: a class's latest races by
//! the stand-in for [`keys::GSI1`], its leaderboard by the one for [`keys::BY_BEST`], a race's
//! finals by key prefix, and single items. Eventually consistent reads, billed as such.

use alleycat_domain::leaderboard::rank_leaderboard;
use alleycat_domain::{LeaderboardEntry, Output, RaceKey, RacerFinal, SecondSeries, Standings};
use alleycat_ports::keys;
use alleycat_ports::schema::{BestsItem, ItemKey, StandingsItem, TableItem, TraceItem};
use alleycat_ports::{BestsKey, PortError, Queries, StoredStandings, TraceKey};
use rusqlite::params;

use super::LocalTable;
use super::store::{get_value, get_versioned, json_column};

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
        .map(|rows| self.bill_query(rows))
    }

    async fn standings(&self, race: RaceKey) -> Result<Option<StoredStandings>, PortError> {
        let key = StandingsItem::key(&race);
        let stored = self.read(&key.to_string(), |conn| {
            get_versioned::<Standings>(conn, &key)
        })?;
        self.bill_read(stored.as_ref().map_or(0, |stored| stored.size), false);
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
            .map(|rows| self.bill_query(rows))?;
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
            .map(|rows| self.bill_query(rows))?;
        // Sort keys order racer ids as strings (`racer#10` < `racer#9`); callers get id order.
        finals.sort_unstable_by_key(|f| f.racer_id);
        Ok(finals)
    }

    async fn bests(&self, key: BestsKey) -> Result<Option<SecondSeries>, PortError> {
        self.read_series(&BestsItem::key(&key))
    }

    async fn trace(&self, key: TraceKey) -> Result<Option<SecondSeries>, PortError> {
        self.read_series(&TraceItem::key(&key))
    }
}

impl LocalTable {
    /// A racer's bests or trace.
    fn read_series(&self, key: &ItemKey) -> Result<Option<SecondSeries>, PortError> {
        let stored = self.read(&key.to_string(), |conn| get_value(conn, key))?;
        self.bill_read(stored.as_ref().map_or(0, |(_, size)| *size), false);
        Ok(stored.map(|(series, _)| series))
    }
}
