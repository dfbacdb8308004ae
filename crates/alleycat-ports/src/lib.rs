//! What Alleycat's handlers need from the outside world, as small traits (ports), with the retry
//! loops every adapter shares and in-memory fakes for tests.
//!
//! Handlers are generic over these traits; `alleycat-aws` implements them on DynamoDB, S3 and
//! IoT Core, the embedded stack on its local stores, and [`memory`] in memory for tests.

pub mod claims;
pub mod error;
pub mod history;
pub mod keys;
pub mod memory;
pub mod objects;
pub mod ranks;
pub mod realtime;
pub mod repair;
pub mod retry;
pub mod schema;
mod shared;
pub mod table;

pub use error::PortError;
pub use history::HistoryObjects;
pub use objects::{Object, ObjectStore, PutCondition};
pub use ranks::{LeaderboardPage, RacerRank, RankedRecords, Ranks, RowWrite, offer_records};
pub use realtime::Publisher;
pub use repair::{FinalsRepair, ListObjects, Listed, RemoveStore};
pub use retry::{MergeOutcome, RetryError, RetryPolicy, merge_into, merge_into_with, retry};
pub use table::{BestsKey, Claims, Finals, MergeStore, Queries, StoredStandings, TraceKey};
