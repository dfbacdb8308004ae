//! Every validation rule of DESIGN section 2 has a record that breaks only that rule, and the
//! boundary values of every range are accepted.

use alleycat_domain::message::Rejection;
use alleycat_domain::{DeviceMessage, Event, Output, RaceClock, Reading};
use serde_json::{Value, json};

fn valid() -> Value {
    json!({
        "uuid": "5d0b1f4e-62a2-4a1c-9d2e-6f5d1c2b3a4f",
        "event": "update",
        "deviceTimestamp": 1_620_051_628_707_i64,
        "second": 13,
        "raceId": 5_400_172,
        "name": "Adell",
        "racerId": 8,
        "classId": 3,
        "cadence": 74.2,
        "resistance": 74
    })
}

fn with(field: &str, value: Value) -> Vec<u8> {
    let mut message = valid();
    message[field] = value;
    serde_json::to_vec(&message).unwrap()
}

fn without(field: &str) -> Vec<u8> {
    let mut message = valid();
    message.as_object_mut().unwrap().remove(field);
    serde_json::to_vec(&message).unwrap()
}

fn check(bytes: &[u8]) -> Result<Reading<'_>, Rejection> {
    Reading::from_json(bytes, RaceClock::default())
}

#[test]
fn the_reference_message_is_valid_and_scored() {
    let bytes = serde_json::to_vec(&valid()).unwrap();
    let reading = check(&bytes).unwrap();
    assert_eq!(reading.racer_id, 8);
    assert_eq!(reading.class_id, 3);
    assert_eq!(reading.race_id, 5_400_172);
    assert_eq!(reading.second, 13);
    assert_eq!(reading.event, Event::Update);
    assert_eq!(reading.name, "Adell");
    // (74.2 + 35) × (74 + 65) / 100 = 151.788
    assert_eq!(reading.output, Output::from_ten_thousandths(1_517_880));
}

#[test]
fn output_is_rounded_to_four_decimals() {
    // (33.33333 + 35) × (12.5 + 65) / 100 = 52.95833075 → 52.9583
    let bytes = with("cadence", json!(33.33333));
    let bytes = {
        let mut v: Value = serde_json::from_slice(&bytes).unwrap();
        v["resistance"] = json!(12.5);
        serde_json::to_vec(&v).unwrap()
    };
    assert_eq!(check(&bytes).unwrap().output.to_string(), "52.9583");
}

#[test]
fn class_id_must_be_1_to_6() {
    assert!(check(&with("classId", json!(1))).is_ok());
    assert!(check(&with("classId", json!(6))).is_ok());
    assert_eq!(
        check(&with("classId", json!(0))),
        Err(Rejection::ClassId(0))
    );
    assert_eq!(
        check(&with("classId", json!(7))),
        Err(Rejection::ClassId(7))
    );
    assert_eq!(
        check(&with("classId", json!(-3))),
        Err(Rejection::ClassId(-3))
    );
    assert_eq!(
        check(&with("classId", json!(300))),
        Err(Rejection::ClassId(300))
    );
}

#[test]
fn second_must_be_within_the_race() {
    assert!(check(&with("second", json!(1))).is_ok());
    assert!(check(&with("second", json!(300))).is_ok());
    let expected = |second| {
        Err(Rejection::Second {
            second,
            race_seconds: 300,
        })
    };
    assert_eq!(check(&with("second", json!(0))), expected(0));
    assert_eq!(check(&with("second", json!(301))), expected(301));
    assert_eq!(check(&with("second", json!(-1))), expected(-1));
    assert_eq!(check(&with("second", json!(70_000))), expected(70_000));
}

#[test]
fn second_follows_the_configured_race_length() {
    let bytes = with("second", json!(21));
    assert!(Reading::from_json(&bytes, RaceClock::new(30, 30)).is_ok());
    assert_eq!(
        Reading::from_json(&bytes, RaceClock::new(20, 30)),
        Err(Rejection::Second {
            second: 21,
            race_seconds: 20
        })
    );
}

