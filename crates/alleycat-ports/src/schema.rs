//! The single table's items: one typed struct per entity, with its keys, defined once.
//!
//! Every store converts these structs with `serde_dynamo`, so the layout on the wire is written
//! here only: the DynamoDB adapter (`alleycat-aws`) writes and reads them through the SDK's
//! attribute values, the embedded table builds its stream images from them, and the publisher
//! reads standings images back into [`StandingsItem`]. The names are those of [`keys`]; the
//! types follow from the fields: integers and [`Output`]s are numbers (`N`, an output as its exact
//! decimal, `312.5025`), strings `S`, [`Standings`] a map (`M`) of racer id to output and a
//! [`SecondSeries`] a list (`L`) of outputs with `NULL` gaps.
//!
//! A struct holds an item's attributes; its key attributes (`pk`, `sk`, and an index's keys) are
//! functions of the struct's [`TableItem::Key`], added when an item is written ([`Keyed`]) and
//! ignored when one is read. Adding a kind of item is one struct and its [`TableItem`] impl.

use alleycat_domain::{
    Claim, LeaderboardEntry, Output, RaceKey, RacerFinal, SecondSeries, Standings,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::keys;
use crate::table::{BestsKey, TraceKey};

/// An item's primary key: what a GetItem or DeleteItem names, and a stream record's `Keys`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ItemKey {
    /// Partition key ([`keys::PK`]).
    pub pk: String,
    /// Sort key ([`keys::SK`]).
    pub sk: String,
}

impl ItemKey {
    /// The key `(pk, sk)`.
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

impl std::fmt::Display for ItemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.pk, self.sk)
    }
}

/// The key of an item in index [`keys::GSI1`] (a class's races by race id).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Gsi1Key {
    /// [`keys::GSI1_PK`].
    pub pk: String,
    /// [`keys::GSI1_SK`]: a number, so that races sort numerically.
    pub sk: u64,
}

/// One kind of item of the table.
pub trait TableItem: Serialize + DeserializeOwned {
    /// What the ports name one item of this kind by (a [`RaceKey`], a [`BestsKey`], a racer id…).
    type Key;

    /// Names the kind in errors.
    const KIND: &'static str;

    /// The primary key of the item at `key`.
    fn key(key: &Self::Key) -> ItemKey;

    /// The item's key in [`keys::GSI1`], if that index lists it.
    fn gsi1(&self) -> Option<Gsi1Key> {
        None
    }

    /// The item's range key in the local index [`keys::BY_BEST`], if that index lists it.
    fn best(&self) -> Option<Output> {
        None
    }

    /// The whole item at `key`, keys included: what a store writes.
    fn keyed(&self, key: &Self::Key) -> Keyed<'_, Self> {
        let gsi1 = self.gsi1();
        Keyed {
            key: Self::key(key),
            gsi1pk: gsi1.as_ref().map(|gsi1| gsi1.pk.clone()),
            gsi1sk: gsi1.map(|gsi1| gsi1.sk),
            item: self,
        }
    }
}

/// An item with its key attributes, as a store writes it and a stream image shows it.
#[derive(Debug, Serialize)]
pub struct Keyed<'a, T> {
    #[serde(flatten)]
    key: ItemKey,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<u64>,
    #[serde(flatten)]
    item: &'a T,
}

impl<T> Keyed<'_, T> {
    /// The item's primary key.
    pub fn key(&self) -> &ItemKey {
        &self.key
    }
}

/// A document only ever changed by max-merging into it, under an optimistic-concurrency
/// `version` ([`crate::MergeStore`]): standings, bests and traces.
pub trait MergedItem: TableItem {
    /// The merged value.
    type Value;

    /// The item holding `value` at `key`, written at `updated_at` (epoch milliseconds) as
    /// `version`.
    fn new(key: &Self::Key, value: Self::Value, version: u64, updated_at: u64) -> Self;

    /// Its version.
    fn version(&self) -> u64;

    /// Its last write, epoch milliseconds.
    fn updated_at(&self) -> u64;

    /// The merged value.
    fn into_value(self) -> Self::Value;
}

/// The port key of a max-merged document, naming its kind of item: what lets a store implement
/// [`crate::MergeStore`] once for every kind (`impl<K: MergeKey> MergeStore<K, Merged<K>>`).
pub trait MergeKey: Sized {
    /// The item a key of this type names.
    type Item: MergedItem<Key = Self>;
}

/// The value merged into the document at a key of type `K`.
pub type Merged<K> = <<K as MergeKey>::Item as MergedItem>::Value;

impl MergeKey for RaceKey {
    type Item = StandingsItem;
}

