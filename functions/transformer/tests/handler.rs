//! The transformer handler end to end, from the event's JSON to the response's JSON.

use std::collections::HashMap;
use std::error::Error;

use alleycat_domain::{RaceClock, Reading};
use alleycat_lambda::Metrics;
use alleycat_lambda::testing::{Message, bad_messages};
use aws_lambda_events::event::firehose::{KinesisFirehoseEvent, KinesisFirehoseResponse};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use transformer::{
    Config, FUNCTION_NAME, LenientFirehoseEvent, RESULT_OK, RESULT_PROCESSING_FAILED, handle,
};

type TestResult = Result<(), Box<dyn Error>>;

const FIREHOSE: &[u8] = include_bytes!("../../../fixtures/events/firehose.json");

fn run(event: LenientFirehoseEvent) -> (KinesisFirehoseResponse, Metrics) {
    let mut metrics = Metrics::new(FUNCTION_NAME);
    let response = handle(event, &Config::default(), &mut metrics);
    (response, metrics)
}

/// A Firehose event with one record per `data` field value (normally base64 text).
fn event_json(data: &[serde_json::Value]) -> String {
    let records: Vec<_> = data
        .iter()
        .enumerate()
        .map(|(i, data)| {
            json!({
                "recordId": format!("record-{i}"),
                "approximateArrivalTimestamp": 1_620_051_628_707_u64,
                "data": data,
                "kinesisRecordMetadata": {
                    "shardId": "shardId-000000000000",
                    "partitionKey": "8",
                    "approximateArrivalTimestamp": 1_620_051_628_707_u64,
                    "sequenceNumber": format!("4959033827149025660855969253836157109592157598913658{i:04}"),
                    "subsequenceNumber": 0
                }
            })
        })
        .collect();
    json!({
        "invocationId": "6a0f5f4b-2b1d-4e8a-9c3e-51c0f1d2a7b9",
        "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/alleycat",
        "sourceKinesisStreamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/alleycat",
        "region": "us-east-1",
        "records": records
    })
    .to_string()
}

/// Each answer's record id and result, in order.
fn answers(response: &KinesisFirehoseResponse) -> Vec<(&str, &str)> {
    response
        .records
        .iter()
        .map(|r| {
            (
                r.record_id.as_deref().unwrap(),
                r.result.as_deref().unwrap(),
            )
        })
        .collect()
}

fn encoded(data: &[u8]) -> serde_json::Value {
    STANDARD.encode(data).into()
}

/// The line of `message` arriving when [`event_json`] says every record arrives.
fn line_of(message: &[u8]) -> Vec<u8> {
    line_arriving(message, 1_620_051_628_707)
}

/// The line of `message` arriving at `arrival_ms`.
fn line_arriving(message: &[u8], arrival_ms: u64) -> Vec<u8> {
    let mut line = Vec::new();
    let mut reading = Reading::from_json(message, RaceClock::default()).unwrap();
    reading.arrived_at = Some(arrival_ms);
    reading.write_json_line(&mut line);
    line
}

#[test]
fn fixture_batch_answers_every_record_under_its_id() -> TestResult {
    let mut genuine: KinesisFirehoseEvent = serde_json::from_slice(FIREHOSE)?;
    let event: LenientFirehoseEvent = serde_json::from_slice(FIREHOSE)?;
    // The genuine type reads arrival times through floating-point seconds and truncates (the last
    // record's 1620051629462 comes back as …461); the lenient event keeps them exact.
    let raw: serde_json::Value = serde_json::from_slice(FIREHOSE)?;
    for (record, raw) in genuine
        .records
        .iter_mut()
        .zip(raw["records"].as_array().unwrap())
    {
        let exact = raw["approximateArrivalTimestamp"].as_i64().unwrap();
        record.approximate_arrival_timestamp.0 =
            chrono::DateTime::from_timestamp_millis(exact).unwrap();
    }
    assert_eq!(event, LenientFirehoseEvent::from(genuine.clone()));
    let (response, metrics) = run(event);

    assert_eq!(response.records.len(), genuine.records.len());
    for (answer, record) in response.records.iter().zip(&genuine.records) {
        assert_eq!(answer.record_id, record.record_id);
    }
    let results: Vec<_> = response
        .records
        .iter()
        .map(|r| r.result.as_deref().unwrap())
        .collect();
    assert_eq!(
        results,
        [
            "Ok",
            "Ok",
            "ProcessingFailed",
            "ProcessingFailed",
            "Ok",
            "ProcessingFailed"
        ]
    );
    assert_eq!(
        String::from_utf8(response.records[0].data.0.clone())?,
        "{\"uuid\":\"4f1c9a7e-8b1d-4c3e-9a51-0d6e2f7b8c01\",\"event\":\"update\",\
         \"deviceTimestamp\":1620051628707,\"second\":13,\"raceId\":5400172,\"name\":\"Adell\",\
         \"racerId\":8,\"classId\":3,\"cadence\":74.2,\"resistance\":74.0,\"output\":151.788,\
         \"arrivedAt\":1620051628707}\n"
    );
    for (answer, record) in response.records.iter().zip(&genuine.records) {
        if answer.result.as_deref() == Some(RESULT_OK) {
            let arrival = u64::try_from(record.approximate_arrival_timestamp.timestamp_millis())?;
            assert_eq!(answer.data.0, line_arriving(&record.data, arrival));
        } else {
            assert_eq!(answer.data, record.data, "original data kept");
        }
    }

    let bytes_in: usize = genuine.records.iter().map(|r| r.data.len()).sum();
    let bytes_out: usize = response
        .records
        .iter()
        .filter(|r| r.result.as_deref() == Some(RESULT_OK))
        .map(|r| r.data.len())
        .sum();
    assert_eq!(metrics.get("RecordsIn"), 6);
    assert_eq!((metrics.get("Ok"), metrics.get("ProcessingFailed")), (3, 3));
    assert_eq!(metrics.get("BytesIn"), bytes_in as u64);
    assert_eq!(metrics.get("BytesOut"), bytes_out as u64);

    // The response is exactly the shape Firehose reads.
    let json = serde_json::to_value(&response)?;
    assert_eq!(
        json["records"][2],
        json!({
            "recordId": genuine.records[2].record_id,
            "result": "ProcessingFailed",
            "data": STANDARD.encode("not json at all"),
            "metadata": {"partitionKeys": {}}
        })
    );
    Ok(())
}

