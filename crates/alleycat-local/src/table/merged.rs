//! The max-merged documents (standings, bests, traces) on the embedded table: loads with their
//! version, writes and deletes conditional on it ([`MergeStore`], [`RemoveStore`]), once for every
//! kind the schema names ([`MergeKey`]).

use alleycat_ports::schema::{MergeKey, Merged, MergedItem, TableItem};
use alleycat_ports::{MergeStore, PortError, RemoveStore};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::images::{image, keys_image, row};
use super::store::{get_versioned, put, remove};
use super::{LocalTable, Written};

impl<K: MergeKey + Sync> MergeStore<K, Merged<K>> for LocalTable
where
    Merged<K>: Serialize + DeserializeOwned + Default + Clone + Sync,
{
    type Version = u64;

    fn empty(&self, _key: &K) -> Merged<K> {
        Merged::<K>::default()
    }

    async fn load(&self, key: &K) -> Result<Option<(Merged<K>, u64)>, PortError> {
        let item_key = K::Item::key(key);
        let stored = self.read(&item_key.to_string(), |conn| {
            get_versioned::<Merged<K>>(conn, &item_key)
        })?;
        self.bill_read(stored.as_ref().map_or(0, |stored| stored.size), true);
        Ok(stored.map(|stored| (stored.value, stored.version)))
    }

    /// Writes the value if its version is still `expected` (`None`: if it does not exist),
    /// bumping the version; [`PortError::Conflict`] otherwise.
    async fn store(
        &self,
        key: &K,
        value: &Merged<K>,
        expected: Option<&u64>,
    ) -> Result<(), PortError> {
        let item_key = K::Item::key(key);
        self.write_if(&item_key.to_string(), |tx, now| {
            let current = get_versioned::<Merged<K>>(tx, &item_key)?;
            if current.as_ref().map(|stored| stored.version) != expected.copied() {
                return Ok(Written::refused(current.map_or(0, |stored| stored.size)));
            }
            let old_image = current
                .map(|old| {
                    image(
                        key,
                        &K::Item::new(key, old.value, old.version, old.updated_at),
                    )
                })
                .transpose()?;
            let version = expected.map_or(1, |version| version + 1);
            let item = K::Item::new(key, value.clone(), version, now);
            let mut row = row(key, &item, value)?;
            row.versioned = Some((item.version(), item.updated_at()));
            put(tx, row, old_image.as_ref(), now)
        })
    }
}

impl<K: MergeKey + Sync> RemoveStore<K, Merged<K>> for LocalTable
where
    Merged<K>: Serialize + DeserializeOwned + Default + Clone + Sync,
{
    async fn remove(&self, key: &K, expected: &u64) -> Result<(), PortError> {
        let item_key = K::Item::key(key);
        self.write_if(&item_key.to_string(), |tx, now| {
            match get_versioned::<Merged<K>>(tx, &item_key)? {
                Some(old) if old.version == *expected => {
                    let old_image = image(
                        key,
                        &K::Item::new(key, old.value, old.version, old.updated_at),
                    )?;
                    remove(tx, &item_key, &keys_image(&item_key)?, &old_image, now)
                }
                current => Ok(Written::refused(current.map_or(0, |stored| stored.size))),
            }
        })
    }
}