impl MergeKey for BestsKey {
    type Item = BestsItem;
}

impl MergeKey for TraceKey {
    type Item = TraceItem;
}

/// A race's standings: each racer's best output so far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StandingsItem {
    /// The race's class.
    pub class_id: u8,
    /// The race.
    pub race_id: u64,
    /// Best output per racer.
    pub results: Standings,
    /// Last write, epoch milliseconds.
    pub updated_at: u64,
    /// Optimistic-concurrency version.
    pub version: u64,
}

impl StandingsItem {
    /// The race.
    pub fn race(&self) -> RaceKey {
        RaceKey {
            class_id: self.class_id,
            race_id: self.race_id,
        }
    }
}

impl TableItem for StandingsItem {
    type Key = RaceKey;
    const KIND: &'static str = "standings";

    fn key(race: &RaceKey) -> ItemKey {
        ItemKey::new(keys::race_pk(*race), keys::STANDINGS_SK)
    }

    fn gsi1(&self) -> Option<Gsi1Key> {
        Some(Gsi1Key {
            pk: keys::class_races_gsi1pk(self.class_id),
            sk: self.race_id,
        })
    }
}

impl MergedItem for StandingsItem {
    type Value = Standings;

    fn new(race: &RaceKey, results: Standings, version: u64, updated_at: u64) -> Self {
        Self {
            class_id: race.class_id,
            race_id: race.race_id,
            results,
            updated_at,
            version,
        }
    }

    fn version(&self) -> u64 {
        self.version
    }

    fn updated_at(&self) -> u64 {
        self.updated_at
    }

    fn into_value(self) -> Standings {
        self.results
    }
}

/// A racer's personal-record curve in one class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BestsItem {
    /// The class.
    pub class_id: u8,
    /// The racer.
    pub racer_id: u32,
    /// Best output per second.
    pub seconds: SecondSeries,
    /// Last write, epoch milliseconds.
    pub updated_at: u64,
    /// Optimistic-concurrency version.
    pub version: u64,
}

impl TableItem for BestsItem {
    type Key = BestsKey;
    const KIND: &'static str = "bests";

    fn key(key: &BestsKey) -> ItemKey {
        ItemKey::new(keys::racer_pk(key.racer_id), keys::bests_sk(key.class_id))
    }
}

impl MergedItem for BestsItem {
    type Value = SecondSeries;

    fn new(key: &BestsKey, seconds: SecondSeries, version: u64, updated_at: u64) -> Self {
        Self {
            class_id: key.class_id,
            racer_id: key.racer_id,
            seconds,
            updated_at,
            version,
        }
    }

    fn version(&self) -> u64 {
        self.version
    }

    fn updated_at(&self) -> u64 {
        self.updated_at
    }

    fn into_value(self) -> SecondSeries {
        self.seconds
    }
}

/// A racer's second-by-second output in one race.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceItem {
    /// The race's class.
    pub class_id: u8,
    /// The race.
    pub race_id: u64,
    /// The racer.
    pub racer_id: u32,
    /// Output per second.
    pub seconds: SecondSeries,
    /// Last write, epoch milliseconds.
    pub updated_at: u64,
    /// Optimistic-concurrency version.
    pub version: u64,
}

impl TableItem for TraceItem {
    type Key = TraceKey;
    const KIND: &'static str = "trace";

    fn key(key: &TraceKey) -> ItemKey {
        ItemKey::new(keys::racer_pk(key.racer_id), keys::trace_sk(key.race))
    }
}

impl MergedItem for TraceItem {
    type Value = SecondSeries;

    fn new(key: &TraceKey, seconds: SecondSeries, version: u64, updated_at: u64) -> Self {
        Self {
            class_id: key.race.class_id,
            race_id: key.race.race_id,
            racer_id: key.racer_id,
            seconds,
            updated_at,
            version,
        }
    }

    fn version(&self) -> u64 {
        self.version
    }

    fn updated_at(&self) -> u64 {
        self.updated_at
    }

    fn into_value(self) -> SecondSeries {
        self.seconds
    }
}

/// Names a racer's item under a race (a final) or a class (a leaderboard row).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RacerIn<P> {
    /// The race or class.
    pub parent: P,
    /// The racer.
    pub racer_id: u32,
}

/// A racer's final result of a race ([`RacerFinal`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RacerFinalItem {
    /// The race's class.
    pub class_id: u8,
    /// The race.
    pub race_id: u64,
    /// The racer.
    pub racer_id: u32,
    /// The racer's name as the device sent it.
    pub name: String,
    /// Output of the final second.
    pub output: Output,
    /// Device time of the final second, epoch milliseconds.
    pub finished_at: u64,
}

