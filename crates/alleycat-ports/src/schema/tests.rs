use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::*;
use crate::keys::attr;

fn out(units: u32) -> Output {
    Output::from_ten_thousandths(units)
}

/// The item at `key` as DynamoDB JSON, the way every store writes it.
fn wire<T: TableItem>(key: &T::Key, item: &T) -> Value {
    let item: serde_dynamo::Item = serde_dynamo::to_item(item.keyed(key)).unwrap();
    serde_json::to_value(item).unwrap()
}

/// Reads an item back from DynamoDB JSON.
fn read<T: TableItem>(wire: Value) -> T {
    let item: serde_dynamo::Item = serde_json::from_value(wire).unwrap();
    serde_dynamo::from_item(item).unwrap()
}

fn race() -> RaceKey {
    RaceKey {
        class_id: 3,
        race_id: 5_400_172,
    }
}

#[test]
fn standings_carry_their_index_keys_and_exact_outputs() {
    let results: Standings = [
        (8, out(3_125_025)),
        (12, out(1_402_500)),
        (31, out(985_000)),
    ]
    .into_iter()
    .collect();
    let item = StandingsItem::new(&race(), results, 2, 1_620_051_628_707);
    let wire = wire(&race(), &item);
    assert_eq!(
        wire,
        json!({
            "pk": {"S": "race#3#5400172"},
            "sk": {"S": "standings"},
            "gsi1pk": {"S": "class#3#races"},
            "gsi1sk": {"N": "5400172"},
            "classId": {"N": "3"},
            "raceId": {"N": "5400172"},
            "results": {"M": {
                "8": {"N": "312.5025"},
                "12": {"N": "140.25"},
                "31": {"N": "98.5"}
            }},
            "updatedAt": {"N": "1620051628707"},
            "version": {"N": "2"}
        })
    );
    assert_eq!(read::<StandingsItem>(wire), item);
}

#[test]
fn bests_and_traces_are_lists_with_null_gaps() {
    let seconds: SecondSeries = [(1, out(u32::MAX)), (3, out(1_517_880)), (4, out(1))]
        .into_iter()
        .collect();
    let bests_key = BestsKey {
        racer_id: 8,
        class_id: 3,
    };
    let bests = BestsItem::new(&bests_key, seconds.clone(), 1, 7);
    let list = json!({"L": [
        {"N": "429496.7295"}, {"NULL": true}, {"N": "151.788"}, {"N": "0.0001"}
    ]});
    let wire_bests = wire(&bests_key, &bests);
    assert_eq!(
        wire_bests,
        json!({
            "pk": {"S": "racer#8"},
            "sk": {"S": "bests#class#3"},
            "classId": {"N": "3"},
            "racerId": {"N": "8"},
            "seconds": list,
            "updatedAt": {"N": "7"},
            "version": {"N": "1"}
        })
    );
    assert_eq!(read::<BestsItem>(wire_bests), bests);

    let trace_key = TraceKey {
        racer_id: 8,
        race: race(),
    };
    let trace = TraceItem::new(&trace_key, seconds, 4, 9);
    let wire_trace = wire(&trace_key, &trace);
    assert_eq!(
        wire_trace,
        json!({
            "pk": {"S": "racer#8"},
            "sk": {"S": "race#3#5400172"},
            "classId": {"N": "3"},
            "raceId": {"N": "5400172"},
            "racerId": {"N": "8"},
            "seconds": list,
            "updatedAt": {"N": "9"},
            "version": {"N": "4"}
        })
    );
    assert_eq!(read::<TraceItem>(wire_trace), trace);
}

#[test]
fn finals_rows_and_claims_keep_their_layout() {
    let result = RacerFinal {
        class_id: 3,
        race_id: 77,
        racer_id: 9,
        name: "nine".to_owned(),
        output: out(1_009),
        finished_at: 1_700_000_000_000,
    };
    let item = RacerFinalItem::from(&result);
    let wire_final = wire(&RacerFinalItem::key_of(&result), &item);
    assert_eq!(
        wire_final,
        json!({
            "pk": {"S": "race#3#77"},
            "sk": {"S": "racer#9"},
            "classId": {"N": "3"},
            "raceId": {"N": "77"},
            "racerId": {"N": "9"},
            "name": {"S": "nine"},
            "output": {"N": "0.1009"},
            "finishedAt": {"N": "1700000000000"}
        })
    );
    assert_eq!(RacerFinal::from(read::<RacerFinalItem>(wire_final)), result);

    let entry = LeaderboardEntry {
        racer_id: 1,
        name: "ann".to_owned(),
        best: out(1_600_000),
        race_id: 30,
        updated_at: 30_000,
    };
    let row = LeaderboardItem::from(&entry);
    assert_eq!(row.best(), Some(entry.best));
    let wire_row = wire(&LeaderboardItem::key_of(3, &entry), &row);
    assert_eq!(
        wire_row,
        json!({
            "pk": {"S": "class#3"},
            "sk": {"S": "racer#1"},
            "racerId": {"N": "1"},
            "name": {"S": "ann"},
            "best": {"N": "160"},
            "raceId": {"N": "30"},
            "updatedAt": {"N": "30000"}
        })
    );
    assert_eq!(
        LeaderboardEntry::from(read::<LeaderboardItem>(wire_row)),
        entry
    );

    let claim = Claim {
        racer_id: 42,
        identity_id: "us-east-1:abc".to_owned(),
        claimed_at: 1_000,
        expires_at: 61_001,
    };
    let wire_claim = wire(&42, &ClaimItem::from(&claim));
    assert_eq!(
        wire_claim,
        json!({
            "pk": {"S": "racer#42"},
            "sk": {"S": "claim"},
            "racerId": {"N": "42"},
            "identityId": {"S": "us-east-1:abc"},
            "claimedAt": {"N": "1000"},
            "expiresAt": {"N": "61001"},
            "ttl": {"N": "62"}
        })
    );
    assert_eq!(Claim::from(read::<ClaimItem>(wire_claim)), claim);
}

