//! The real `api` binary on the fake Lambda Runtime API, reading a moto table: the committed HTTP
//! API request (`GET /leaderboard?classId=3&limit=10`) answered from seeded rows, `GET /config`
//! built from its environment, and each missing required variable stopping it at init, named.

use alleycat_aws::moto::{moto, table};
use alleycat_domain::{LeaderboardEntry, Output};
use alleycat_lambda::fake_runtime::{
    BootstrapRun, fixture_event, init_fails_naming, run_bootstrap,
};
use alleycat_ports::Finals;
use serde_json::{Value, json};
use tokio::task::block_in_place;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BIN: &str = env!("CARGO_BIN_EXE_api");

const IOT_ENDPOINT: &str = "a1b2c3-ats.iot.us-east-1.amazonaws.com";
const IDENTITY_POOL_ID: &str = "us-east-1:1f0a6a4e-0000-4000-8000-123456789012";

/// The required variables besides `AWS_REGION`, which moto's environment sets (`PLATFORM`
/// defaults to `aws`, where the region and the identity pool are required).
fn config(table: &str) -> [(&'static str, &str); 4] {
    [
        ("TABLE_NAME", table),
        ("HISTORY_BUCKET", "alleycat-history"),
        ("IOT_ENDPOINT", IOT_ENDPOINT),
        ("IDENTITY_POOL_ID", IDENTITY_POOL_ID),
    ]
}

/// Status and JSON body of an HTTP API response, checking the headers every response carries.
fn http_json(run: &BootstrapRun) -> Result<(Value, Value), Box<dyn std::error::Error>> {
    let response = run.response_json()?;
    assert_eq!(response["headers"]["content-type"], "application/json");
    assert_eq!(response["headers"]["access-control-allow-origin"], "*");
    assert_eq!(response["isBase64Encoded"], false);
    let body = serde_json::from_str(response["body"].as_str().ok_or("a text body")?)?;
    Ok((response["statusCode"].clone(), body))
}

/// The one EMF line `serve` writes for every invocation: one request, answered without error.
fn assert_counts_one_good_request(run: &BootstrapRun) -> Result<(), String> {
    let emf = run.emf()?;
    assert_eq!(emf["Function"], "api");
    assert_eq!(
        (&emf["Requests"], &emf["ClientErrors"], &emf["ServerErrors"]),
        (&json!(1), &json!(0), &json!(0))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn fixture_leaderboard_request_is_answered_from_the_table() -> TestResult {
    let table = table().await;
    for (racer_id, name, best) in [(8, "Adell", 151.788), (12, "Bo", 140.25), (40, "Cy", 160.0)] {
        let entry = LeaderboardEntry {
            racer_id,
            name: name.to_owned(),
            best: Output::from_f64(best).ok_or("a valid output")?,
            race_id: 100,
            updated_at: 30_000_000,
        };
        assert!(table.offer_record(3, &entry).await?, "a new row");
    }
    let env = moto().env_with(&config(&table.table));
    let event = fixture_event("http-api.json", &[])?;
    let run = block_in_place(|| run_bootstrap(BIN, &env, &event))?;
    eprintln!("api startup: {:?}", run.startup);

    let (status, body) = http_json(&run)?;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"classId": 3, "entries": [
            {"place": 1, "racerId": 40, "name": "Cy", "best": 160.0, "raceId": 100, "updatedAt": 30_000_000},
            {"place": 2, "racerId": 8, "name": "Adell", "best": 151.788, "raceId": 100, "updatedAt": 30_000_000},
            {"place": 3, "racerId": 12, "name": "Bo", "best": 140.25, "raceId": 100, "updatedAt": 30_000_000}
        ], "next": null})
    );
    assert_counts_one_good_request(&run)?;
    Ok(())
}

/// The same request on `/config`: what the browser is told comes from the function's environment.
#[test]
fn config_request_is_answered_from_the_environment() -> TestResult {
    let env = moto().env_with(&config("alleycat-races"));
    let event = fixture_event("http-api.json", &[("/leaderboard", "/config")])?;
    let run = run_bootstrap(BIN, &env, &event)?;
    eprintln!("api startup: {:?}", run.startup);

    let (status, body) = http_json(&run)?;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({
            "platform": "aws",
            "region": "us-east-1",
            "identityPoolId": IDENTITY_POOL_ID,
            "mqttEndpoint": IOT_ENDPOINT,
            "publishTopic": "alleycat-publish",
            "subscribeTopicPrefix": "alleycat-subscribe/",
            "raceSeconds": 300,
            "windowSeconds": 300,
            "topK": 100
        })
    );
    assert_counts_one_good_request(&run)?;
    Ok(())
}

fn missing(name: &str) -> Result<(), String> {
    init_fails_naming(BIN, &moto().env_with(&config("alleycat-races")), name).map(drop)
}

#[test]
fn missing_table_name_fails_init_naming_it() -> Result<(), String> {
    missing("TABLE_NAME")
}

#[test]
fn missing_history_bucket_fails_init_naming_it() -> Result<(), String> {
    missing("HISTORY_BUCKET")
}

#[test]
fn missing_iot_endpoint_fails_init_naming_it() -> Result<(), String> {
    missing("IOT_ENDPOINT")
}

#[test]
fn missing_identity_pool_id_fails_init_naming_it() -> Result<(), String> {
    missing("IDENTITY_POOL_ID")
}

#[test]
fn missing_aws_region_fails_init_naming_it() -> Result<(), String> {
    missing("AWS_REGION")
}
