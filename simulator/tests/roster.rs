//! The frontend's port of the racer names (`frontend/src/roster.ts`) is checked against
//! `frontend/src/roster.fixture.json` by its own Vitest test; this test checks the same fixture
//! against `simulator::names::racer_name`, so neither side can change without the other noticing.

use serde_json::Value;
use simulator::names::racer_name;

const FIXTURE: &str = include_str!("../../frontend/src/roster.fixture.json");

#[test]
fn racer_names_match_the_frontend_fixture() {
    let entries: Value = serde_json::from_str(FIXTURE).expect("the fixture is JSON");
    let entries = entries.as_array().expect("the fixture is an array");
    let ids: Vec<u64> = entries
        .iter()
        .map(|entry| entry["id"].as_u64().expect("every entry has a numeric id"))
        .collect();
    assert!(
        (0..=100).all(|id| ids.contains(&id)),
        "the fixture covers racers 0..=100"
    );
    assert!(
        ids.contains(&u64::from(u32::MAX)),
        "the fixture covers a large id"
    );

    let mismatches: Vec<String> = entries
        .iter()
        .filter_map(|entry| {
            let id = u32::try_from(entry["id"].as_u64()?).expect("ids are u32");
            let expected = entry["name"].as_str().expect("every entry has a name");
            let actual = racer_name(id);
            (actual != expected)
                .then(|| format!("racer {id}: fixture {expected:?}, simulator {actual:?}"))
        })
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