#[test]
fn every_class_of_bad_input_fails_alone_with_its_original_data() -> TestResult {
    let valid = Message::new(3, 5_400_172, 8).to_json();
    let bad = bad_messages();
    let mut data = vec![encoded(&valid)];
    data.extend(bad.iter().map(|(_, bytes)| encoded(bytes)));
    data.push(encoded(&valid));
    let event: LenientFirehoseEvent = serde_json::from_str(&event_json(&data))?;
    let (response, metrics) = run(event);

    assert_eq!(response.records.len(), bad.len() + 2);
    let first = &response.records[0];
    assert_eq!(
        (first.result.as_deref(), &first.data.0),
        (Some(RESULT_OK), &line_of(&valid))
    );
    for (i, (label, bytes)) in bad.iter().enumerate() {
        let answer = &response.records[i + 1];
        assert_eq!(
            answer.record_id.as_deref(),
            Some(format!("record-{}", i + 1).as_str())
        );
        assert_eq!(
            answer.result.as_deref(),
            Some(RESULT_PROCESSING_FAILED),
            "{label}"
        );
        assert_eq!(&answer.data.0, bytes, "{label}");
    }
    assert_eq!(
        response.records.last().unwrap().result.as_deref(),
        Some(RESULT_OK)
    );
    assert_eq!(metrics.get("ProcessingFailed"), bad.len() as u64);
    Ok(())
}

#[test]
fn a_record_with_broken_base64_is_answered_under_its_id() -> TestResult {
    let valid = Message::new(3, 5_400_172, 8).to_json();
    let json = event_json(&[encoded(&valid), "@@not base64@@".into(), encoded(&valid)]);
    assert!(
        serde_json::from_str::<KinesisFirehoseEvent>(&json).is_err(),
        "the genuine type gives up"
    );
    let event: LenientFirehoseEvent = serde_json::from_str(&json)?;
    assert_eq!((event.len(), event.undecodable.len()), (3, 1));
    let (response, metrics) = run(event);

    let answers = answers(&response);
    assert_eq!(
        answers,
        [
            ("record-0", "Ok"),
            ("record-1", "ProcessingFailed"),
            ("record-2", "Ok")
        ]
    );
    assert_eq!(response.records[1].data.0, b"@@not base64@@");
    assert_eq!(metrics.get("ProcessingFailed"), 1);
    Ok(())
}

#[test]
fn a_broken_envelope_with_good_base64_keeps_the_decoded_data() -> TestResult {
    let valid = Message::new(3, 5_400_172, 8).to_json();
    let mut json: serde_json::Value = serde_json::from_str(&event_json(&[encoded(&valid)]))?;
    json["records"][0]
        .as_object_mut()
        .unwrap()
        .remove("approximateArrivalTimestamp");
    let event: LenientFirehoseEvent = serde_json::from_str(&json.to_string())?;
    let (response, _) = run(event);

    assert_eq!(response.records[0].record_id.as_deref(), Some("record-0"));
    assert_eq!(
        response.records[0].result.as_deref(),
        Some(RESULT_PROCESSING_FAILED)
    );
    assert_eq!(response.records[0].data.0, valid);
    Ok(())
}

