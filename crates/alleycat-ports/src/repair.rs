//! What only a repair does: take back what the functions only ever add.
//!
//! Every view is a max-merge, so the functions never need to lower or delete a document; a
//! rebuild from the archive does (`alleycat-admin rebuild`), to remove a cheater's max. These
//! ports are its only writes besides [`MergeStore::store`] (which already replaces a document
//! under its version) and [`Finals::put_final`] (which already replaces a final), each
//! conditional on what the rebuild read, so a function writing meanwhile makes it re-read rather
//! than lose the function's write.

use std::future::Future;

use alleycat_domain::{LeaderboardEntry, RacerFinal};

use crate::error::PortError;
use crate::table::{Finals, MergeStore};

/// A max-merged document that can be deleted under its version.
pub trait RemoveStore<K: Sync, V>: MergeStore<K, V> {
    /// Deletes the document at `key` if its version is still `expected`; [`PortError::Conflict`]
    /// if it changed (or is already gone).
    fn remove(
        &self,
        key: &K,
        expected: &Self::Version,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Finals and leaderboard rows, lowered or deleted.
pub trait FinalsRepair: Finals {
    /// Writes `entry` as the racer's row of `class_id` whatever it holds, if the stored row is
    /// still `expected` (`None`: no row); [`PortError::Conflict`] otherwise.
    fn replace_record(
        &self,
        class_id: u8,
        entry: &LeaderboardEntry,
        expected: Option<&LeaderboardEntry>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Deletes the racer's row of `class_id` if it is still `expected`;
    /// [`PortError::Conflict`] otherwise.
    fn remove_record(
        &self,
        class_id: u8,
        expected: &LeaderboardEntry,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Deletes a racer's final if it is still `expected`; [`PortError::Conflict`] otherwise.
    fn remove_final(
        &self,
        expected: &RacerFinal,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// An object's key and size, as a listing reports it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Listed {
    /// The key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A bucket's listing: how a rebuild finds the archive (the functions are told about each
/// object by its event instead).
pub trait ListObjects: Sync {
    /// Every object whose key starts with `prefix`, in key order.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<Listed>, PortError>> + Send;
}