#[test]
fn every_attribute_is_a_named_one() {
    let names: BTreeSet<&str> = [
        keys::PK,
        keys::SK,
        keys::GSI1_PK,
        keys::GSI1_SK,
        attr::CLASS_ID,
        attr::RACE_ID,
        attr::RACER_ID,
        attr::RESULTS,
        attr::UPDATED_AT,
        attr::VERSION,
        attr::NAME,
        attr::OUTPUT,
        attr::FINISHED_AT,
        attr::BEST,
        attr::SECONDS,
        attr::IDENTITY_ID,
        attr::CLAIMED_AT,
        attr::EXPIRES_AT,
        attr::TTL,
    ]
    .into_iter()
    .collect();
    let entry = LeaderboardEntry {
        racer_id: 1,
        name: String::new(),
        best: out(1),
        race_id: 1,
        updated_at: 1,
    };
    let claim = Claim {
        racer_id: 1,
        identity_id: String::new(),
        claimed_at: 1,
        expires_at: 1,
    };
    let bests = BestsKey {
        racer_id: 1,
        class_id: 1,
    };
    let trace = TraceKey {
        racer_id: 1,
        race: race(),
    };
    let items = [
        wire(
            &race(),
            &StandingsItem::new(&race(), Standings::new(), 1, 1),
        ),
        wire(&bests, &BestsItem::new(&bests, SecondSeries::new(), 1, 1)),
        wire(&trace, &TraceItem::new(&trace, SecondSeries::new(), 1, 1)),
        wire(
            &LeaderboardItem::key_of(1, &entry),
            &LeaderboardItem::from(&entry),
        ),
        wire(&1, &ClaimItem::from(&claim)),
    ];
    let used: BTreeSet<String> = items
        .iter()
        .flat_map(|item| item.as_object().unwrap().keys().cloned())
        .collect();
    let unnamed: Vec<&String> = used
        .iter()
        .filter(|n| !names.contains(n.as_str()))
        .collect();
    assert!(
        unnamed.is_empty(),
        "attributes without a name in keys: {unnamed:?}"
    );
}

#[test]
fn outputs_are_written_as_their_exact_decimal() {
    // Every output up to 10 units, then a stride through the whole range, and its ends.
    let samples = (0..100_000)
        .chain((0..=u32::MAX).step_by(9_973))
        .chain([u32::MAX - 1, u32::MAX]);
    for units in samples {
        let output = out(units);
        let value: serde_dynamo::AttributeValue = serde_dynamo::to_attribute_value(output).unwrap();
        assert_eq!(
            value,
            serde_dynamo::AttributeValue::N(output.to_string()),
            "{units}"
        );
        let back: Output = serde_dynamo::from_attribute_value(value).unwrap();
        assert_eq!(back, output);
    }
}

#[test]
fn reads_accept_the_forms_a_store_normalises_numbers_to() {
    let wire = json!({
        "pk": {"S": "class#3"},
        "sk": {"S": "racer#1"},
        "racerId": {"N": "1"},
        "name": {"S": "ann"},
        "best": {"N": "1.51788E+2"},
        "raceId": {"N": "30"},
        "updatedAt": {"N": "30000"}
    });
    assert_eq!(read::<LeaderboardItem>(wire).best, out(1_517_880));
}

#[test]
fn a_missing_or_mistyped_attribute_is_an_error() {
    let item = |wire: Value| -> Result<StandingsItem, serde_dynamo::Error> {
        let item: serde_dynamo::Item = serde_json::from_value(wire).unwrap();
        serde_dynamo::from_item(item)
    };
    let good = json!({
        "classId": {"N": "3"},
        "raceId": {"N": "10"},
        "results": {"M": {"8": {"N": "151.788"}}},
        "updatedAt": {"N": "1"},
        "version": {"N": "1"}
    });
    assert!(item(good.clone()).is_ok(), "keys are not needed to read");
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("updatedAt");
    assert!(item(missing).is_err());
    let mut bad_output = good.clone();
    bad_output["results"]["M"]["8"] = json!({"S": "fast"});
    assert!(item(bad_output).is_err());
    let mut negative = good;
    negative["results"]["M"]["8"] = json!({"N": "-1"});
    assert!(item(negative).is_err());
}