#[test]
fn racer_id_must_be_0_to_a_million() {
    assert!(check(&with("racerId", json!(0))).is_ok());
    assert!(check(&with("racerId", json!(1_000_000))).is_ok());
    assert_eq!(
        check(&with("racerId", json!(1_000_001))),
        Err(Rejection::RacerId(1_000_001))
    );
    assert_eq!(
        check(&with("racerId", json!(-1))),
        Err(Rejection::RacerId(-1))
    );
}

#[test]
fn race_id_must_be_positive() {
    assert!(check(&with("raceId", json!(1))).is_ok());
    assert_eq!(check(&with("raceId", json!(0))), Err(Rejection::RaceId(0)));
    assert_eq!(
        check(&with("raceId", json!(-5))),
        Err(Rejection::RaceId(-5))
    );
}

#[test]
fn cadence_must_be_0_to_250() {
    assert!(check(&with("cadence", json!(0))).is_ok());
    assert!(check(&with("cadence", json!(250))).is_ok());
    assert_eq!(
        check(&with("cadence", json!(250.01))),
        Err(Rejection::Cadence(250.01))
    );
    assert_eq!(
        check(&with("cadence", json!(-0.5))),
        Err(Rejection::Cadence(-0.5))
    );
}

#[test]
fn resistance_must_be_0_to_100() {
    assert!(check(&with("resistance", json!(0))).is_ok());
    assert!(check(&with("resistance", json!(100.0))).is_ok());
    assert_eq!(
        check(&with("resistance", json!(100.5))),
        Err(Rejection::Resistance(100.5))
    );
    assert_eq!(
        check(&with("resistance", json!(-1))),
        Err(Rejection::Resistance(-1.0))
    );
}

#[test]
fn non_finite_numbers_are_not_json() {
    let bytes = br#"{"event":"update","deviceTimestamp":1620051628707,"second":13,"raceId":5400172,"name":"Adell","racerId":8,"classId":3,"cadence":NaN,"resistance":74}"#;
    assert!(matches!(check(bytes), Err(Rejection::NotJson(_))));
    let bytes = br#"{"event":"update","deviceTimestamp":1620051628707,"second":13,"raceId":5400172,"name":"Adell","racerId":8,"classId":3,"cadence":1e400,"resistance":74}"#;
    assert!(matches!(check(bytes), Err(Rejection::NotJson(_))));
}

#[test]
fn name_must_be_at_most_64_characters() {
    assert!(check(&with("name", json!("a".repeat(64)))).is_ok());
    // 64 characters of 4 bytes each: the limit counts characters, not bytes.
    assert!(check(&with("name", json!("🚲".repeat(64)))).is_ok());
    assert_eq!(
        check(&with("name", json!("a".repeat(65)))),
        Err(Rejection::NameTooLong(65))
    );
    assert_eq!(
        check(&with("name", json!("é".repeat(65)))),
        Err(Rejection::NameTooLong(65))
    );
}

#[test]
fn device_timestamp_must_be_epoch_milliseconds() {
    assert!(check(&with("deviceTimestamp", json!(1_000_000_000_000_i64))).is_ok());
    assert_eq!(
        check(&with("deviceTimestamp", json!(1_620_051_628))),
        Err(Rejection::DeviceTimestamp(1_620_051_628)),
        "a timestamp in seconds is rejected"
    );
    assert_eq!(
        check(&with("deviceTimestamp", json!(-1))),
        Err(Rejection::DeviceTimestamp(-1))
    );
    assert_eq!(
        check(&with("deviceTimestamp", json!(5_000_000_000_000_i64))),
        Err(Rejection::DeviceTimestamp(5_000_000_000_000))
    );
}

#[test]
fn event_must_be_update_or_final() {
    let bytes = with("event", json!("final"));
    assert_eq!(check(&bytes).unwrap().event, Event::Final);
    let rejection = check(&with("event", json!("start"))).unwrap_err();
    assert!(
        matches!(&rejection, Rejection::Schema(m) if m.contains("unknown variant")),
        "{rejection}"
    );
}

