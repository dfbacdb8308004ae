// Mantissas here are far below 2^53: their casts to f64 are exact.
#![allow(clippy::cast_precision_loss)]

use proptest::prelude::*;

use super::write_json_f64;

fn written(value: f64) -> String {
    let mut out = b"x".to_vec();
    write_json_f64(&mut out, value);
    String::from_utf8(out[1..].to_vec()).unwrap()
}

/// What the line wrote before: ryu, which serde_json uses too (serde_json only adds a `+` to
/// positive exponents, from 1e16 up, far above any cadence or resistance).
fn serde(value: f64) -> String {
    ryu::Buffer::new().format_finite(value).to_owned()
}

#[test]
fn writes_numbers_as_serde_json_does() {
    for value in [
        0.0,
        -0.0,
        74.2,
        74.0,
        250.0,
        100.0,
        0.05,
        0.1,
        0.3,
        33.3,
        1e-5,
        1.5e-5,
        1e-6,
        0.12345,
        0.123_456,
        99.999_99,
        1e8,
        999_999_999.5,
        1e9,
        1e15,
        1e16,
        1e17,
        5e-324,
        0.1 + 0.2,
        f64::MAX,
        -74.2,
    ] {
        assert_eq!(written(value), serde(value), "{value:?}");
    }
}

/// Every cadence a device can send with up to two decimals, and every resistance with one.
#[test]
fn writes_every_short_decimal_in_range_as_serde_json_does() {
    for hundredths in 0..=25_000u32 {
        let value: f64 = format!("{}.{:02}", hundredths / 100, hundredths % 100)
            .parse()
            .unwrap();
        assert_eq!(written(value), serde(value), "{value:?}");
    }
}

proptest! {
    #[test]
    fn writes_any_double_as_serde_json_does(bits in any::<u64>()) {
        let value = f64::from_bits(bits);
        prop_assume!(value.is_finite());
        prop_assert_eq!(written(value), serde(value));
    }

    #[test]
    fn writes_decimals_as_serde_json_does(mantissa in 0u64..10_000_000_000, decimals in 0i32..8) {
        let value = mantissa as f64 / 10f64.powi(decimals);
        prop_assert_eq!(written(value), serde(value));
    }

    #[test]
    fn writes_near_decimals_as_serde_json_does(mantissa in 0u64..300_000_000, decimals in 0i32..6, ulps in -3i64..=3) {
        let value = mantissa as f64 / 10f64.powi(decimals);
        let value = f64::from_bits(value.to_bits().wrapping_add_signed(ulps));
        prop_assume!(value.is_finite());
        prop_assert_eq!(written(value), serde(value));
    }
}

mod copied_lines {
    use proptest::prelude::*;

    use crate::message::Reading;
    use crate::race::RaceClock;

