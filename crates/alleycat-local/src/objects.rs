//! Buckets as directories: S3's object semantics on the local file system.
//!
//! An object is a file under the bucket's directory, its key the relative path. Writes go to a
//! temporary file that is renamed into place, so a reader (or a crash) never sees half an
//! object. ETags are S3's for single-part uploads: the quoted hex MD5 of the bytes. Conditional
//! puts (`If-Match`, `If-None-Match: *`) check and write under one lock, so two history mergers
//! racing on one object behave exactly as on S3: one wins, the other gets a conflict and
//! re-merges. Presigned URLs point at the stack's HTTP server and carry an expiry and an
//! HMAC-SHA256 signature with a key made at start, which the server checks.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use alleycat_ports::{Object, ObjectStore, PortError, PutCondition};
use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

use crate::error::LocalError;
use crate::meter::Meter;

/// Directory, under a bucket, of writes in progress (never a key: keys cannot start with `.`).
const TMP_DIR: &str = ".tmp";

/// One bucket.
#[derive(Debug)]
pub struct LocalBucket {
    name: String,
    root: PathBuf,
    /// Base of presigned URLs: `http://host:port/objects/<bucket>`.
    url_base: String,
    signing_key: [u8; 32],
    /// Serializes puts, so a condition and its write are one step.
    write: Mutex<()>,
    /// Counts requests as S3 bills them.
    meter: Option<Arc<Meter>>,
}

/// S3's ETag of `bytes` (single-part upload): the quoted hex MD5.
pub fn etag(bytes: &[u8]) -> String {
    format!("\"{}\"", hex::encode(Md5::digest(bytes)))
}

fn now_secs() -> u64 {
    crate::now_ms() / 1000
}

impl LocalBucket {
    /// Opens bucket `name` in directory `root` (created if missing); presigned URLs start with
    /// `http_base` (the stack's HTTP server, e.g. `http://127.0.0.1:8080`).
    pub fn open(name: &str, root: PathBuf, http_base: &str) -> Result<Self, LocalError> {
        let tmp = root.join(TMP_DIR);
        std::fs::create_dir_all(&tmp).map_err(|source| LocalError::Io {
            path: tmp.clone(),
            source,
        })?;
        let mut signing_key = [0u8; 32];
        fastrand::fill(&mut signing_key);
        Ok(Self {
            name: name.to_owned(),
            root,
            url_base: format!("{}/objects/{name}", http_base.trim_end_matches('/')),
            signing_key,
            write: Mutex::new(()),
            meter: None,
        })
    }

    /// Counts every GET and PUT from now on with `meter`.
    #[must_use]
    pub fn metered(mut self, meter: Arc<Meter>) -> Self {
        self.meter = Some(meter);
        self
    }

    /// Bytes stored, every object summed.
    pub fn stored_bytes(&self) -> u64 {
        self.keys("")
            .iter()
            .filter_map(|key| self.path(key))
            .filter_map(|path| std::fs::metadata(path).ok())
            .map(|metadata| metadata.len())
            .sum()
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of `key`; `None` for a key that would leave the bucket or name its internals.
    pub fn path(&self, key: &str) -> Option<PathBuf> {
        // Every segment a plain name: no empty ones (`a//b`, a leading `/`), no `.` or `..`, no
        // hidden names (the bucket's own `.tmp`), no backslashes a file system could split on.
        let plain = key.split('/').all(|segment| {
            !segment.is_empty() && !segment.starts_with('.') && !segment.contains('\\')
        });
        plain.then(|| self.root.join(key))
    }

    fn invalid_key(key: &str) -> PortError {
        PortError::Permanent(format!("invalid object key {key:?}"))
    }

    /// Reads an object synchronously (the HTTP server and tests).
    pub fn read(&self, key: &str) -> Result<Option<Object>, PortError> {
        if let Some(meter) = &self.meter {
            meter.s3_get();
        }
        self.read_unmetered(key)
    }

    fn read_unmetered(&self, key: &str) -> Result<Option<Object>, PortError> {
        let path = self.path(key).ok_or_else(|| Self::invalid_key(key))?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(Object {
                etag: etag(&bytes),
                bytes,
            })),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) if error.kind() == std::io::ErrorKind::IsADirectory => Ok(None),
            Err(error) => Err(PortError::Transient(format!("{}: {error}", path.display()))),
        }
    }

    /// Writes an object synchronously, under `condition`; returns its ETag.
    pub fn write(
        &self,
        key: &str,
        bytes: &[u8],
        condition: Option<&PutCondition>,
    ) -> Result<String, PortError> {
        let path = self.path(key).ok_or_else(|| Self::invalid_key(key))?;
        let io = |path: &Path, error: std::io::Error| {
            PortError::Transient(format!("{}: {error}", path.display()))
        };
        if let Some(meter) = &self.meter {
            meter.s3_put();
        }
        let _guard = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(condition) = condition {
            // S3 checks the condition itself: no GET billed.
            let current = self.read_unmetered(key)?;
            let holds = match (condition, &current) {
                (PutCondition::IfNoneMatch, current) => current.is_none(),
                (PutCondition::IfMatch(expected), Some(object)) => object.etag == *expected,
                (PutCondition::IfMatch(_), None) => false,
            };
            if !holds {
                return Err(PortError::Conflict);
            }
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        let tmp = self
            .root
            .join(TMP_DIR)
            .join(format!("{:016x}", fastrand::u64(..)));
        std::fs::write(&tmp, bytes).map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
        Ok(etag(bytes))
    }

    /// Every key under `prefix`, sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    if entry.file_name() != TMP_DIR {
                        walk(&path, root, out);
                    }
                } else if let Ok(relative) = path.strip_prefix(root) {
                    out.push(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let mut keys = Vec::new();
        walk(&self.root, &self.root, &mut keys);
        keys.retain(|key| key.starts_with(prefix));
        keys.sort();
        keys
    }

    /// The MAC of a link to `key` expiring at `expires`, over bucket, key and expiry.
    fn mac(&self, key: &str, expires: u64) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.signing_key).expect("HMAC takes any key length");
        mac.update(format!("{}\n{key}\n{expires}", self.name).as_bytes());
        mac
    }

    fn signature(&self, key: &str, expires: u64) -> String {
        hex::encode(self.mac(key, expires).finalize().into_bytes())
    }

    /// A URL reading `key` through the HTTP server until `ttl` passes.
    pub fn presign(&self, key: &str, ttl: Duration) -> String {
        let expires = now_secs() + ttl.as_secs();
        format!(
            "{}/{key}?expires={expires}&signature={}",
            self.url_base,
            self.signature(key, expires)
        )
    }

    /// Whether a presigned URL's `expires` and `signature` are this bucket's and still valid.
    /// The signature is checked by the MAC itself (`verify_slice`, in constant time): a
    /// comparison that stops at the first wrong byte would tell a prober how many leading bytes
    /// of a forgery are right.
    pub fn verify(&self, key: &str, expires: u64, signature: &str) -> bool {
        let Ok(signature) = hex::decode(signature) else {
            return false;
        };
        expires >= now_secs() && self.mac(key, expires).verify_slice(&signature).is_ok()
    }
}