#[test]
fn every_required_field_is_required() {
    for field in [
        "event",
        "deviceTimestamp",
        "second",
        "raceId",
        "name",
        "racerId",
        "classId",
        "cadence",
        "resistance",
    ] {
        let rejection = check(&without(field)).unwrap_err();
        assert!(
            matches!(&rejection, Rejection::Schema(m) if m.contains(&format!("missing field `{field}`"))),
            "{field}: {rejection}"
        );
    }
}

#[test]
fn uuid_is_optional() {
    assert!(check(&without("uuid")).is_ok());
    assert!(check(&with("uuid", Value::Null)).is_ok());
}

#[test]
fn wrong_types_are_schema_errors() {
    for (field, value) in [
        ("classId", json!("3")),
        ("second", json!(13.5)),
        ("racerId", json!(null)),
        ("cadence", json!("fast")),
        ("name", json!(42)),
        ("raceId", json!([5_400_172])),
        ("uuid", json!(7)),
    ] {
        let rejection = check(&with(field, value)).unwrap_err();
        assert_eq!(rejection.rule(), "schema", "{field}: {rejection}");
    }
}

#[test]
fn unknown_fields_are_ignored() {
    let mut message = valid();
    message["clientId"] = json!("bike-8");
    message["ingestTimestamp"] = json!(1_620_051_628_731_i64);
    message["output"] = json!(151.788);
    message["extra"] = json!({"nested": [1, 2, {"deep": true}]});
    let bytes = serde_json::to_vec(&message).unwrap();
    assert_eq!(check(&bytes).unwrap().racer_id, 8);
}

#[test]
fn duplicate_fields_are_rejected() {
    let bytes = br#"{"event":"update","deviceTimestamp":1620051628707,"second":13,"raceId":5400172,"name":"Adell","racerId":8,"racerId":9,"classId":3,"cadence":74.2,"resistance":74}"#;
    let rejection = check(bytes).unwrap_err();
    assert!(
        matches!(&rejection, Rejection::Schema(m) if m.contains("duplicate field")),
        "{rejection}"
    );
}

#[test]
fn garbage_is_not_json_and_bad_bytes_are_not_utf8() {
    assert!(matches!(check(b"{\"event\":"), Err(Rejection::NotJson(_))));
    assert!(matches!(check(b"hello"), Err(Rejection::NotJson(_))));
    assert!(matches!(check(b""), Err(Rejection::NotJson(_))));
    assert_eq!(
        check(&with("classId", json!(3)).repeat(2))
            .unwrap_err()
            .rule(),
        "not_json"
    );
    let mut bytes = with("name", json!("Adell"));
    let at = bytes.windows(5).position(|w| w == b"Adell").unwrap();
    bytes[at] = 0xff;
    assert_eq!(check(&bytes), Err(Rejection::NotUtf8));
}

#[test]
fn escaped_strings_are_decoded() {
    let bytes = with("name", json!("Ad\"ell\\\n"));
    assert_eq!(check(&bytes).unwrap().name, "Ad\"ell\\\n");
}

#[test]
fn a_reading_writes_the_transformer_line() {
    let bytes = serde_json::to_vec(&valid()).unwrap();
    let reading = check(&bytes).unwrap();
    let mut line = Vec::new();
    reading.write_json_line(&mut line);
    assert_eq!(
        std::str::from_utf8(&line).unwrap(),
        concat!(
            r#"{"uuid":"5d0b1f4e-62a2-4a1c-9d2e-6f5d1c2b3a4f","event":"update","deviceTimestamp":1620051628707,"#,
            r#""second":13,"raceId":5400172,"name":"Adell","racerId":8,"classId":3,"cadence":74.2,"#,
            r#""resistance":74.0,"output":151.788}"#,
            "\n"
        )
    );
    // The line is itself a valid message that scores the same.
    let again = check(line.trim_ascii_end()).unwrap();
    assert_eq!(again, reading);
}

#[test]
fn the_fast_path_and_serde_agree_on_the_reference_message() {
    let bytes = serde_json::to_vec(&valid()).unwrap();
    assert_eq!(
        DeviceMessage::parse(&bytes).unwrap(),
        DeviceMessage::parse_with_serde(&bytes).unwrap()
    );
}
