//! The real `transformer` binary on the fake Lambda Runtime API: the committed Firehose fixture
//! answered record by record, its metrics on stdout, and its configuration checked at init.

use alleycat_lambda::fake_runtime::{fixture_event, init_failure, run_bootstrap};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BIN: &str = env!("CARGO_BIN_EXE_transformer");

#[test]
fn fixture_batch_is_answered_record_by_record() -> TestResult {
    let event = fixture_event("firehose.json", &[])?;
    // No variable at all: every setting of the transformer is optional, and it calls no AWS.
    let run = run_bootstrap(BIN, &[], &event)?;
    eprintln!("transformer startup: {:?}", run.startup);

    let request: Value = serde_json::from_slice(&event)?;
    let response = run.response_json()?;
    let records = request["records"].as_array().ok_or("fixture has records")?;
    let answers = response["records"]
        .as_array()
        .ok_or("response has records")?;
    let ids = |list: &[Value]| {
        list.iter()
            .map(|r| r["recordId"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(answers),
        ids(records),
        "every recordId answered, in order"
    );
    let results: Vec<_> = answers.iter().map(|a| a["result"].as_str()).collect();
    assert_eq!(
        results,
        [
            Some("Ok"),
            Some("Ok"),
            Some("ProcessingFailed"), // not JSON
            Some("ProcessingFailed"), // classId 7
            Some("Ok"),
            Some("ProcessingFailed"), // cadence 300
        ]
    );
    assert_eq!(
        String::from_utf8(STANDARD.decode(answers[0]["data"].as_str().ok_or("data")?)?)?,
        "{\"uuid\":\"4f1c9a7e-8b1d-4c3e-9a51-0d6e2f7b8c01\",\"event\":\"update\",\
         \"deviceTimestamp\":1620051628707,\"second\":13,\"raceId\":5400172,\"name\":\"Adell\",\
         \"racerId\":8,\"classId\":3,\"cadence\":74.2,\"resistance\":74.0,\"output\":151.788,\
         \"arrivedAt\":1620051628707}\n"
    );
    for (answer, record) in answers.iter().zip(records) {
        if answer["result"] == "Ok" {
            let line = STANDARD.decode(answer["data"].as_str().ok_or("data")?)?;
            let line: Value = serde_json::from_slice(&line)?;
            assert!(line["output"].is_f64(), "{line}");
        } else {
            assert_eq!(answer["data"], record["data"], "original data kept");
        }
    }

    let emf = run.emf()?;
    assert_eq!(emf["Function"], "transformer");
    for (counter, count) in [("RecordsIn", 6), ("Ok", 3), ("ProcessingFailed", 3)] {
        assert_eq!(emf[counter], count, "{counter}");
    }
    Ok(())
}

/// The transformer has no required variable; an invalid optional one must still stop it at init,
/// named, rather than let it validate seconds against the wrong race length.
#[test]
fn invalid_race_seconds_fails_init_naming_it() -> TestResult {
    let output = init_failure(BIN, &[("RACE_SECONDS", "0")])?;
    assert!(output.contains("RACE_SECONDS"), "{output}");
    Ok(())
}
