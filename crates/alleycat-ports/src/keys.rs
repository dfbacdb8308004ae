//! The single table's key schema: every key, index and attribute name, in one place.
//!
//! The items themselves, and so the type of each attribute, are the structs of
//! [`crate::schema`]; these are the names the stores' conditions and queries refer to. The SAM
//! template mirrors them, so change them together.
//!
//! | item | `pk` | `sk` |
//! |---|---|---|
//! | race standings | `race#<classId>#<raceId>` | `standings` |
//! | racer final | `race#<classId>#<raceId>` | `racer#<racerId>` |
//! | leaderboard row | `class#<classId>` | `racer#<racerId>` |
//! | racer bests | `racer#<racerId>` | `bests#class#<classId>` |
//! | racer trace | `racer#<racerId>` | `race#<classId>#<raceId>` |
//! | racer claim | `racer#<racerId>` | `claim` |
//! | class rank counts | `class#<classId>` | `counts` |
//!
//! Standings also carry `gsi1pk = class#<classId>#races` and `gsi1sk = raceId` (a number, so races
//! sort numerically) for index [`GSI1`] (a class's latest races); leaderboard rows carry `best`,
//! the range key of the local secondary index [`BY_BEST`] (a class's leaderboard, best first).
//! Claims carry [`attr::TTL`], the table's time-to-live attribute: the only items that expire.

use alleycat_domain::RaceKey;

/// Partition key attribute.
pub const PK: &str = "pk";
/// Sort key attribute.
pub const SK: &str = "sk";
/// Global secondary index listing a class's races by race id.
pub const GSI1: &str = "gsi1";
/// Partition key of [`GSI1`].
pub const GSI1_PK: &str = "gsi1pk";
/// Sort key of [`GSI1`]: the race id.
pub const GSI1_SK: &str = "gsi1sk";
/// Local secondary index ranking a class's leaderboard rows by best output.
pub const BY_BEST: &str = "byBest";

/// Sort key of a race's standings item.
pub const STANDINGS_SK: &str = "standings";
/// Sort key of a racer's claim.
pub const CLAIM_SK: &str = "claim";
/// Sort key of a class's rank counts item: one number attribute per bucket of bests
/// ([`count_attr`]) and [`attr::VERSION`]; no `best`, so [`BY_BEST`] never lists it.
pub const COUNTS_SK: &str = "counts";
/// Sort-key prefix of racer finals (under a race) and leaderboard rows (under a class).
pub const RACER_PREFIX: &str = "racer#";

/// Attribute names (camelCase, as the original sample's items); [`crate::schema`]'s tests hold its
/// structs to them.
pub mod attr {
    /// Class id.
    pub const CLASS_ID: &str = "classId";
    /// Race id.
    pub const RACE_ID: &str = "raceId";
    /// Racer id.
    pub const RACER_ID: &str = "racerId";
    /// Standings: racer id → best output.
    pub const RESULTS: &str = "results";
    /// Epoch milliseconds of the last write.
    pub const UPDATED_AT: &str = "updatedAt";
    /// Optimistic-concurrency version of a max-merged item.
    pub const VERSION: &str = "version";
    /// Racer name.
    pub const NAME: &str = "name";
    /// Final output.
    pub const OUTPUT: &str = "output";
    /// Device time of a final.
    pub const FINISHED_AT: &str = "finishedAt";
    /// Leaderboard best output; range key of [`super::BY_BEST`].
    pub const BEST: &str = "best";
    /// Per-second outputs, second 1 first.
    pub const SECONDS: &str = "seconds";
    /// Claim: the holder's identity.
    pub const IDENTITY_ID: &str = "identityId";
    /// Claim: first claim of this holder's tenure, epoch milliseconds.
    pub const CLAIMED_AT: &str = "claimedAt";
    /// Claim: when it lapses unless renewed, epoch milliseconds.
    pub const EXPIRES_AT: &str = "expiresAt";
    /// The table's time-to-live attribute, epoch seconds: a lapsed claim's `expiresAt`, so
    /// DynamoDB deletes lapsed claims in its own time (reads never rely on it).
    pub const TTL: &str = "ttl";
}

/// Partition key of a race's items (standings and finals): the class is part of a race's
/// identity, since every class racing in a window shares its race id.
pub fn race_pk(race: RaceKey) -> String {
    format!("race#{}#{}", race.class_id, race.race_id)
}

/// Sort key of a racer's item under a race (final) or a class (leaderboard row).
pub fn racer_sk(racer_id: u32) -> String {
    format!("{RACER_PREFIX}{racer_id}")
}

/// [`GSI1`] partition of a class's standings items.
pub fn class_races_gsi1pk(class_id: u8) -> String {
    format!("class#{class_id}#races")
}

/// Partition key of a class's leaderboard rows.
pub fn class_pk(class_id: u8) -> String {
    format!("class#{class_id}")
}

/// Partition key of a racer's bests and traces.
pub fn racer_pk(racer_id: u32) -> String {
    format!("racer#{racer_id}")
}

/// Sort key of a racer's bests in a class.
pub fn bests_sk(class_id: u8) -> String {
    format!("bests#class#{class_id}")
}

/// Sort key of a racer's trace of a race.
pub fn trace_sk(race: RaceKey) -> String {
    race_pk(race)
}

/// The rank counts item's attribute of a bucket of bests
/// (`alleycat_domain::leaderboard::rank_bucket`): `b<bucket>`.
pub fn count_attr(bucket: u32) -> String {
    format!("b{bucket}")
}

/// The bucket a rank counts attribute names, if it names one.
pub fn count_bucket(attribute: &str) -> Option<u32> {
    let digits = attribute.strip_prefix('b')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_class_of_a_race() {
        let race = RaceKey {
            class_id: 3,
            race_id: 5_712_345,
        };
        assert_eq!(race_pk(race), "race#3#5712345");
        assert_eq!(trace_sk(race), "race#3#5712345");
        assert_eq!(racer_sk(42), "racer#42");
        assert_eq!(class_pk(3), "class#3");
        assert_eq!(class_races_gsi1pk(3), "class#3#races");
        assert_eq!(racer_pk(42), "racer#42");
        assert_eq!(bests_sk(3), "bests#class#3");
        assert_eq!(count_attr(303), "b303");
        assert_eq!(count_bucket("b303"), Some(303));
        assert_eq!(count_bucket("best"), None);
        assert_eq!(count_bucket("b"), None);
    }
}
