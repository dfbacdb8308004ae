//! The real `leaderboard-writer` binary on the fake Lambda Runtime API, writing to a moto table:
//! the committed Kinesis fixture's finals become race results and class leaderboard rows, the
//! counts reach stdout as EMF, and a missing table name stops it at init.

use alleycat_aws::moto::{moto, table};
use alleycat_domain::{Output, RaceKey};
use alleycat_lambda::fake_runtime::{fixture_event, init_fails_naming, run_bootstrap};
use alleycat_ports::Queries;
use serde_json::json;
use tokio::task::block_in_place;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BIN: &str = env!("CARGO_BIN_EXE_leaderboard-writer");

const RACE_ID: u64 = 5_400_172;

fn output(value: f64) -> Output {
    Output::from_f64(value).expect("a valid output")
}

#[tokio::test(flavor = "multi_thread")]
async fn fixture_finals_are_stored_with_their_leaderboard_rows() -> TestResult {
    let table = table().await;
    let env = moto().env_with(&[("TABLE_NAME", &table.table)]);
    let event = fixture_event("kinesis.json", &[])?;
    let run = block_in_place(|| run_bootstrap(BIN, &env, &event))?;
    eprintln!("leaderboard-writer startup: {:?}", run.startup);

    assert_eq!(run.response_json()?, json!({"batchItemFailures": []}));
    // The fixture's two finals: Bo (class 3) and Chiara (class 5), both in race 5400172.
    for (class_id, racer_id, name, best, finished_at) in [
        (3, 12, "Bo", output(162.0), 1_620_051_915_719),
        (5, 21, "Chiara", output(156.6), 1_620_051_915_738),
    ] {
        let finals = table
            .finals(RaceKey {
                class_id,
                race_id: RACE_ID,
            })
            .await?;
        assert_eq!(
            finals
                .iter()
                .map(|f| (f.racer_id, f.name.as_str(), f.output, f.finished_at))
                .collect::<Vec<_>>(),
            [(racer_id, name, best, finished_at)],
            "finals of class {class_id}"
        );
        let rows = table.leaderboard(class_id, 10).await?;
        assert_eq!(
            rows.iter()
                .map(|r| (r.racer_id, r.name.as_str(), r.best, r.race_id, r.updated_at))
                .collect::<Vec<_>>(),
            [(racer_id, name, best, RACE_ID, finished_at)],
            "leaderboard of class {class_id}"
        );
    }

    let emf = run.emf()?;
    assert_eq!(emf["Function"], "leaderboard-writer");
    for (counter, count) in [
        ("RecordsIn", 8),
        ("Rejected", 1),
        ("NotFinal", 5),
        ("Finals", 2),
        ("NewRecord", 2),
        ("Failed", 0),
    ] {
        assert_eq!(emf[counter], count, "{counter}");
    }
    Ok(())
}

#[test]
fn missing_table_name_fails_init_naming_it() -> Result<(), String> {
    let env = moto().env_with(&[("TABLE_NAME", "alleycat-races")]);
    init_fails_naming(BIN, &env, "TABLE_NAME").map(drop)
}
