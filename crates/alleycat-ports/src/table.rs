//! The table's access patterns (DESIGN section 4) as ports.

use std::future::Future;

use std::collections::HashMap;

use alleycat_domain::{Claim, LeaderboardEntry, RaceKey, RacerFinal, SecondSeries, Standings};

use crate::error::PortError;

/// A racer's personal-record curve in one class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BestsKey {
    /// The racer.
    pub racer_id: u32,
    /// The class.
    pub class_id: u8,
}

/// A racer's second-by-second output in one race.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceKey {
    /// The racer.
    pub racer_id: u32,
    /// The race (with its class).
    pub race: RaceKey,
}

/// A document that is only ever changed by max-merging into it, under optimistic concurrency.
///
/// `load` returns the value with an opaque version; `store` writes only if the stored version is
/// still the one read (or, for `None`, if nothing is stored yet) and fails with
/// [`PortError::Conflict`] otherwise. [`crate::merge_into`] turns that into a lost-update-free
/// merge.
pub trait MergeStore<K: Sync, V>: Sync {
    /// The version a conditional write checks: an item version number, an object ETag.
    type Version: Clone + Send + Sync;

    /// The value of a key that has never been written.
    fn empty(&self, key: &K) -> V;

    /// Reads the current value and its version, if any.
    fn load(
        &self,
        key: &K,
    ) -> impl Future<Output = Result<Option<(V, Self::Version)>, PortError>> + Send;

    /// Writes `value` if the stored version is still `expected` (`None`: nothing stored).
    fn store(
        &self,
        key: &K,
        value: &V,
        expected: Option<&Self::Version>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Final results and the class leaderboard.
pub trait Finals: Sync {
    /// Stores a racer's final result of a race; writing the same result twice is harmless.
    fn put_final(&self, result: &RacerFinal) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Writes `entry` to the class leaderboard only if it beats the stored row
    /// ([`LeaderboardEntry::beats`]). `Ok(false)` is the normal "no new record".
    fn offer_record(
        &self,
        class_id: u8,
        entry: &LeaderboardEntry,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}

/// A race's standings as stored, with the metadata the API shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredStandings {
    /// The race.
    pub race: RaceKey,
    /// Best output per racer.
    pub standings: Standings,
    /// Last write, epoch milliseconds.
    pub updated_at: u64,
}

/// The read side of the table, for the API.
pub trait Queries: Sync {
    /// The latest `limit` races of a class, newest first.
    fn latest_races(
        &self,
        class_id: u8,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredStandings>, PortError>> + Send;

    /// One race's standings.
    fn standings(
        &self,
        race: RaceKey,
    ) -> impl Future<Output = Result<Option<StoredStandings>, PortError>> + Send;

    /// The class leaderboard, best first, at most `limit` rows.
    fn leaderboard(
        &self,
        class_id: u8,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<LeaderboardEntry>, PortError>> + Send;

    /// The final results of a race.
    fn finals(
        &self,
        race: RaceKey,
    ) -> impl Future<Output = Result<Vec<RacerFinal>, PortError>> + Send;

    /// A racer's bests in a class.
    fn bests(
        &self,
        key: BestsKey,
    ) -> impl Future<Output = Result<Option<SecondSeries>, PortError>> + Send;

    /// A racer's trace of a race.
    fn trace(
        &self,
        key: TraceKey,
    ) -> impl Future<Output = Result<Option<SecondSeries>, PortError>> + Send;
}

/// Who holds which racer ([`Claim`]): read by every consumer that admits MQTT records, written by
/// the API. Writes are conditional on the claim read, like [`MergeStore`]; [`crate::claims`]
/// turns that into "first claim wins".
pub trait Claims: Sync {
    /// The stored claims of `racer_ids` (a racer never claimed, or released, is absent). Callers
    /// pass each id once.
    fn claims(
        &self,
        racer_ids: &[u32],
    ) -> impl Future<Output = Result<HashMap<u32, Claim>, PortError>> + Send;

    /// Writes `claim` if the racer's stored claim is still `expected` (`None`: none stored);
    /// [`PortError::Conflict`] otherwise.
    fn put_claim(
        &self,
        claim: &Claim,
        expected: Option<&Claim>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Deletes the racer's claim if it is still `expected`; [`PortError::Conflict`] otherwise.
    fn delete_claim(&self, expected: &Claim) -> impl Future<Output = Result<(), PortError>> + Send;
}
