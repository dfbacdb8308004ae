//! The real `publisher` binary on the fake Lambda Runtime API, publishing to moto's IoT data
//! plane: the committed DynamoDB stream fixture is published without failures (moto keeps the
//! messages to itself, so the response and the counts are the evidence), and a missing IoT
//! endpoint stops it at init.

use alleycat_aws::moto::moto;
use alleycat_lambda::fake_runtime::{fixture_event, init_fails_naming, run_bootstrap};
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BIN: &str = env!("CARGO_BIN_EXE_publisher");

/// moto's credentials and region with `IOT_ENDPOINT` pointing at moto, but without
/// `AWS_ENDPOINT_URL`: a publish can only reach moto if the main really uses `IOT_ENDPOINT`.
fn env() -> Vec<(&'static str, &'static str)> {
    let moto = moto();
    moto.env_with(&[("IOT_ENDPOINT", &moto.endpoint)])
        .into_iter()
        .filter(|(name, _)| *name != "AWS_ENDPOINT_URL")
        .collect()
}

#[test]
fn fixture_standings_changes_are_published() -> TestResult {
    let event = fixture_event("dynamodb-stream.json", &[])?;
    let run = run_bootstrap(BIN, &env(), &event)?;
    eprintln!("publisher startup: {:?}", run.startup);

    assert_eq!(run.response_json()?, json!({"batchItemFailures": []}));
    let emf = run.emf()?;
    assert_eq!(emf["Function"], "publisher");
    // The INSERT and the MODIFY of one race's standings go out as one message (the MODIFY's);
    // the leaderboard row and the REMOVE are not for bikes.
    for (counter, count) in [
        ("RecordsIn", 4),
        ("Published", 1),
        ("Coalesced", 1),
        ("Paced", 0),
        ("Ignored", 2),
        ("Malformed", 0),
        ("PublishFailed", 0),
        ("Retries", 0),
    ] {
        assert_eq!(emf[counter], count, "{counter}");
    }
    Ok(())
}

#[test]
fn missing_iot_endpoint_fails_init_naming_it() -> Result<(), String> {
    init_fails_naming(BIN, &env(), "IOT_ENDPOINT").map(drop)
}