impl RacerFinalItem {
    /// The key of `result`'s item.
    pub fn key_of(result: &RacerFinal) -> RacerIn<RaceKey> {
        RacerIn {
            parent: RaceKey {
                class_id: result.class_id,
                race_id: result.race_id,
            },
            racer_id: result.racer_id,
        }
    }
}

impl TableItem for RacerFinalItem {
    type Key = RacerIn<RaceKey>;
    const KIND: &'static str = "final";

    fn key(key: &RacerIn<RaceKey>) -> ItemKey {
        ItemKey::new(keys::race_pk(key.parent), keys::racer_sk(key.racer_id))
    }
}

impl From<&RacerFinal> for RacerFinalItem {
    fn from(result: &RacerFinal) -> Self {
        Self {
            class_id: result.class_id,
            race_id: result.race_id,
            racer_id: result.racer_id,
            name: result.name.clone(),
            output: result.output,
            finished_at: result.finished_at,
        }
    }
}

impl From<RacerFinalItem> for RacerFinal {
    fn from(item: RacerFinalItem) -> Self {
        Self {
            class_id: item.class_id,
            race_id: item.race_id,
            racer_id: item.racer_id,
            name: item.name,
            output: item.output,
            finished_at: item.finished_at,
        }
    }
}

/// A racer's row on a class leaderboard ([`LeaderboardEntry`]), listed by [`keys::BY_BEST`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderboardItem {
    /// The racer.
    pub racer_id: u32,
    /// Name sent with the record-setting result.
    pub name: String,
    /// Best final output: the range key of [`keys::BY_BEST`].
    pub best: Output,
    /// The race that set it.
    pub race_id: u64,
    /// Device time of the record-setting final, epoch milliseconds.
    pub updated_at: u64,
}

impl LeaderboardItem {
    /// The key of `entry`'s row in class `class_id`.
    pub fn key_of(class_id: u8, entry: &LeaderboardEntry) -> RacerIn<u8> {
        RacerIn {
            parent: class_id,
            racer_id: entry.racer_id,
        }
    }
}

impl TableItem for LeaderboardItem {
    type Key = RacerIn<u8>;
    const KIND: &'static str = "leaderboard";

    fn key(key: &RacerIn<u8>) -> ItemKey {
        ItemKey::new(keys::class_pk(key.parent), keys::racer_sk(key.racer_id))
    }

    fn best(&self) -> Option<Output> {
        Some(self.best)
    }
}

impl From<&LeaderboardEntry> for LeaderboardItem {
    fn from(entry: &LeaderboardEntry) -> Self {
        Self {
            racer_id: entry.racer_id,
            name: entry.name.clone(),
            best: entry.best,
            race_id: entry.race_id,
            updated_at: entry.updated_at,
        }
    }
}

impl From<LeaderboardItem> for LeaderboardEntry {
    fn from(item: LeaderboardItem) -> Self {
        Self {
            racer_id: item.racer_id,
            name: item.name,
            best: item.best,
            race_id: item.race_id,
            updated_at: item.updated_at,
        }
    }
}

/// Who holds a racer ([`Claim`]); keyed by the racer id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimItem {
    /// The racer held.
    pub racer_id: u32,
    /// Who holds it.
    pub identity_id: String,
    /// When this holder first claimed it, epoch milliseconds.
    pub claimed_at: u64,
    /// When the claim lapses unless renewed, epoch milliseconds.
    pub expires_at: u64,
    /// [`keys::attr::TTL`]: `expiresAt` in epoch seconds, rounded up, so DynamoDB deletes a
    /// lapsed claim in its own time (reads never rely on it).
    pub ttl: u64,
}

impl TableItem for ClaimItem {
    type Key = u32;
    const KIND: &'static str = "claim";

    fn key(racer_id: &u32) -> ItemKey {
        ItemKey::new(keys::racer_pk(*racer_id), keys::CLAIM_SK)
    }
}

impl From<&Claim> for ClaimItem {
    fn from(claim: &Claim) -> Self {
        Self {
            racer_id: claim.racer_id,
            identity_id: claim.identity_id.clone(),
            claimed_at: claim.claimed_at,
            expires_at: claim.expires_at,
            ttl: claim.expires_at.div_ceil(1000),
        }
    }
}

impl From<ClaimItem> for Claim {
    fn from(item: ClaimItem) -> Self {
        Self {
            racer_id: item.racer_id,
            identity_id: item.identity_id,
            claimed_at: item.claimed_at,
            expires_at: item.expires_at,
        }
    }
}

#[cfg(test)]
mod tests;