    /// How a number may be written: as the line writes it, or not (`74.50`, `7.45e1`, …).
    fn number_text() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u32..250).prop_map(|n| n.to_string()),
            (0u32..2500).prop_map(|n| format!("{}.{}", n / 10, n % 10)),
            (0u32..25_000).prop_map(|n| format!("{}.{:02}", n / 100, n % 100)),
            (0u32..2_500_000).prop_map(|n| format!("{}.{:05}", n / 100_000, n % 100_000)),
            (0u32..2_500_000).prop_map(|n| format!("{}.{:06}", n / 1_000_000, n % 1_000_000)),
            (0u32..250).prop_map(|n| format!("{n}.0")),
            (0u32..250).prop_map(|n| format!("{n}.00")),
            (0u32..250).prop_map(|n| format!("{n}e0")),
            (0u32..2500).prop_map(|n| format!("{n}E-1")),
            Just("-0.0".to_owned()),
        ]
    }

    fn string_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9 -]{0,20}".prop_map(|s| format!("\"{s}\"")),
            "[a-zé\u{1F6B2}]{1,8}".prop_map(|s| format!("\"{s}\"")),
            Just(r#""esc\"aped""#.to_owned()),
            Just(r#""tab\tbed""#.to_owned()),
        ]
    }

    /// A valid message of any field order, spacing, and value forms, with a 1-in-2 chance of
    /// being written exactly in the line's order and compactly.
    fn message() -> impl Strategy<Value = String> {
        (
            (
                prop::option::of(prop_oneof![string_text(), Just("null".to_owned())]),
                prop::bool::ANY,
                1u32..=300,
                string_text(),
                0u32..=1_000_000,
                1u32..=6,
            ),
            (
                number_text(),
                number_text(),
                prop::option::of("[a-z0-9:-]{1,40}"),
                prop::option::of(1_620_051_000_000u64..1_620_052_000_000),
                prop::option::of((1u32..1000).prop_map(|n| n.to_string())),
            ),
            prop::bool::ANY,
            any::<prop::sample::Index>(),
            prop_oneof![Just(""), Just(" "), Just("\n")],
        )
            .prop_map(
                |(
                    (uuid, update, second, name, racer, class),
                    (cadence, resistance, identity, arrived, extra),
                    in_order,
                    swap,
                    space,
                )| {
                    let device_timestamp = 1_620_051_600_000u64 + u64::from(second - 1) * 1000;
                    let mut fields: Vec<String> = Vec::new();
                    if let Some(uuid) = uuid {
                        fields.push(format!(r#""uuid":{uuid}"#));
                    }
                    let event = if update { "update" } else { "final" };
                    fields.push(format!(r#""event":"{event}""#));
                    fields.push(format!(r#""deviceTimestamp":{device_timestamp}"#));
                    fields.push(format!(r#""second":{second}"#));
                    fields.push(r#""raceId":5400172"#.to_owned());
                    fields.push(format!(r#""name":{name}"#));
                    fields.push(format!(r#""racerId":{racer}"#));
                    fields.push(format!(r#""classId":{class}"#));
                    fields.push(format!(r#""cadence":{cadence}"#));
                    fields.push(format!(r#""resistance":{resistance}"#));
                    if let Some(identity) = identity {
                        fields.push(format!(r#""identityId":"{identity}""#));
                    }
                    if let Some(arrived) = arrived {
                        fields.push(format!(r#""arrivedAt":{arrived}"#));
                    }
                    if let Some(extra) = extra {
                        fields.push(format!(r#""ingestTimestamp":{extra}"#));
                    }
                    let separator = if in_order {
                        ","
                    } else {
                        let (len, last) = (fields.len(), fields.len() - 1);
                        fields.swap(swap.index(len), last);
                        &format!(",{space}")
                    };
                    format!("{{{}}}", fields.join(separator))
                },
            )
    }

    fn lines(message: &str) -> Option<(Vec<u8>, Vec<u8>, bool)> {
        let clock = RaceClock::default();
        let reading = Reading::from_json(message.as_bytes(), clock).ok()?;
        let (mut kept, text) = Reading::from_json_keeping_text(message.as_bytes(), clock).unwrap();
        assert_eq!(kept, reading);
        kept.arrived_at = Some(1_620_051_628_707);
        let mut reading = reading;
        reading.arrived_at = Some(1_620_051_628_707);
        let mut written = Vec::new();
        reading.write_json_line(&mut written);
        let mut copied = b"previous line\n".to_vec();
        kept.write_json_line_from(&text, &mut copied);
        // The bytes an encoder may take from the message's encoding are the line's.
        let same = text.copied_len();
        assert_eq!(
            &copied[14..14 + same],
            &message.as_bytes()[..same],
            "{message}"
        );
        assert!(same > 0 || !text.is_copied());
        Some((written, copied[14..].to_vec(), text.is_copied()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn copied_lines_are_the_written_lines(message in message()) {
            if let Some((written, copied, _)) = lines(&message) {
                prop_assert_eq!(
                    String::from_utf8(copied).unwrap(),
                    String::from_utf8(written).unwrap(),
                    "{}", message
                );
            }
        }
    }

    #[test]
    fn a_compact_message_in_the_lines_order_is_copied() {
        let message = r#"{"uuid":"4f1c9a7e","event":"update","deviceTimestamp":1620051628707,"second":13,"raceId":5400172,"name":"Adell","racerId":8,"classId":3,"cadence":74.2,"resistance":74,"clientId":"bike-8","ingestTimestamp":1620051628710}"#;
        let (written, copied, is_copied) = lines(message).unwrap();
        assert!(is_copied);
        assert_eq!(copied, written);
        assert_eq!(
            String::from_utf8(copied).unwrap(),
            r#"{"uuid":"4f1c9a7e","event":"update","deviceTimestamp":1620051628707,"second":13,"raceId":5400172,"name":"Adell","racerId":8,"classId":3,"cadence":74.2,"resistance":74.0,"output":151.788,"arrivedAt":1620051628707}"#
                .to_owned()
                + "\n"
        );
    }

    /// The line writes the uuid first: a message that sends it last is not the line's text,
    /// however compact and well ordered the rest.
    #[test]
    fn a_uuid_sent_last_is_written_first() {
        let message = r#"{"event":"update","deviceTimestamp":1620051628707,"second":13,"raceId":5400172,"name":"A","racerId":8,"classId":3,"cadence":74.2,"resistance":74,"uuid":"4f1c9a7e"}"#;
        let (written, copied, is_copied) = lines(message).unwrap();
        assert!(!is_copied);
        assert_eq!(
            String::from_utf8(copied).unwrap(),
            String::from_utf8(written).unwrap()
        );
    }

    #[test]
    fn messages_not_in_the_lines_form_are_written() {
        let line = r#"{"event":"update","deviceTimestamp":1620051628707,"second":13,"raceId":5400172,"name":"A","racerId":8,"classId":3,"cadence":74.2,"resistance":74}"#;
        assert!(lines(line).unwrap().2, "no uuid is the line's form");
        let spaced_end = line.replacen(r#""resistance":74"#, r#""resistance":74 "#, 1);
        let (written, copied, is_copied) = lines(&spaced_end).unwrap();
        assert!(is_copied, "the copy ends with the resistance");
        assert_eq!(copied, written);
        for (from, to) in [
            (r#""cadence":74.2"#, r#""cadence":74.20"#),
            (r#""cadence":74.2"#, r#""cadence":7.42e1"#),
            (r#""cadence":74.2"#, r#""cadence": 74.2"#),
            (r#""cadence":74.2"#, r#""cadence" :74.2"#),
            (r#""cadence":74.2,"#, r#""cadence":74.2 ,"#),
            (r#","second":13"#, r#", "second":13"#),
            (r#"{"event""#, r#"{"uuid":null,"event""#),
            (r#"{"event""#, r#" {"event""#),
            (r#"{"event""#, r#"{"x":1,"event""#),
            (
                r#""classId":3,"cadence":74.2"#,
                r#""cadence":74.2,"classId":3"#,
            ),
        ] {
            let message = line.replacen(from, to, 1);
            let (written, copied, is_copied) = lines(&message).unwrap();
            assert!(!is_copied, "{message}");
            assert_eq!(copied, written, "{message}");
        }
    }
}
