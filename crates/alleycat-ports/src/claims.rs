//! Taking and releasing a racer: [`Claim::take`]'s decision made atomic with conditional writes
//! on the claim read, retried on conflicts like every other write.

use std::future::Future;

use alleycat_domain::{Claim, Taken};

use crate::error::PortError;
use crate::retry::{RetryError, RetryPolicy};
use crate::table::Claims;

/// What a release found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Released {
    /// The caller's claim was deleted.
    Released,
    /// Nobody held the racer (or the claim had lapsed): nothing to do.
    NotHeld,
    /// Another identity holds it; nothing changed.
    HeldByAnother(Taken),
}

/// The racer's stored claim, if any.
pub async fn claim_of<C: Claims>(store: &C, racer_id: u32) -> Result<Option<Claim>, PortError> {
    Ok(store.claims(&[racer_id]).await?.remove(&racer_id))
}

/// Claims `racer_id` for `identity_id` at `now_ms` (first claim wins; the holder renews): the
/// claim written, or [`Taken`] when another identity holds the racer.
pub async fn take_claim<C: Claims>(
    store: &C,
    racer_id: u32,
    identity_id: &str,
    now_ms: u64,
    ttl_seconds: u32,
    policy: &RetryPolicy,
) -> Result<Result<Claim, Taken>, RetryError> {
    attempt(policy, || async move {
        let stored = claim_of(store, racer_id).await?;
        match Claim::take(stored.as_ref(), racer_id, identity_id, now_ms, ttl_seconds) {
            Ok(claim) => {
                store.put_claim(&claim, stored.as_ref()).await?;
                Ok(Ok(claim))
            }
            Err(taken) => Ok(Err(taken)),
        }
    })
    .await
}

/// Releases `racer_id` if `identity_id` holds it.
pub async fn release_claim<C: Claims>(
    store: &C,
    racer_id: u32,
    identity_id: &str,
    now_ms: u64,
    policy: &RetryPolicy,
) -> Result<Released, RetryError> {
    attempt(policy, || async move {
        match claim_of(store, racer_id).await? {
            Some(held) if held.identity_id == identity_id => {
                store.delete_claim(&held).await?;
                Ok(Released::Released)
            }
            Some(held) if held.is_live_at(now_ms) => Ok(Released::HeldByAnother(Taken {
                racer_id,
                expires_at: held.expires_at,
            })),
            _ => Ok(Released::NotHeld),
        }
    })
    .await
}

/// Runs a read-decide-write step until it is not lost to a concurrent writer, within the policy.
async fn attempt<T, F, Fut>(policy: &RetryPolicy, mut step: F) -> Result<T, RetryError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, PortError>>,
{
    let max_attempts = policy.max_attempts.max(1);
    let (mut attempts, mut conflicts) = (0, 0);
    loop {
        attempts += 1;
        match step().await {
            Ok(value) => return Ok(value),
            Err(PortError::Conflict) if attempts < max_attempts => {
                policy.wait(conflicts).await;
                conflicts += 1;
            }
            Err(error) if error.is_retryable() && attempts < max_attempts => {
                policy.wait(attempts - 1).await;
            }
            Err(last) => return Err(RetryError { attempts, last }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryTable;

    fn policy() -> RetryPolicy {
        RetryPolicy::immediate(4)
    }

    #[tokio::test]
    async fn first_claim_wins_and_only_the_holder_releases() -> Result<(), RetryError> {
        let table = MemoryTable::new();
        let alice = take_claim(&table, 42, "alice", 1_000, 60, &policy()).await?;
        assert_eq!(alice.as_ref().map(|c| c.expires_at), Ok(61_000));
        let mallory = take_claim(&table, 42, "mallory", 2_000, 60, &policy()).await?;
        assert_eq!(mallory.unwrap_err().racer_id, 42);
        assert!(matches!(
            release_claim(&table, 42, "mallory", 3_000, &policy()).await?,
            Released::HeldByAnother(_)
        ));
        assert_eq!(
            release_claim(&table, 42, "alice", 3_000, &policy()).await?,
            Released::Released
        );
        assert_eq!(
            release_claim(&table, 42, "alice", 3_000, &policy()).await?,
            Released::NotHeld
        );
        let mallory = take_claim(&table, 42, "mallory", 4_000, 60, &policy()).await?;
        assert_eq!(mallory.map(|c| c.identity_id), Ok("mallory".to_owned()));
        Ok(())
    }

    #[tokio::test]
    async fn a_lost_race_to_claim_is_decided_again_on_a_fresh_read() -> Result<(), RetryError> {
        let table = MemoryTable::new();
        // The first put loses (as if another identity wrote between read and write).
        table.faults.fail("put_claim", PortError::Conflict, 1);
        let claim = take_claim(&table, 7, "alice", 1_000, 60, &policy()).await?;
        assert!(claim.is_ok());
        assert_eq!(table.faults.calls("put_claim"), 2);
        Ok(())
    }
}
