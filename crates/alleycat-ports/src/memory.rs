//! In-memory implementations of every port, for handler tests: same semantics as the real stores
//! (versions, conditions, "only if greater"), plus fault injection.
//!
//! Each fake is a cheap handle (`Clone` shares the state), so a test can hand one to a handler and
//! inspect it afterwards.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use alleycat_domain::{Claim, LeaderboardEntry, RaceKey, RacerFinal, SecondSeries, Standings};

use crate::error::PortError;
use crate::objects::{Object, ObjectStore, PutCondition};
use crate::realtime::Publisher;
use crate::table::{BestsKey, Claims, Finals, MergeStore, Queries, StoredStandings, TraceKey};

mod ranks;
mod repair;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Scripted failures: the next calls of an operation fail with the given errors, in order.
///
/// Operation names are the trait method names (`load`, `store`, `put_final`, `offer_record`,
/// `get`, `put`, `publish`, …); `store` failures can be scoped to one kind of document with
/// `store:standings`, `store:bests` or `store:trace`.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    queued: Arc<Mutex<HashMap<String, VecDeque<PortError>>>>,
    calls: Arc<Mutex<HashMap<String, u64>>>,
}

impl Faults {
    /// Makes the next `times` calls of `operation` fail with `error`.
    pub fn fail(&self, operation: &str, error: PortError, times: usize) {
        lock(&self.queued)
            .entry(operation.to_owned())
            .or_default()
            .extend(std::iter::repeat_n(error, times));
    }

    /// How many times `operation` was called (failed calls included).
    pub fn calls(&self, operation: &str) -> u64 {
        lock(&self.calls).get(operation).copied().unwrap_or(0)
    }

