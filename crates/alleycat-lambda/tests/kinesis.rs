//! Lenient Kinesis decoding: one bad record never fails its event.

use alleycat_domain::RaceClock;
use alleycat_lambda::{LenientKinesisEvent, Metrics};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const MESSAGE: &str = r#"{"event":"update","deviceTimestamp":1620051628707,"second":13,"raceId":5400172,"name":"Adell","racerId":8,"classId":3,"cadence":74.2,"resistance":74}"#;

fn record(sequence: &str, data: &str) -> String {
    format!(
        r#"{{"kinesis":{{"kinesisSchemaVersion":"1.0","partitionKey":"8","sequenceNumber":"{sequence}","data":"{data}","approximateArrivalTimestamp":1620051628.707}},"eventSource":"aws:kinesis","eventVersion":"1.0","eventID":"shardId-000000000000:{sequence}","eventName":"aws:kinesis:record","invokeIdentityArn":"arn:aws:iam::123456789012:role/x","awsRegion":"us-east-1","eventSourceARN":"arn:aws:kinesis:us-east-1:123456789012:stream/alleycat"}}"#
    )
}

#[test]
fn a_record_with_broken_base64_is_set_aside_not_fatal() {
    let good = STANDARD.encode(MESSAGE);
    let event = format!(
        r#"{{"Records":[{},{},{}]}}"#,
        record("100", &good),
        record("101", "!!not base64!!"),
        record("102", &STANDARD.encode("not json"))
    );
    let event: LenientKinesisEvent = serde_json::from_str(&event).unwrap();
    assert_eq!(event.len(), 3);
    assert_eq!(event.positions, vec![0, 2]);
    assert_eq!(event.undecodable.len(), 1);
    assert_eq!(event.undecodable[0].position, 1);
    assert_eq!(event.undecodable[0].sequence_number.as_deref(), Some("101"));

    let mut metrics = Metrics::new("test");
    let readings = event.readings(RaceClock::default(), &mut metrics);
    assert_eq!(readings.len(), 1);
    assert_eq!(readings[0].sequence_number, "100");
    assert_eq!(readings[0].reading.racer_id, 8);
    assert_eq!(metrics.get("RecordsIn"), 3);
    assert_eq!(metrics.get("Rejected"), 2);
    assert_eq!(event.sequence_number_at(2), Some("102"));
}

#[test]
fn tumbling_window_properties_are_kept() {
    let event = format!(
        r#"{{"Records":[{}],"window":{{"start":"2020-07-30T17:00:00Z","end":"2020-07-30T17:05:00Z"}},"state":{{"k":"v"}},"shardId":"shard123456789","eventSourceARN":"arn:aws:kinesis:us-east-1:123456789012:stream/alleycat","isFinalInvokeForWindow":true,"isWindowTerminatedEarly":false}}"#,
        record("100", &STANDARD.encode(MESSAGE))
    );
    let event: LenientKinesisEvent = serde_json::from_str(&event).unwrap();
    let window = event.window.expect("window properties");
    assert!(window.is_final_invoke_for_window);
    assert_eq!(window.state.get("k").map(String::as_str), Some("v"));
    assert_eq!(event.event.records.len(), 1);
}
