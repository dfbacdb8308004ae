//! Object storage with ETag conditions: the delivery bucket and the history bucket.

use std::future::Future;
use std::time::Duration;

use crate::error::PortError;

/// An object's bytes and the ETag a conditional put can check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// The object's bytes.
    pub bytes: Vec<u8>,
    /// Its ETag, as the store reports it (quotes included on S3).
    pub etag: String,
}

/// The precondition of a put.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutCondition {
    /// Only if the object's ETag is still this one (`If-Match`).
    IfMatch(String),
    /// Only if no object exists (`If-None-Match: *`).
    IfNoneMatch,
}

/// One bucket.
pub trait ObjectStore: Sync {
    /// Reads an object; `None` if it does not exist.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Object>, PortError>> + Send;

    /// Writes an object, failing with [`PortError::Conflict`] if `condition` does not hold.
    /// Returns the new ETag.
    fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        condition: Option<PutCondition>,
    ) -> impl Future<Output = Result<String, PortError>> + Send;

    /// Whether an object exists (a `HEAD`): so the API never signs a URL to nothing.
    fn exists(&self, key: &str) -> impl Future<Output = Result<bool, PortError>> + Send;

    /// A URL that reads the object without credentials until `ttl` passes.
    fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<String, PortError>> + Send;
}
