//! The holder rule applied to a batch: every record an identity published moves views only if
//! that identity holds its racer (`alleycat_domain::trust`). One table read per batch, of the
//! distinct racers that identities published for; a batch of trusted producers' records reads
//! nothing.

use std::collections::BTreeSet;

use alleycat_domain::{Reading, check_holder};
use alleycat_ports::{Claims, RetryError, RetryPolicy, retry};

use crate::metrics::{CLAIM_LOOKUPS, Metrics};
use crate::rejections::RejectionLog;

/// A validated record of a batch, as the holder rule sees it.
pub trait Held {
    /// The reading.
    fn reading(&self) -> &Reading<'_>;
    /// Where it was, for the rejection log (a sequence number, a record id, a line).
    fn record_id(&self) -> String;
}

impl Held for crate::kinesis::KinesisReading<'_> {
    fn reading(&self) -> &Reading<'_> {
        &self.reading
    }

    fn record_id(&self) -> String {
        self.sequence_number.to_owned()
    }
}

/// The claims could not be read: the records from `first` on (the batch's first record
/// published by an identity) cannot be decided, and must be delivered again.
#[derive(Debug)]
pub struct Undecided<T> {
    /// The first record that needed a claim: the batch must resume from it.
    pub first: T,
    /// Why the claims could not be read.
    pub error: RetryError,
}

/// Keeps the items whose reading passes [`check_holder`], rejecting the others under
/// `not_holder`; counts `ClaimLookups` (table reads) into `metrics`. On a failed read, returns
/// the items before the first one that needed a claim, and that one in [`Undecided`].
pub async fn admit_holders<T: Held, C: Claims>(
    items: Vec<T>,
    claims: &C,
    policy: &RetryPolicy,
    metrics: &mut Metrics,
    rejections: &mut RejectionLog,
) -> (Vec<T>, Option<Undecided<T>>) {
    metrics.add(CLAIM_LOOKUPS, 0);
    let racers: BTreeSet<u32> = items
        .iter()
        .filter(|item| item.reading().identity_id.is_some())
        .map(|item| item.reading().racer_id)
        .collect();
    if racers.is_empty() {
        return (items, None);
    }
    let racers: Vec<u32> = racers.into_iter().collect();
    metrics.incr(CLAIM_LOOKUPS);
    let held = match retry(policy, || claims.claims(&racers)).await {
        Ok((held, _retries)) => held,
        Err(error) => {
            let first = items
                .iter()
                .position(|item| item.reading().identity_id.is_some())
                .unwrap_or(0);
            tracing::error!(error = %error.last, attempts = error.attempts, "claims could not be read");
            let mut items = items;
            let first = items.split_off(first).into_iter().next();
            let undecided = first.map(|first| Undecided { first, error });
            return (items, undecided);
        }
    };
    let admitted = items
        .into_iter()
        .filter(|item| {
            let reading = item.reading();
            match check_holder(reading, held.get(&reading.racer_id)) {
                Ok(()) => true,
                Err(rejection) => {
                    rejections.reject_for(&item.record_id(), &rejection);
                    false
                }
            }
        })
        .collect();
    (admitted, None)
}
