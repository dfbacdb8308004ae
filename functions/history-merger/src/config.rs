//! What the history merger needs to run, read once at init.

use alleycat_domain::{DEFAULT_TOP_K, RaceClock};
use alleycat_lambda::env::Env;
use alleycat_ports::{HistoryObjects, ObjectStore, RetryPolicy};

use crate::Error;

/// Environment variable of the bucket Firehose delivers to (its `raw/` objects are merged).
pub const DELIVERY_BUCKET: &str = "DELIVERY_BUCKET";
/// Environment variable of the bucket holding `class-<c>.json.gz`.
pub const HISTORY_BUCKET: &str = "HISTORY_BUCKET";
pub use alleycat_lambda::env::TABLE_NAME;
/// Environment variable of K, the racers kept per second of a class history (default 100, 0 = all).
pub const HISTORY_TOP_K: &str = "HISTORY_TOP_K";
/// Environment variable of how many merges run at once (default 32).
pub const MERGE_CONCURRENCY: &str = "MERGE_CONCURRENCY";

/// Default of [`MERGE_CONCURRENCY`]: one object touches up to ~2,000 items; 32 in flight keeps a
/// Lambda busy without tripping a table partition's throttling.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// The history merger's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The delivery bucket; records of other buckets are skipped, since the delivery port reads
    /// this one.
    pub delivery_bucket: String,
    /// The history bucket, for the main's history adapter.
    pub history_bucket: String,
    /// The table, for the main's table adapter.
    pub table_name: String,
    /// K of the class histories (0 = all racers).
    pub top_k: u32,
    /// Validates delivered lines exactly as the rest of the pipeline did.
    pub clock: RaceClock,
    /// Merges in flight at once.
    pub concurrency: usize,
    /// How hard each read and merge retries before the event is failed.
    pub retry: RetryPolicy,
}

impl Config {
    /// Reads the configuration through `lookup`, e.g.
    /// `Config::from_lookup(|name| std::env::var(name).ok())`.
    ///
    /// Required: `DELIVERY_BUCKET`, `HISTORY_BUCKET`, `TABLE_NAME`. Optional: `HISTORY_TOP_K`
    /// (0–10,000, default 100), `MERGE_CONCURRENCY` (1–256, default 32), `RACE_SECONDS` and
    /// `WINDOW_SECONDS` (default 300). Errors name the variable at fault.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let env = Env::new(lookup);
        Ok(Self {
            delivery_bucket: env.required(DELIVERY_BUCKET)?,
            history_bucket: env.required(HISTORY_BUCKET)?,
            table_name: env.required(TABLE_NAME)?,
            top_k: env.number_or(HISTORY_TOP_K, DEFAULT_TOP_K, 0..=10_000)?,
            clock: env.race_clock()?,
            concurrency: env.number_or(MERGE_CONCURRENCY, DEFAULT_CONCURRENCY, 1..=256)?,
            retry: RetryPolicy::default(),
        })
    }

    /// The history bucket as the merge store of class histories, with this configuration's K:
    /// the deltas this function builds and the objects it creates must agree on K.
    pub fn histories<O: ObjectStore>(&self, bucket: O) -> HistoryObjects<O> {
        HistoryObjects::new(bucket, self.top_k)
    }
}
