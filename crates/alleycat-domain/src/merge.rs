//! The one algebraic rule every view follows.

/// A view that merges by taking maxima.
///
/// `merge` must be idempotent, commutative and associative: then Kinesis redelivery, Lambda
/// retries, replays and concurrent writers that re-read and re-merge can never corrupt a view,
/// whatever order or multiplicity records arrive in. The property tests check all three laws for
/// every implementation.
pub trait MaxMerge {
    /// Folds `other` into `self`; returns whether `self` changed, so writers can skip a write
    /// that would store what is already stored.
    fn merge(&mut self, other: &Self) -> bool;
}