    fn check(&self, operations: &[&str]) -> Result<(), PortError> {
        {
            let mut calls = lock(&self.calls);
            for operation in operations {
                *calls.entry((*operation).to_owned()).or_default() += 1;
            }
        }
        let mut queued = lock(&self.queued);
        for operation in operations {
            if let Some(error) = queued.get_mut(*operation).and_then(VecDeque::pop_front) {
                return Err(error);
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
struct Versioned<T> {
    value: T,
    version: u64,
    updated_at: u64,
}

#[derive(Debug, Default)]
struct Tables {
    standings: BTreeMap<RaceKey, Versioned<Standings>>,
    bests: BTreeMap<BestsKey, Versioned<SecondSeries>>,
    traces: BTreeMap<TraceKey, Versioned<SecondSeries>>,
    finals: BTreeMap<(RaceKey, u32), RacerFinal>,
    leaderboard: BTreeMap<(u8, u32), LeaderboardEntry>,
    claims: BTreeMap<u32, Claim>,
    counts: BTreeMap<u8, ranks::Counts>,
    clock: u64,
}

/// The table in memory.
#[derive(Clone, Debug, Default)]
pub struct MemoryTable {
    tables: Arc<Mutex<Tables>>,
    /// Scripted failures of this table's operations.
    pub faults: Faults,
}

impl MemoryTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every race's standings, for assertions.
    pub fn all_standings(&self) -> BTreeMap<RaceKey, Standings> {
        lock(&self.tables)
            .standings
            .iter()
            .map(|(k, v)| (*k, v.value.clone()))
            .collect()
    }

    /// Every racer's bests, for assertions.
    pub fn all_bests(&self) -> BTreeMap<BestsKey, SecondSeries> {
        lock(&self.tables)
            .bests
            .iter()
            .map(|(k, v)| (*k, v.value.clone()))
            .collect()
    }

    /// Every racer trace, for assertions.
    pub fn all_traces(&self) -> BTreeMap<TraceKey, SecondSeries> {
        lock(&self.tables)
            .traces
            .iter()
            .map(|(k, v)| (*k, v.value.clone()))
            .collect()
    }

    /// Every final result, for assertions.
    pub fn all_finals(&self) -> Vec<RacerFinal> {
        lock(&self.tables).finals.values().cloned().collect()
    }

    /// Every leaderboard row by class and racer, for assertions.
    pub fn all_leaderboard_rows(&self) -> BTreeMap<(u8, u32), LeaderboardEntry> {
        lock(&self.tables).leaderboard.clone()
    }

    /// The version of a race's standings item (0 if absent): how many writes it took.
    pub fn standings_version(&self, race: RaceKey) -> u64 {
        lock(&self.tables)
            .standings
            .get(&race)
            .map_or(0, |v| v.version)
    }
}

/// Versioned maps share one implementation of the conditional write.
fn load_versioned<K: Ord, V: Clone>(map: &BTreeMap<K, Versioned<V>>, key: &K) -> Option<(V, u64)> {
    map.get(key).map(|v| (v.value.clone(), v.version))
}

fn store_versioned<K: Ord + Clone, V: Clone>(
    map: &mut BTreeMap<K, Versioned<V>>,
    key: &K,
    value: &V,
    expected: Option<&u64>,
    now: u64,
) -> Result<(), PortError> {
    let current = map.get(key).map(|v| v.version);
    if current != expected.copied() {
        return Err(PortError::Conflict);
    }
    map.insert(
        key.clone(),
        Versioned {
            value: value.clone(),
            version: current.unwrap_or(0) + 1,
            updated_at: now,
        },
    );
    Ok(())
}

/// Implements [`MergeStore`] on one of the versioned maps of [`Tables`].
macro_rules! memory_merge_store {
    ($key:ty, $value:ty, $field:ident, $kind:literal) => {
        impl MergeStore<$key, $value> for MemoryTable {
            type Version = u64;

            fn empty(&self, _key: &$key) -> $value {
                <$value>::default()
            }

            async fn load(&self, key: &$key) -> Result<Option<($value, u64)>, PortError> {
                self.faults.check(&["load", concat!("load:", $kind)])?;
                Ok(load_versioned(&lock(&self.tables).$field, key))
            }

            async fn store(
                &self,
                key: &$key,
                value: &$value,
                expected: Option<&u64>,
            ) -> Result<(), PortError> {
                self.faults.check(&["store", concat!("store:", $kind)])?;
                let mut tables = lock(&self.tables);
                tables.clock += 1;
                let now = tables.clock;
                store_versioned(&mut tables.$field, key, value, expected, now)
            }
        }
    };
}

memory_merge_store!(RaceKey, Standings, standings, "standings");
memory_merge_store!(BestsKey, SecondSeries, bests, "bests");
memory_merge_store!(TraceKey, SecondSeries, traces, "trace");

impl Finals for MemoryTable {
    async fn put_final(&self, result: &RacerFinal) -> Result<(), PortError> {
        self.faults.check(&["put_final"])?;
        let race = RaceKey {
            class_id: result.class_id,
            race_id: result.race_id,
        };
        lock(&self.tables)
            .finals
            .insert((race, result.racer_id), result.clone());
        Ok(())
    }

    async fn offer_record(
        &self,
        class_id: u8,
        entry: &LeaderboardEntry,
    ) -> Result<bool, PortError> {
        self.faults.check(&["offer_record"])?;
        let mut tables = lock(&self.tables);
        let key = (class_id, entry.racer_id);
        if entry.beats(tables.leaderboard.get(&key)) {
            tables.leaderboard.insert(key, entry.clone());
            Ok(true)
        } else {
            Ok(false)
        }
    }
}

impl Claims for MemoryTable {
    async fn claims(&self, racer_ids: &[u32]) -> Result<HashMap<u32, Claim>, PortError> {
        self.faults.check(&["claims"])?;
        let tables = lock(&self.tables);
        Ok(racer_ids
            .iter()
            .filter_map(|id| tables.claims.get(id).map(|claim| (*id, claim.clone())))
            .collect())
    }

    async fn put_claim(&self, claim: &Claim, expected: Option<&Claim>) -> Result<(), PortError> {
        self.faults.check(&["put_claim"])?;
        let mut tables = lock(&self.tables);
        if tables.claims.get(&claim.racer_id) != expected {
            return Err(PortError::Conflict);
        }
        tables.claims.insert(claim.racer_id, claim.clone());
        Ok(())
    }

    async fn delete_claim(&self, expected: &Claim) -> Result<(), PortError> {
        self.faults.check(&["delete_claim"])?;
        let mut tables = lock(&self.tables);
        if tables.claims.get(&expected.racer_id) != Some(expected) {
            return Err(PortError::Conflict);
        }
        tables.claims.remove(&expected.racer_id);
        Ok(())
    }
}

impl Queries for MemoryTable {
    async fn latest_races(
        &self,
        class_id: u8,
        limit: usize,
    ) -> Result<Vec<StoredStandings>, PortError> {
        self.faults.check(&["latest_races"])?;
        let tables = lock(&self.tables);
        Ok(tables
            .standings
            .iter()
            .rev()
            .filter(|(race, _)| race.class_id == class_id)
            .take(limit)
            .map(|(race, v)| stored(*race, v))
            .collect())
    }

    async fn standings(&self, race: RaceKey) -> Result<Option<StoredStandings>, PortError> {
        self.faults.check(&["standings"])?;
        Ok(lock(&self.tables)
            .standings
            .get(&race)
            .map(|v| stored(race, v)))
    }

    async fn leaderboard(
        &self,
        class_id: u8,
        limit: usize,
    ) -> Result<Vec<LeaderboardEntry>, PortError> {
        self.faults.check(&["leaderboard"])?;
        let mut rows: Vec<LeaderboardEntry> = lock(&self.tables)
            .leaderboard
            .range((class_id, 0)..=(class_id, u32::MAX))
            .map(|(_, row)| row.clone())
            .collect();
        alleycat_domain::leaderboard::rank_leaderboard(&mut rows);
        rows.truncate(limit);
        Ok(rows)
    }

    async fn finals(&self, race: RaceKey) -> Result<Vec<RacerFinal>, PortError> {
        self.faults.check(&["finals"])?;
        Ok(lock(&self.tables)
            .finals
            .range((race, 0)..=(race, u32::MAX))
            .map(|(_, f)| f.clone())
            .collect())
    }

    async fn bests(&self, key: BestsKey) -> Result<Option<SecondSeries>, PortError> {
        self.faults.check(&["bests"])?;
        Ok(lock(&self.tables).bests.get(&key).map(|v| v.value.clone()))
    }

    async fn trace(&self, key: TraceKey) -> Result<Option<SecondSeries>, PortError> {
        self.faults.check(&["trace"])?;
        Ok(lock(&self.tables).traces.get(&key).map(|v| v.value.clone()))
    }
}

fn stored(race: RaceKey, v: &Versioned<Standings>) -> StoredStandings {
    StoredStandings {
        race,
        standings: v.value.clone(),
        updated_at: v.updated_at,
    }
}

#[derive(Debug, Default)]
struct Bucket {
    objects: BTreeMap<String, (Object, String)>,
    next_etag: u64,
}

/// A bucket in memory, with S3's ETag conditions.
#[derive(Clone, Debug, Default)]
pub struct MemoryObjects {
    bucket: Arc<Mutex<Bucket>>,
    /// Scripted failures of this bucket's operations.
    pub faults: Faults,
}

impl MemoryObjects {
    /// An empty bucket.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores an object unconditionally (test setup); returns its ETag.
    pub fn insert(&self, key: &str, bytes: Vec<u8>) -> String {
        let mut bucket = lock(&self.bucket);
        bucket.next_etag += 1;
        let etag = format!("\"{}\"", bucket.next_etag);
        bucket.objects.insert(
            key.to_owned(),
            (
                Object {
                    bytes,
                    etag: etag.clone(),
                },
                "application/octet-stream".to_owned(),
            ),
        );
        etag
    }

    /// An object's bytes and content type, for assertions.
    pub fn object(&self, key: &str) -> Option<(Vec<u8>, String)> {
        lock(&self.bucket)
            .objects
            .get(key)
            .map(|(o, t)| (o.bytes.clone(), t.clone()))
    }

    /// Every key, in order.
    pub fn keys(&self) -> Vec<String> {
        lock(&self.bucket).objects.keys().cloned().collect()
    }
}

impl ObjectStore for MemoryObjects {
    async fn get(&self, key: &str) -> Result<Option<Object>, PortError> {
        self.faults.check(&["get"])?;
        Ok(lock(&self.bucket).objects.get(key).map(|(o, _)| o.clone()))
    }

    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        condition: Option<PutCondition>,
    ) -> Result<String, PortError> {
        self.faults.check(&["put"])?;
        let mut bucket = lock(&self.bucket);
        let current = bucket.objects.get(key).map(|(o, _)| o.etag.as_str());
        let holds = match (&condition, current) {
            (None, _) | (Some(PutCondition::IfNoneMatch), None) => true,
            (Some(PutCondition::IfMatch(etag)), Some(current)) => etag == current,
            _ => false,
        };
        if !holds {
            return Err(PortError::Conflict);
        }
        bucket.next_etag += 1;
        let etag = format!("\"{}\"", bucket.next_etag);
        bucket.objects.insert(
            key.to_owned(),
            (
                Object {
                    bytes,
                    etag: etag.clone(),
                },
                content_type.to_owned(),
            ),
        );
        Ok(etag)
    }

    async fn exists(&self, key: &str) -> Result<bool, PortError> {
        self.faults.check(&["exists"])?;
        Ok(lock(&self.bucket).objects.contains_key(key))
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<String, PortError> {
        self.faults.check(&["presign_get"])?;
        Ok(format!("memory://{key}?expires-in={}", ttl.as_secs()))
    }
}

/// A published message: topic and payload.
pub type Sent = (String, Vec<u8>);

/// A publisher that records what it was asked to publish.
#[derive(Clone, Debug, Default)]
pub struct MemoryPublisher {
    sent: Arc<Mutex<Vec<Sent>>>,
    /// Scripted failures of `publish`.
    pub faults: Faults,
}

impl MemoryPublisher {
    /// A publisher with nothing sent.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every (topic, payload) published, in order.
    pub fn sent(&self) -> Vec<Sent> {
        lock(&self.sent).clone()
    }
}

impl Publisher for MemoryPublisher {
    async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), PortError> {
        self.faults.check(&["publish"])?;
        lock(&self.sent).push((topic.to_owned(), payload));
        Ok(())
    }
}
