use proptest::prelude::*;

use super::{find_string_stop, leading_digits, scan, scan_line, string_len};
use crate::race::RaceClock;

#[test]
fn string_stops_find_the_first_stop_byte() {
    // Past two pairs of words: every position in a pair, a lone word and the byte tail.
    for len in 0..40 {
        for stop in [b'"', b'\\', 0x00, 0x1f, 0x80, 0xff] {
            for at in 0..=len {
                let mut bytes = vec![b'a'; len];
                // Noise after the first stop must not move it.
                bytes.extend([b'\\', 0x01, b'"', 0xc3]);
                if at < len {
                    bytes[at] = stop;
                }
                assert_eq!(find_string_stop(&bytes), Some(at), "{len} {stop} {at}");
            }
        }
    }
    for byte in 0..=255u8 {
        let mut bytes = [b' '; 8];
        bytes[3] = byte;
        let stop = !(0x20..0x80).contains(&byte) || byte == b'"' || byte == b'\\';
        let expected = stop.then_some(3);
        assert_eq!(find_string_stop(&bytes), expected, "{byte}");
    }
    assert_eq!(find_string_stop(b"abcdefghij"), None);
}

#[test]
fn string_len_stops_at_the_closing_quote_only() {
    assert_eq!(string_len(b"abc\"rest"), Some((3, true)));
    assert_eq!(string_len("caf\u{e9}\"".as_bytes()), Some((5, false)));
    assert_eq!(string_len(b"a\\\"b\""), None, "an escape");
    assert_eq!(string_len(b"a\tb\""), None, "a control character");
    assert_eq!(
        string_len("\u{e9}\n\"".as_bytes()),
        None,
        "a control character after non-ASCII"
    );
    assert_eq!(string_len(b"no quote"), None);
}

/// The digits `bytes` starts with, a byte at a time: what [`leading_digits`] must give.
fn naive_digits(bytes: &[u8]) -> (u64, usize) {
    let len = bytes
        .iter()
        .take(16)
        .take_while(|b| b.is_ascii_digit())
        .count();
    let value = bytes[..len]
        .iter()
        .fold(0, |n, d| n * 10 + u64::from(d - b'0'));
    (value, len)
}

