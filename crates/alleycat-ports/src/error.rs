//! The one error type of every port, classified by what a caller should do about it.

/// Why a port operation failed. The variant decides the retry: conflicts re-read and re-merge,
/// throttling and transient failures back off and retry, permanent failures are reported at once.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// A condition failed: the item or object changed since it was read (optimistic concurrency),
    /// or a conditional write found a better value already stored.
    #[error("condition failed: the stored value changed")]
    Conflict,
    /// The service asked us to slow down (ProvisionedThroughputExceeded, ThrottlingException,
    /// SlowDown, 429).
    #[error("throttled: {0}")]
    Throttled(String),
    /// A failure that may pass: 5xx, timeouts, dropped connections.
    #[error("transient failure: {0}")]
    Transient(String),
    /// A failure that retrying cannot fix: access denied, missing resource, invalid request.
    #[error("{0}")]
    Permanent(String),
    /// The item or object is larger than the store accepts (DynamoDB's 400 KB): permanent, and
    /// no replay of the same records can fix it, so callers drop the write instead of holding up
    /// the stream.
    #[error("too large: {0}")]
    TooLarge(String),
}

impl PortError {
    /// Whether backing off and retrying the same request may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Throttled(_) | Self::Transient(_))
    }
}
