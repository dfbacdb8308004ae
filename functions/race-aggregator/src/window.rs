//! The tumbling window's state: each race's partial standings, carried from one invocation of a
//! window to the next.
//!
//! Lambda carries the state as a map of strings (at most 1 MB per shard), so each race is one
//! entry: key `<classId>#<raceId>` (the class is part of a race's identity), value the race's
//! standings as compact JSON (`{"8":151.788,"12":143.75}`, racer id to best output). Being
//! standings, the state is a max-merge: folding the same record in twice changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use alleycat_domain::{RaceKey, Standings};

/// The state key of a race: `<classId>#<raceId>`.
pub fn state_key(race: RaceKey) -> String {
    format!("{}#{}", race.class_id, race.race_id)
}

/// The race a state key names; `None` for a key this function never wrote.
pub fn parse_state_key(key: &str) -> Option<RaceKey> {
    let (class_id, race_id) = key.split_once('#')?;
    Some(RaceKey {
        class_id: class_id.parse().ok()?,
        race_id: race_id.parse().ok()?,
    })
}

/// The state to return to Lambda for these races.
pub fn encode_state(races: &BTreeMap<RaceKey, Standings>) -> HashMap<String, String> {
    races
        .iter()
        .map(|(race, standings)| {
            let json = serde_json::to_string(standings).expect("standings always serialize");
            (state_key(*race), json)
        })
        .collect()
}

/// The races of a state Lambda handed back, and how many entries could not be read.
///
/// This function only ever writes well-formed entries, so a bad one means the state was tampered
/// with or written by another version; it is logged and dropped rather than failing the
/// invocation, which would stall the shard on every retry.
pub fn decode_state<H: BuildHasher>(
    state: &HashMap<String, String, H>,
) -> (BTreeMap<RaceKey, Standings>, usize) {
    let mut races = BTreeMap::<RaceKey, Standings>::new();
    let mut rejected = 0;
    for (key, value) in state {
        let Some(race) = parse_state_key(key) else {
            rejected += 1;
            tracing::error!(key, "window state entry with an unknown key dropped");
            continue;
        };
        match serde_json::from_str::<Standings>(value) {
            Ok(standings) => {
                alleycat_domain::MaxMerge::merge(races.entry(race).or_default(), &standings);
            }
            Err(error) => {
                rejected += 1;
                tracing::error!(key, %error, "window state entry that is not standings dropped");
            }
        }
    }
    (races, rejected)
}

#[cfg(test)]
mod tests {
    use alleycat_domain::Output;

    use super::*;

    #[test]
    fn state_round_trips_and_bad_entries_are_dropped() {
        let race = RaceKey {
            class_id: 3,
            race_id: 5_400_172,
        };
        let standings: Standings = [(8, Output::from_f64(151.788).unwrap())]
            .into_iter()
            .collect();
        let mut state = encode_state(&BTreeMap::from([(race, standings.clone())]));
        assert_eq!(state["3#5400172"], r#"{"8":151.788}"#);
        state.insert("nonsense".to_owned(), "{}".to_owned());
        state.insert("5#1".to_owned(), "[1,2]".to_owned());
        let (races, rejected) = decode_state(&state);
        assert_eq!(races, BTreeMap::from([(race, standings)]));
        assert_eq!(rejected, 2);
    }
}
