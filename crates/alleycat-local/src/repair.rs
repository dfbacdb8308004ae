//! A stopped stack's data directory, opened for a repair (`alleycat-admin rebuild --data-dir`):
//! its table and buckets through the same types the stack uses, under the stack's own `LOCK`.
//!
//! The lock is what makes a repair safe here: the embedded stack takes the same lock for its
//! whole life, so a repair cannot start while the stack runs, and the stack cannot start (it
//! says the directory is in use) until the repair is done. Nothing else in the directory is
//! touched: the stream, checkpoints and notifications stay as the stack left them.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use alleycat_ports::{ListObjects, Listed, PortError};

use crate::db::Db;
use crate::error::LocalError;
use crate::objects::LocalBucket;
use crate::stack::{DELIVERY_BUCKET, HISTORY_BUCKET, lock};
use crate::table::LocalTable;

/// The stores of a data directory, held under its lock until dropped.
#[derive(Debug)]
pub struct DataDir {
    /// The table (`table.db`).
    pub table: LocalTable,
    /// The delivery bucket (Firehose's `raw/` objects).
    pub delivery: LocalBucket,
    /// The history bucket (class histories), shared: a history merge store takes it by value.
    pub history: Arc<LocalBucket>,
    _lock: File,
}

impl DataDir {
    /// Opens the stack's data directory at `dir`, taking its lock; fails if a stack (or another
    /// repair) holds it, or if `dir` holds no table.
    pub fn open(dir: &Path) -> Result<Self, LocalError> {
        let table_db = dir.join("table.db");
        if !table_db.exists() {
            return Err(LocalError::Config(format!(
                "{} is not an alleycat-local data directory (no table.db)",
                dir.display()
            )));
        }
        let lock = lock(dir)?;
        let table = LocalTable::open(Arc::new(Db::open(&table_db)?))?;
        // Presigned URLs are never made here: the base is only a placeholder.
        let bucket =
            |name: &str| LocalBucket::open(name, dir.join("buckets").join(name), "http://-");
        Ok(Self {
            table,
            delivery: bucket(DELIVERY_BUCKET)?,
            history: Arc::new(bucket(HISTORY_BUCKET)?),
            _lock: lock,
        })
    }
}

impl ListObjects for LocalBucket {
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, PortError> {
        let mut listed = Vec::new();
        for key in self.keys(prefix) {
            let Some(path) = self.path(&key) else {
                continue;
            };
            match std::fs::metadata(&path) {
                Ok(metadata) => listed.push(Listed {
                    key,
                    size: metadata.len(),
                }),
                // Gone since the walk: as on S3, a listing is a snapshot.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(PortError::Transient(format!("{}: {error}", path.display())));
                }
            }
        }
        Ok(listed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_directory_is_opened_once_and_only_if_it_is_one() {
        let dir = tempfile::tempdir().unwrap();
        assert!(DataDir::open(dir.path()).is_err(), "no table.db");
        Db::open(&dir.path().join("table.db")).unwrap();
        let open = DataDir::open(dir.path()).unwrap();
        let again = DataDir::open(dir.path()).unwrap_err();
        assert!(again.to_string().contains("in use"), "{again}");
        drop(open);
        DataDir::open(dir.path()).unwrap();
    }

    #[tokio::test]
    async fn the_delivery_bucket_lists_with_sizes() {
        let dir = tempfile::tempdir().unwrap();
        Db::open(&dir.path().join("table.db")).unwrap();
        let data = DataDir::open(dir.path()).unwrap();
        data.delivery.write("raw/2026/a.gz", b"abc", None).unwrap();
        data.delivery.write("other/b", b"x", None).unwrap();
        let listed = data.delivery.list("raw/").await.unwrap();
        assert_eq!(
            listed,
            [Listed {
                key: "raw/2026/a.gz".into(),
                size: 3
            }]
        );
    }
}