#[test]
fn an_empty_batch_gets_an_empty_answer() -> TestResult {
    let event: LenientFirehoseEvent = serde_json::from_str(&event_json(&[]))?;
    let (response, metrics) = run(event);
    assert!(response.records.is_empty());
    assert_eq!(metrics.get("RecordsIn"), 0);
    assert!(serde_json::from_str::<LenientFirehoseEvent>("{\"invocationId\":\"x\"}").is_err());
    Ok(())
}

#[test]
fn config_defaults_and_names_an_invalid_variable() {
    assert_eq!(Config::from_lookup(|_| None).unwrap(), Config::default());
    let vars = HashMap::from([("RACE_SECONDS", "20")]);
    let config = Config::from_lookup(|name| vars.get(name).map(|v| (*v).to_owned())).unwrap();
    assert_eq!(config.clock.race_seconds, 20);
    let error =
        Config::from_lookup(|name| (name == "RACE_SECONDS").then(|| "-1".to_owned())).unwrap_err();
    assert!(error.to_string().contains("RACE_SECONDS"), "{error}");
}

#[test]
fn seconds_beyond_a_short_race_fail_processing() -> TestResult {
    let late = Message::new(3, 5_400_172, 8).second(25).to_json();
    let event: LenientFirehoseEvent = serde_json::from_str(&event_json(&[encoded(&late)]))?;
    let mut metrics = Metrics::new(FUNCTION_NAME);
    let config = Config {
        clock: RaceClock::new(20, 30),
        ..Config::default()
    };
    let response = handle(event, &config, &mut metrics);
    assert_eq!(
        response.records[0].result.as_deref(),
        Some(RESULT_PROCESSING_FAILED)
    );
    Ok(())
}

/// `event_json` of `data`, each record's top-level arrival time (and, where given, its Kinesis
/// metadata's) replaced.
fn event_arriving(
    data: &[serde_json::Value],
    arrivals: &[(serde_json::Value, Option<serde_json::Value>)],
) -> String {
    let mut event: serde_json::Value = serde_json::from_str(&event_json(data)).unwrap();
    for (record, (arrival, nested)) in event["records"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .zip(arrivals)
    {
        record["approximateArrivalTimestamp"] = arrival.clone();
        if let Some(nested) = nested {
            record["kinesisRecordMetadata"]["approximateArrivalTimestamp"] = nested.clone();
        }
    }
    event.to_string()
}

#[test]
fn arrival_times_are_exact_on_the_typed_path_as_on_the_fast_path() -> TestResult {
    // aws_lambda_events reads …29462 through floating-point seconds as …29461.
    let message = Message::new(3, 5_400_172, 8).second(13).to_json();
    let json = event_arriving(
        &[encoded(&message)],
        &[(json!(1_620_051_629_462_u64), None)],
    );
    let expected = line_arriving(&message, 1_620_051_629_462);

    let event: LenientFirehoseEvent = serde_json::from_str(&json)?;
    let (typed, _) = run(event);
    assert_eq!(typed.records[0].result.as_deref(), Some(RESULT_OK));
    assert_eq!(typed.records[0].data.0, expected, "the typed path");

    let mut metrics = Metrics::new(FUNCTION_NAME);
    let fast = transformer::handle_fast(json.as_bytes(), &Config::default(), &mut metrics)
        .expect("a Firehose-shaped event takes the fast path");
    assert_eq!(fast, serde_json::to_vec(&typed)?, "both paths answer alike");
    Ok(())
}

#[test]
fn an_arrival_time_with_a_fraction_fails_its_record_not_the_invocation() -> TestResult {
    // aws_lambda_events panics on a fraction (an assertion in its deserializer); each such
    // record is answered ProcessingFailed with its data, and the good one beside them is Ok.
    let message = Message::new(3, 5_400_172, 8).second(13).to_json();
    let json = event_arriving(
        &[encoded(&message), encoded(&message), encoded(&message)],
        &[
            (json!(1_620_051_628_707.5), None),
            (
                json!(1_620_051_628_707_u64),
                Some(json!("1620051628707.25")),
            ),
            (json!("1620051628707"), None),
        ],
    );
    let mut metrics = Metrics::new(FUNCTION_NAME);
    let response: KinesisFirehoseResponse = serde_json::from_slice(&transformer::handle_raw(
        json.as_bytes(),
        &Config::default(),
        &mut metrics,
    )?)?;
    let results = answers(&response);
    assert_eq!(
        results,
        [
            ("record-0", RESULT_PROCESSING_FAILED),
            ("record-1", RESULT_PROCESSING_FAILED),
            ("record-2", RESULT_OK),
        ]
    );
    assert_eq!(response.records[0].data.0, message);
    assert_eq!(response.records[1].data.0, message);
    assert_eq!(response.records[2].data.0, line_of(&message));
    assert_eq!(metrics.get("ProcessingFailed"), 2);
    Ok(())
}
