//! The real `race-aggregator` binary on the fake Lambda Runtime API, writing to a moto table: the
//! committed Kinesis fixtures (plain and tumbling window) become race standings, the counts reach
//! stdout as EMF, and a missing table name stops it at init.

use alleycat_aws::moto::{moto, table};
use alleycat_domain::{Output, RaceKey, Standings};
use alleycat_lambda::fake_runtime::{fixture_event, init_fails_naming, run_bootstrap};
use alleycat_ports::Queries;
use serde_json::json;
use tokio::task::block_in_place;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BIN: &str = env!("CARGO_BIN_EXE_race-aggregator");

fn race(class_id: u8, race_id: u64) -> RaceKey {
    RaceKey { class_id, race_id }
}

fn standings(results: &[(u32, f64)]) -> Standings {
    results
        .iter()
        .map(|&(racer, output)| (racer, Output::from_f64(output).expect("a valid output")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn fixture_batch_is_stored_as_race_standings() -> TestResult {
    let table = table().await;
    let env = moto().env_with(&[("TABLE_NAME", &table.table)]);
    let event = fixture_event("kinesis.json", &[])?;
    let run = block_in_place(|| run_bootstrap(BIN, &env, &event))?;
    eprintln!("race-aggregator startup: {:?}", run.startup);

    assert_eq!(run.response_json()?, json!({"batchItemFailures": []}));
    for (race, expected) in [
        (race(3, 5_400_172), standings(&[(8, 151.788), (12, 162.0)])),
        (race(5, 5_400_172), standings(&[(21, 156.6)])),
        (race(5, 5_400_173), standings(&[(22, 99.75)])),
    ] {
        let stored = table.standings(race).await?;
        assert_eq!(stored.map(|s| s.standings), Some(expected), "{race:?}");
    }
    assert_eq!(
        table.standings(race(7, 5_400_172)).await?,
        None,
        "classId 7 rejected"
    );

    let emf = run.emf()?;
    assert_eq!(emf["Function"], "race-aggregator");
    for (counter, count) in [
        ("RecordsIn", 8),
        ("Rejected", 1),
        ("Writes", 3),
        ("FailedRaces", 0),
    ] {
        assert_eq!(emf[counter], count, "{counter}");
    }
    Ok(())
}

/// The window fixture's final invocation: state and batch written, an empty state returned.
#[tokio::test(flavor = "multi_thread")]
async fn window_fixture_final_invoke_flushes_its_state_to_the_table() -> TestResult {
    let table = table().await;
    let env = moto().env_with(&[("TABLE_NAME", &table.table)]);
    let event = fixture_event("kinesis-window.json", &[])?;
    let run = block_in_place(|| run_bootstrap(BIN, &env, &event))?;
    eprintln!("race-aggregator startup: {:?}", run.startup);

    assert_eq!(
        run.response_json()?,
        json!({"state": {}, "batchItemFailures": []})
    );
    for (race, expected) in [
        (race(3, 5_400_172), standings(&[(8, 159.85), (12, 143.75)])),
        (race(5, 5_400_172), standings(&[(21, 144.9)])),
        (race(5, 5_400_173), standings(&[(22, 99.75)])),
    ] {
        let stored = table.standings(race).await?;
        assert_eq!(stored.map(|s| s.standings), Some(expected), "{race:?}");
    }
    assert_eq!(run.emf()?["Function"], "race-aggregator");
    Ok(())
}

#[test]
fn missing_table_name_fails_init_naming_it() -> Result<(), String> {
    let env = moto().env_with(&[("TABLE_NAME", "alleycat-races")]);
    init_fails_naming(BIN, &env, "TABLE_NAME").map(drop)
}
