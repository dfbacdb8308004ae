//! Lenient Kinesis decoding: one bad record never fails its event.

use alleycat_domain::{Claim, Plausibility};
use alleycat_lambda::claims::admit_holders;
use alleycat_lambda::testing::{KinesisEventBuilder, Message};
use alleycat_lambda::{LenientKinesisEvent, Metrics, RejectionLog};
use alleycat_ports::memory::MemoryTable;
use alleycat_ports::{Claims, PortError, RetryPolicy};
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
    let mut rejections = RejectionLog::new();
    let readings = event.readings(Plausibility::default(), &mut metrics, &mut rejections);
    rejections.count_into(&mut metrics);
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

const RACE: i64 = 5_400_172;

#[test]
fn implausible_rides_are_rejected_under_their_rules_with_the_platforms_arrival() {
    let fair = Message::new(1, RACE, 1).second(20);
    let arrival = fair.arrival_ms();
    let mut future = Message::new(1, RACE + 100_000, 2);
    future.device_timestamp = (RACE + 100_000) * 300_000 + 1_000;
    let ancient = Message::new(1, 3_400_000, 3); // a ride of 2002
    let mut mismatch = Message::new(1, RACE, 4).second(20);
    mismatch.race_id = RACE + 1;
    let event = KinesisEventBuilder::new()
        .record(&fair.to_json())
        .record_arriving(&future.to_json(), arrival)
        .record_arriving(&ancient.to_json(), arrival)
        .record_arriving(&mismatch.to_json(), arrival)
        .record_arriving(&Message::new(1, RACE, 5).to_json(), arrival + 3_600_000)
        .build();
    let mut metrics = Metrics::new("test");
    let mut rejections = RejectionLog::new();
    let readings = event.readings(Plausibility::default(), &mut metrics, &mut rejections);
    rejections.count_into(&mut metrics);
    assert_eq!(readings.len(), 1);
    assert_eq!(readings[0].reading.arrived_at, Some(arrival));
    assert_eq!(metrics.get("Rejected"), 4);
    assert_eq!(metrics.get("Rejected.future"), 1);
    assert_eq!(metrics.get("Rejected.closed"), 2);
    assert_eq!(metrics.get("Rejected.race_mismatch"), 1);
}

fn policy() -> RetryPolicy {
    RetryPolicy::immediate(3)
}

#[tokio::test]
async fn only_the_holders_records_pass_and_trusted_producers_need_no_claim() -> Result<(), PortError>
{
    let table = MemoryTable::new();
    let alice = Claim {
        racer_id: 7,
        identity_id: "alice".to_owned(),
        claimed_at: 0,
        expires_at: u64::MAX,
    };
    table.put_claim(&alice, None).await?;
    let event = KinesisEventBuilder::new()
        .messages(&[
            Message::new(1, RACE, 7).published_by("alice"),
            Message::new(1, RACE, 7).published_by("mallory"),
            Message::new(1, RACE, 8).published_by("mallory"),
            Message::new(1, RACE, 9),
        ])
        .build();
    let mut metrics = Metrics::new("test");
    let mut rejections = RejectionLog::new();
    let readings = event.readings(Plausibility::default(), &mut metrics, &mut rejections);
    let (admitted, undecided) =
        admit_holders(readings, &table, &policy(), &mut metrics, &mut rejections).await;
    rejections.count_into(&mut metrics);
    assert!(undecided.is_none());
    let kept: Vec<_> = admitted
        .iter()
        .map(|r| (r.position, r.reading.racer_id))
        .collect();
    assert_eq!(kept, [(0, 7), (3, 9)]);
    assert_eq!(metrics.get("Rejected.not_holder"), 2);
    assert_eq!(metrics.get("ClaimLookups"), 1);
    assert_eq!(table.faults.calls("claims"), 1);
    Ok(())
}

#[tokio::test]
async fn unreadable_claims_leave_the_rest_of_the_batch_undecided() {
    let table = MemoryTable::new();
    table
        .faults
        .fail("claims", PortError::Throttled("slow down".into()), 3);
    let event = KinesisEventBuilder::new()
        .messages(&[
            Message::new(1, RACE, 9),
            Message::new(1, RACE, 7).published_by("alice"),
            Message::new(1, RACE, 10),
        ])
        .build();
    let mut metrics = Metrics::new("test");
    let mut rejections = RejectionLog::new();
    let readings = event.readings(Plausibility::default(), &mut metrics, &mut rejections);
    let (admitted, undecided) =
        admit_holders(readings, &table, &policy(), &mut metrics, &mut rejections).await;
    assert_eq!(admitted.len(), 1);
    let undecided = undecided.expect("the claims read failed");
    assert_eq!(undecided.first.position, 1);
    assert_eq!(undecided.error.attempts, 3);
}

#[test]
fn arrivals_are_read_to_the_millisecond_whatever_their_decimals() {
    // `aws_lambda_events` alone reads `.05` s as 5 ms: a record 45 ms earlier than it arrived.
    let event = format!(
        r#"{{"Records":[{},{},{}]}}"#,
        record("100", &STANDARD.encode(MESSAGE)).replace("1620051628.707", "1620051628.05"),
        record("101", &STANDARD.encode(MESSAGE)).replace("1620051628.707", "\"1620051628.100\""),
        record("102", &STANDARD.encode(MESSAGE)).replace("1620051628.707", "1620051628"),
    );
    let event: LenientKinesisEvent = serde_json::from_str(&event).unwrap();
    assert_eq!(
        event.arrivals,
        [1_620_051_628_050, 1_620_051_628_100, 1_620_051_628_000]
    );
    let mut metrics = Metrics::new("test");
    let mut rejections = RejectionLog::new();
    let readings = event.readings(Plausibility::default(), &mut metrics, &mut rejections);
    assert_eq!(readings[0].reading.arrived_at, Some(1_620_051_628_050));
}