#[test]
fn leading_digits_reads_every_length_and_stop_as_a_byte_loop() {
    for len in 0..=20 {
        for digits in [
            "98765432109876543210",
            "00000000000000000000",
            "01234567890123456789",
            "99999999999999999999",
            "10000000000000000000",
        ] {
            let digits = &digits.as_bytes()[..len];
            // At the end of the input (after 0 to 9 other bytes, which the end's load reads
            // too), then before every possible byte.
            for before in 0..10 {
                let mut bytes = b"9876543210"[..before].to_vec();
                bytes.extend_from_slice(digits);
                assert_eq!(
                    leading_digits(&bytes, before),
                    naive_digits(digits),
                    "{digits:?} after {before}"
                );
            }
            for stop in 0..=255u8 {
                let mut bytes = digits.to_vec();
                bytes.push(stop);
                bytes.extend_from_slice(b"123456789");
                assert_eq!(
                    leading_digits(&bytes, 0),
                    naive_digits(&bytes),
                    "{len} {stop}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// The word-at-a-time search finds what a byte-by-byte one finds, in any bytes (mostly
    /// plain ones, so that stops come late).
    #[test]
    fn string_stops_are_found_as_byte_by_byte(bytes in prop::collection::vec(
        prop_oneof![8 => b'a'..=b'z', 1 => any::<u8>()], 0..80,
    )) {
        let expected = bytes
            .iter()
            .position(|&b| !(0x20..0x80).contains(&b) || b == b'"' || b == b'\\');
        prop_assert_eq!(find_string_stop(&bytes), expected);
    }

    #[test]
    fn leading_digits_agrees_with_a_byte_loop(
        bytes in prop::collection::vec(
            prop_oneof![4 => b'0'..=b'9', 1 => any::<u8>()],
            0..24,
        ),
        at in 0..26usize,
    ) {
        let at = at.min(bytes.len());
        prop_assert_eq!(leading_digits(&bytes, at), naive_digits(&bytes[at..]));
    }
}

// ------------------------------------------------ the predicted-order scanner vs the general one

/// An integer field's text: mostly plain and in `valid`, else every form the predicted scanner
/// must leave to the general one (or read as it does).
fn integer_text(valid: std::ops::RangeInclusive<u64>) -> impl Strategy<Value = String> {
    prop_oneof![
        80 => valid.clone().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => (0u64..1000).prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec![
            "0", "00", "01", "-0", "-1", "1.0", "1e3", "1E3", "12.", "-", "",
            "1234567890123456", "12345678901234567", "99999999999999999999",
            "18446744073709551616", "9223372036854775807", "9223372036854775808",
        ])
        .prop_map(str::to_owned),
        1 => valid.clone().prop_map(|n| format!("0{n}")),
        1 => valid.clone().prop_map(|n| format!("{n}.0")),
        1 => valid.prop_map(|n| format!("-{n}")),
    ]
}

/// Cadence's or resistance's text: the line's forms, and the forms it does not write.
fn decimal_text() -> impl Strategy<Value = String> {
    prop_oneof![
        30 => (0u32..=1000).prop_map(|n| format!("{}.{}", n / 10, n % 10)),
        20 => (0u32..=100).prop_map(|n| n.to_string()),
        10 => (0u32..=10_000).prop_map(|n| format!("{}.{:02}", n / 100, n % 100)),
        4 => (0u32..=2600).prop_map(|n| format!("{}.{}", n / 10, n % 10)),
        1 => (0u32..2_600_000).prop_map(|n| format!("{}.{:05}", n / 100_000, n % 100_000)),
        1 => (0u32..2_600_000).prop_map(|n| format!("{}.{:06}", n / 1_000_000, n % 1_000_000)),
        1 => (0u64..20_000_000_000).prop_map(|n| format!("{}.{}", n / 10, n % 10)),
        1 => prop::sample::select(vec![
            "74.20", "074.2", "00", "0.0", "0", "-0", "-0.0", "-1", "7.42e1", "742E-1", "1e0",
            ".5", "5.", "250.00001", "250.1", "100.5", "1234567890", "123456789", "0.000001",
            "99999.99999", "1.7976931348623157e308",
        ])
        .prop_map(str::to_owned),
    ]
}

/// A string field's text, quotes included.
fn string_text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        40 => proptest::string::string_regex(&format!("[a-zA-Z0-9 -]{{0,{max}}}"))
            .unwrap()
            .prop_map(|s| format!("\"{s}\"")),
        1 => "[a-z\u{e9}\u{1F6B2}]{1,8}".prop_map(|s| format!("\"{s}\"")),
        1 => Just(r#""esc\"aped""#.to_owned()),
        1 => Just("\"tab\tbed\"".to_owned()),
        1 => Just("\"bad \u{1}\"".to_owned()),
        1 => Just("null".to_owned()),
        1 => Just("5".to_owned()),
    ]
}

/// Fields a message may carry after `resistance`.
fn tail_field() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![
            "[a-z0-9:-]{0,40}".prop_map(|s| format!("\"{s}\"")),
            Just("null".to_owned()),
            Just(format!("\"{}\"", "i".repeat(129))),
            Just("7".to_owned()),
        ]
        .prop_map(|v| format!(r#""identityId":{v}"#)),
        prop_oneof![
            (0u64..4_000_000_000_000).prop_map(|n| n.to_string()),
            Just("null".to_owned()),
            Just("-5".to_owned()),
            Just("1.5".to_owned()),
        ]
        .prop_map(|v| format!(r#""arrivedAt":{v}"#)),
        Just(r#""ingestTimestamp":1620051628710"#.to_owned()),
        Just(r#""clientId":"bike-8""#.to_owned()),
        Just(r#""uuid":"late""#.to_owned()),
        Just(r#""classId":3"#.to_owned()),
        Just(r#""resistance":74"#.to_owned()),
        Just(r#""nested":[1]"#.to_owned()),
        Just(r#""flag":true"#.to_owned()),
    ]
}

/// A message in the line's order and compact, as devices send it, or (half the time) changed:
/// two fields swapped, whitespace somewhere, cut short; with odd values and fields after
/// `resistance` throughout.
fn line_message() -> impl Strategy<Value = (String, bool)> {
    (
        (
            prop::option::weighted(0.8, string_text(36)),
            prop_oneof![
                8 => Just("\"update\"".to_owned()),
                4 => Just("\"final\"".to_owned()),
                1 => Just(r#""upd\u0061te""#.to_owned()),
                1 => Just("\"other\"".to_owned()),
            ],
            integer_text(1_620_051_600_000..=1_620_051_900_000),
            integer_text(1..=300),
            integer_text(1..=10_000_000),
            string_text(70),
        ),
        (
            integer_text(0..=1_000_000),
            integer_text(1..=6),
            decimal_text(),
            decimal_text(),
            prop_oneof![
                3 => Just(Vec::new()),
                1 => prop::collection::vec(tail_field(), 1..3),
            ],
        ),
        prop::option::weighted(
            0.5,
            (
                0..3u8,
                any::<prop::sample::Index>(),
                any::<prop::sample::Index>(),
                prop::sample::select(vec![" ", "\n", "\t", "\r"]),
            ),
        ),
    )
        .prop_map(
            |(
                (uuid, event, timestamp, second, race, name),
                (racer, class, cadence, resistance, tail),
                change,
            )| {
                let mut fields = Vec::new();
                if let Some(uuid) = uuid {
                    fields.push(format!(r#""uuid":{uuid}"#));
                }
                fields.push(format!(r#""event":{event}"#));
                fields.push(format!(r#""deviceTimestamp":{timestamp}"#));
                fields.push(format!(r#""second":{second}"#));
                fields.push(format!(r#""raceId":{race}"#));
                fields.push(format!(r#""name":{name}"#));
                fields.push(format!(r#""racerId":{racer}"#));
                fields.push(format!(r#""classId":{class}"#));
                fields.push(format!(r#""cadence":{cadence}"#));
                fields.push(format!(r#""resistance":{resistance}"#));
                fields.extend(tail);
                let unchanged = change.is_none();
                if let Some((0, a, b, _)) = change {
                    let len = fields.len();
                    fields.swap(a.index(len), b.index(len));
                }
                let mut message = format!("{{{}}}", fields.join(","));
                let boundary = |message: &str, mut at: usize| {
                    while !message.is_char_boundary(at) {
                        at -= 1;
                    }
                    at
                };
                match change {
                    Some((1, at, _, space)) => {
                        let at = boundary(&message, at.index(message.len() + 1));
                        message.insert_str(at, space);
                    }
                    Some((2, at, _, _)) => {
                        let at = boundary(&message, at.index(message.len()));
                        message.truncate(at);
                    }
                    _ => {}
                }
                (message, unchanged)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// Whatever the predicted-order scanner answers, the general scanner and validation answer
    /// the same: the same reading (numbers to the bit) and the same prefix to copy.
    #[test]
    fn the_predicted_order_scanner_agrees_with_the_general_one((message, _) in line_message()) {
        let clock = RaceClock::default();
        let bytes = message.as_bytes();
        if let Some((reading, text)) = scan_line(bytes, clock) {
            let (general, general_prefix) = scan(bytes).expect("the general scanner answers too");
            prop_assert_eq!(text.prefix, general_prefix, "{}", message);
            prop_assert_eq!(text.bytes, bytes);
            let general = general.validate(clock);
            prop_assert_eq!(Ok(&reading), general.as_ref(), "{}", message);
            let general = general.unwrap();
            prop_assert_eq!(reading.cadence.to_bits(), general.cadence.to_bits());
            prop_assert_eq!(reading.resistance.to_bits(), general.resistance.to_bits());
        }
    }

    /// It answers every valid message in the line's form but those with a number of more than
    /// 16 digits (a valid `raceId` may have up to 19; no race will for a few million years).
    #[test]
    fn the_predicted_order_scanner_covers_messages_in_the_lines_form(
        (message, unchanged) in line_message(),
    ) {
        let clock = RaceClock::default();
        let bytes = message.as_bytes();
        let longest_number = bytes
            .split(|b| !b.is_ascii_digit())
            .map(<[u8]>::len)
            .max()
            .unwrap_or(0);
        prop_assume!(longest_number <= 16);
        let general = scan(bytes).and_then(|(m, prefix)| Some((m.validate(clock).ok()?, prefix?)));
        if unchanged && let Some((general, prefix)) = general {
            let scanned = scan_line(bytes, clock).map(|(reading, text)| (reading, text.prefix));
            prop_assert_eq!(scanned, Some((general, Some(prefix))), "{}", message);
        }
    }
}

#[test]
fn the_predicted_order_scanner_reads_what_devices_send() {
    let clock = RaceClock::default();
    for message in [
        // The simulator's and the benchmark's shape.
        r#"{"uuid":"4f1c9a7e-62a2-4a1c-9d2e-6f5d1c2b3a4f","event":"update","deviceTimestamp":1620051628707,"second":13,"raceId":5400172,"name":"Adell","racerId":8,"classId":3,"cadence":74.2,"resistance":74}"#,
        r#"{"event":"final","deviceTimestamp":1620051899000,"second":300,"raceId":5400172,"name":"","racerId":0,"classId":6,"cadence":0,"resistance":100.0}"#,
        // The IoT rule's stamps after the device's fields, and whitespace at the end.
        "{\"event\":\"update\",\"deviceTimestamp\":1620051628707,\"second\":13,\"raceId\":5400172,\"name\":\"A\",\"racerId\":8,\"classId\":3,\"cadence\":250,\"resistance\":0.05 , \"identityId\":\"us-east-1:abc\",\"ingestTimestamp\":1620051628710}\n",
    ] {
        let (reading, text) = scan_line(message.as_bytes(), clock).expect(message);
        let (general, general_prefix) = scan(message.as_bytes()).unwrap();
        assert_eq!(text.prefix, general_prefix);
        assert_eq!(Ok(reading), general.validate(clock));
    }
}

#[test]
fn the_predicted_order_scanner_leaves_the_rest_to_the_general_one() {
    let clock = RaceClock::default();
    let line = r#"{"event":"update","deviceTimestamp":1620051628707,"second":13,"raceId":5400172,"name":"A","racerId":8,"classId":3,"cadence":74.2,"resistance":74}"#;
    assert!(scan_line(line.as_bytes(), clock).is_some());
    for (from, to) in [
        (r#""second":13"#, r#""second":013"#),
        (r#""second":13"#, r#""second":301"#),
        (r#""second":13"#, r#""second":0"#),
        (r#""second":13"#, r#""second":13.0"#),
        (r#""classId":3"#, r#""classId":7"#),
        (r#""racerId":8"#, r#""racerId":1000001"#),
        (r#""cadence":74.2"#, r#""cadence":74.20"#),
        (r#""cadence":74.2"#, r#""cadence":250.5"#),
        (r#""cadence":74.2"#, r#""cadence":7.42e1"#),
        (r#""resistance":74"#, r#""resistance":74e0"#),
        (r#""resistance":74"#, r#""resistance":-74"#),
        (r#""resistance":74"#, r#""resistance":74,"classId":3"#),
        (r#""resistance":74"#, r#""resistance":74,"uuid":"late""#),
        (r#""resistance":74"#, r#""resistance":74,"identityId":"""#),
        (r#""name":"A""#, r#""name":"A\"""#),
        (r#""name":"A""#, r#""name": "A""#),
        (r#"{"event""#, r#"{"uuid":null,"event""#),
        (
            r#""deviceTimestamp":1620051628707"#,
            r#""deviceTimestamp":999999999999"#,
        ),
        ("}", "}x"),
    ] {
        let message = line.replacen(from, to, 1);
        assert!(scan_line(message.as_bytes(), clock).is_none(), "{message}");
    }
}
