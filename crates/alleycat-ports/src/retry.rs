//! Bounded retries with exponential backoff and full jitter, and the optimistic-concurrency merge
//! loop every max-merged document uses.

use std::future::Future;
use std::time::Duration;

use alleycat_domain::MaxMerge;

use crate::error::PortError;
use crate::table::MergeStore;

/// How hard to retry before reporting a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Backoff ceiling of the first retry; it doubles on each retry.
    pub base_delay: Duration,
    /// Largest backoff ceiling.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 8 attempts, 25 ms doubling to 1 s: about 3 s at worst, well inside a Lambda timeout, and
    /// enough to ride out a DynamoDB partition's throttling burst.
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(25),
            max_delay: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// No waiting between attempts: for tests.
    pub fn immediate(max_attempts: u32) -> Self {
        Self {
            max_attempts,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        }
    }

    /// Full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter"): a uniform random
    /// wait up to the exponential ceiling, so writers that collided do not collide again.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        if ceiling.is_zero() {
            return Duration::ZERO;
        }
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }

    pub(crate) async fn wait(&self, retry: u32) {
        let delay = self.backoff(retry);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

/// An operation that still failed after its retries.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{last} (after {attempts} attempts)")]
pub struct RetryError {
    /// Attempts made.
    pub attempts: u32,
    /// The error of the last attempt.
    pub last: PortError,
}

/// Runs `op` until it succeeds, fails permanently, or has used the policy's attempts; only
/// retryable errors ([`PortError::is_retryable`]) are retried. Also returns how many retries it
/// took, for metrics.
pub async fn retry<T, F, Fut>(policy: &RetryPolicy, mut op: F) -> Result<(T, u32), RetryError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, PortError>>,
{
    let max_attempts = policy.max_attempts.max(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op().await {
            Ok(value) => return Ok((value, attempt - 1)),
            Err(error) if error.is_retryable() && attempt < max_attempts => {
                policy.wait(attempt - 1).await;
            }
            Err(last) => {
                return Err(RetryError {
                    attempts: attempt,
                    last,
                });
            }
        }
    }
}

/// What a merge did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MergeOutcome {
    /// Whether the stored value changed (`false`: it already held everything merged).
    pub written: bool,
    /// Conditional writes that lost to a concurrent writer and were re-read and re-merged.
    pub conflicts: u32,
    /// Throttled or transient failures that were retried.
    pub retries: u32,
}

/// Max-merges `delta` into the document at `key` without ever losing a concurrent update: read,
/// merge, write only if unchanged since the read; on a conflict read again and re-merge. Skips the
/// write when the stored document already contains `delta` (replays cost one read).
///
/// Conflicts and retryable failures share the policy's attempt budget; when it runs out, or on a
/// permanent failure, the error says how many attempts were made.
pub async fn merge_into<K, V, S>(
    store: &S,
    key: &K,
    delta: &V,
    policy: &RetryPolicy,
) -> Result<MergeOutcome, RetryError>
where
    K: Sync,
    V: MaxMerge + Clone + Send + Sync,
    S: MergeStore<K, V>,
{
    merge_into_with(store, key, delta, policy, MaxMerge::merge).await
}

/// [`merge_into`] with another merge than [`MaxMerge::merge`] (say, one that caps a race's
/// racers): `merge(stored, delta)` folds `delta` into the stored value and says whether it
/// changed. It runs again on every re-read, so it must be idempotent; whatever it records of
/// the attempt that was finally written is what the caller should keep.
pub async fn merge_into_with<K, V, S, M>(
    store: &S,
    key: &K,
    delta: &V,
    policy: &RetryPolicy,
    mut merge: M,
) -> Result<MergeOutcome, RetryError>
where
    K: Sync,
    V: Clone + Send + Sync,
    S: MergeStore<K, V>,
    M: FnMut(&mut V, &V) -> bool + Send,
{
    let max_attempts = policy.max_attempts.max(1);
    let mut outcome = MergeOutcome::default();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = async {
            let (mut value, version) = match store.load(key).await? {
                Some((value, version)) => (value, Some(version)),
                None => (store.empty(key), None),
            };
            let changed = merge(&mut value, delta);
            if !changed && version.is_some() {
                return Ok(false);
            }
            store.store(key, &value, version.as_ref()).await?;
            Ok(true)
        }
        .await;
        match result {
            Ok(written) => {
                outcome.written = written;
                return Ok(outcome);
            }
            Err(PortError::Conflict) if attempt < max_attempts => {
                // Another writer got there first: re-read after a full-jitter wait that grows
                // with each conflict, so a herd of writers on one document spreads out instead of
                // colliding again (the first wait is short: one conflict is the common case).
                policy.wait(outcome.conflicts).await;
                outcome.conflicts += 1;
            }
            Err(error) if error.is_retryable() && attempt < max_attempts => {
                outcome.retries += 1;
                policy.wait(attempt - 1).await;
            }
            Err(last) => {
                return Err(RetryError {
                    attempts: attempt,
                    last,
                });
            }
        }
    }
}