impl ObjectStore for LocalBucket {
    async fn get(&self, key: &str) -> Result<Option<Object>, PortError> {
        self.read(key)
    }

    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        _content_type: &str,
        condition: Option<PutCondition>,
    ) -> Result<String, PortError> {
        self.write(key, &bytes, condition.as_ref())
    }

    /// A `HEAD`, metered as S3 bills it: a GET-class request.
    async fn exists(&self, key: &str) -> Result<bool, PortError> {
        if let Some(meter) = &self.meter {
            meter.s3_get();
        }
        let path = self.path(key).ok_or_else(|| Self::invalid_key(key))?;
        Ok(path.is_file())
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<String, PortError> {
        Ok(self.presign(key, ttl))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket() -> (tempfile::TempDir, LocalBucket) {
        let dir = tempfile::tempdir().unwrap();
        let bucket =
            LocalBucket::open("history", dir.path().join("history"), "http://127.0.0.1:1").unwrap();
        (dir, bucket)
    }

    #[test]
    fn etags_are_s3s_quoted_md5() {
        assert_eq!(etag(b""), "\"d41d8cd98f00b204e9800998ecf8427e\"");
    }

    #[test]
    fn conditional_puts_behave_as_on_s3() {
        let (_dir, bucket) = bucket();
        let first = bucket
            .write("class-3.json.gz", b"one", Some(&PutCondition::IfNoneMatch))
            .unwrap();
        assert_eq!(
            bucket.write("class-3.json.gz", b"two", Some(&PutCondition::IfNoneMatch)),
            Err(PortError::Conflict)
        );
        assert_eq!(
            bucket.write(
                "class-3.json.gz",
                b"two",
                Some(&PutCondition::IfMatch("\"stale\"".into()))
            ),
            Err(PortError::Conflict)
        );
        let second = bucket
            .write(
                "class-3.json.gz",
                b"two",
                Some(&PutCondition::IfMatch(first)),
            )
            .unwrap();
        let object = bucket.read("class-3.json.gz").unwrap().unwrap();
        assert_eq!(
            (object.bytes.as_slice(), object.etag),
            (&b"two"[..], second)
        );
    }

    #[test]
    fn keys_nest_and_list_but_never_escape() {
        let (_dir, bucket) = bucket();
        bucket.write("raw/2026/11/22/a.gz", b"a", None).unwrap();
        bucket.write("processing-failed/b", b"b", None).unwrap();
        assert_eq!(bucket.keys("raw/"), ["raw/2026/11/22/a.gz"]);
        assert_eq!(bucket.keys("").len(), 2);
        for key in ["../x", "/etc/passwd", "", ".tmp/x", "a//b", "a/./b"] {
            assert!(bucket.path(key).is_none(), "{key}");
            assert!(bucket.read(key).is_err(), "{key}");
        }
        assert_eq!(bucket.read("missing").unwrap(), None);
    }

    #[test]
    fn presigned_urls_expire_and_name_their_object() {
        let (_dir, bucket) = bucket();
        let url = bucket.presign("class-3.json.gz", Duration::from_secs(60));
        assert!(url.starts_with("http://127.0.0.1:1/objects/history/class-3.json.gz?expires="));
        let query = url.split_once('?').unwrap().1;
        let mut expires = 0;
        let mut signature = "";
        for pair in query.split('&') {
            match pair.split_once('=').unwrap() {
                ("expires", v) => expires = v.parse().unwrap(),
                ("signature", v) => signature = v,
                _ => {}
            }
        }
        assert!(bucket.verify("class-3.json.gz", expires, signature));
        assert!(!bucket.verify("class-4.json.gz", expires, signature));
        assert!(!bucket.verify("class-3.json.gz", expires + 1, signature));
        assert!(!bucket.verify(
            "class-3.json.gz",
            now_secs() - 1,
            &bucket.signature("class-3.json.gz", now_secs() - 1)
        ));
    }
}
