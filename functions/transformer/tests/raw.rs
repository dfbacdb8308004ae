//! `handle_raw`, the zero-copy path the Lambda serves, against the typed reference: for any event,
//! the very bytes `serde_json::to_vec(&handle(serde_json::from_slice(event)))` gives, and the same
//! metrics. Events shaped as Firehose sends them must take the fast path; anything else may fall
//! back to the typed path, which must then be what answers.

use std::error::Error;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use alleycat_lambda::testing::{Message, bad_messages};
use alleycat_lambda::{Function, Metrics};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use proptest::prelude::*;
use serde_json::value::RawValue;
use transformer::{
    Config, FUNCTION_NAME, LenientFirehoseEvent, Transformer, handle, handle_fast, handle_raw,
};

type TestResult = Result<(), Box<dyn Error>>;

const FIREHOSE: &[u8] = include_bytes!("../../../fixtures/events/firehose.json");

/// The typed reference: what the Lambda answered before the fast path.
fn typed(event: &[u8], config: Config) -> Result<(Vec<u8>, Metrics), String> {
    let event: LenientFirehoseEvent = serde_json::from_slice(event).map_err(|e| e.to_string())?;
    let mut metrics = Metrics::new(FUNCTION_NAME);
    let response = handle(event, &config, &mut metrics);
    Ok((serde_json::to_vec(&response).unwrap(), metrics))
}

fn raw(event: &[u8], config: Config) -> Result<(Vec<u8>, Metrics), String> {
    let mut metrics = Metrics::new(FUNCTION_NAME);
    let response = handle_raw(event, &config, &mut metrics).map_err(|e| e.to_string())?;
    Ok((response, metrics))
}

fn fast(event: &[u8], config: Config) -> Option<(Vec<u8>, Metrics)> {
    let mut metrics = Metrics::new(FUNCTION_NAME);
    let response = handle_fast(event, &config, &mut metrics)?;
    Some((response, metrics))
}

/// Checks both paths against the reference; returns whether the fast path answered.
fn check(event: &[u8], config: Config) -> Result<bool, TestCaseError> {
    let reference = typed(event, config);
    let text = String::from_utf8_lossy(event);
    prop_assert_eq!(&raw(event, config), &reference, "handle_raw on {}", text);
    let fast = fast(event, config);
    if let Some(fast) = &fast {
        prop_assert_eq!(Ok(fast), reference.as_ref(), "fast path on {}", text);
    }
    Ok(fast.is_some())
}

/// JSON written piece by piece, so tests control every byte: escapes, odd numbers, duplicate
/// keys, whitespace.
#[derive(Clone, Debug)]
enum Json {
    /// A scalar, verbatim.
    Raw(String),
    /// Members in order; keys verbatim, quotes included.
    Object(Vec<(String, Json)>),
    Array(Vec<Json>),
}

fn raw_json(text: &str) -> Json {
    Json::Raw(text.to_owned())
}

fn string(text: &str) -> Json {
    Json::Raw(serde_json::to_string(text).unwrap())
}

fn key(name: &str) -> String {
    serde_json::to_string(name).unwrap()
}

/// Whitespace JSON allows between tokens, chosen in turn from `choices`.
struct Spacing<'a> {
    choices: &'a [u8],
    next: usize,
}

impl Spacing<'_> {
    fn write(&mut self, out: &mut String) {
        if self.choices.is_empty() {
            return;
        }
        let choice = self.choices[self.next % self.choices.len()];
        self.next += 1;
        out.push_str(["", "", "", "", " ", "\n", "\t", "\r\n  "][usize::from(choice % 8)]);
    }
}

fn render(json: &Json, spacing: &mut Spacing<'_>, out: &mut String) {
    match json {
        Json::Raw(text) => out.push_str(text),
        Json::Object(members) => {
            out.push('{');
            for (i, (key, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                spacing.write(out);
                out.push_str(key);
                spacing.write(out);
                out.push(':');
                spacing.write(out);
                render(value, spacing, out);
                spacing.write(out);
            }
            out.push('}');
        }
        Json::Array(elements) => {
            out.push('[');
            for (i, element) in elements.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                spacing.write(out);
                render(element, spacing, out);
                spacing.write(out);
            }
            out.push(']');
        }
    }
}

/// Bytes a record may carry: valid messages (names that need escapes included), every class of
/// bad message, arbitrary bytes.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    let valid = (
        1..=6i64,
        3_400_000..13_000_000i64,
        0..2_000i64,
        1..=300i64,
        (0.0..250.0f64, 0..=100u8),
        "[a-zA-Z0-9 \"\\\\\n\t/\u{e9}\u{2028}\u{1F6B2}]{0,12}",
        any::<bool>(),
    )
        .prop_map(
            |(class, race, racer, second, (cadence, resistance), name, last)| {
                let message = Message::new(class, race, racer)
                    .second(second)
                    .effort((cadence * 10.0).round() / 10.0, f64::from(resistance))
                    .name(&name);
                if last { message.finish() } else { message }.to_json()
            },
        );
    let bad = prop::sample::select(bad_messages()).prop_map(|(_, bytes)| bytes);
    let rules = (1..=9i64, 0..400i64)
        .prop_map(|(class, second)| Message::new(class, 5_400_172, 8).second(second).to_json());
    prop_oneof![
        6 => valid,
        2 => bad,
        1 => rules,
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ]
}

/// Values of fields nobody reads, all of which the fast path skips itself.
fn ignored_value() -> impl Strategy<Value = Json> {
    let leaf = prop::sample::select(vec![
        "0",
        "-0",
        "12",
        "-7",
        "1.5",
        "-0.25",
        "98765432109876543210",
        "true",
        "false",
        "null",
        "\"x\"",
        "\"\u{e9}t\u{e9}\"",
        "\"\"",
    ])
    .prop_map(raw_json);
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::vec(("[a-z]{1,3}", inner), 0..4).prop_map(|members| {
                Json::Object(members.into_iter().map(|(k, j)| (key(&k), j)).collect())
            }),
        ]
    })
}

/// Fields beyond those a record or an event defines.
fn extra_fields() -> impl Strategy<Value = Vec<(String, Json)>> {
    prop::collection::vec(
        (
            prop::sample::select(vec!["extra", "Data", "recordid", "lambdaArn", "\u{e9}"]),
            ignored_value(),
        )
            .prop_map(|(name, value)| (key(name), value)),
        0..=2,
    )
}

/// The parts of one record, as Firehose sends them unless a flaw changed one.
#[derive(Clone, Debug)]
struct RecordSpec {
    payload: Vec<u8>,
    id: Option<Json>,
    timestamp: Option<Json>,
    data: Option<Json>,
    metadata: Option<Json>,
    extra: Vec<(String, Json)>,
    /// A field (by position) written twice.
    duplicate: Option<usize>,
    /// Shuffles the fields (unless `in_order`).
    order: u64,
    /// Keeps the fields in Firehose's order: `recordId`, `approximateArrivalTimestamp`, `data`,
    /// `kinesisRecordMetadata`, then any others.
    in_order: bool,
    /// The whole element, when it is not a record at all.
    replaced: Option<Json>,
}

fn metadata_members(subsequence: &str, partition_key: &str) -> Vec<(String, Json)> {
    vec![
        (key("shardId"), string("shardId-000000000000")),
        (key("partitionKey"), raw_json(partition_key)),
        (
            key("approximateArrivalTimestamp"),
            raw_json("1619185789847"),
        ),
        (
            key("sequenceNumber"),
            string("49590338271490256608559692538361571095921575989136588900"),
        ),
        (key("subsequenceNumber"), raw_json(subsequence)),
    ]
}

impl RecordSpec {
    fn new(payload: Vec<u8>, id: &str) -> Self {
        Self {
            id: Some(string(id)),
            timestamp: Some(raw_json("1619185789847")),
            data: Some(string(&STANDARD.encode(&payload))),
            metadata: Some(Json::Object(metadata_members("0", "\"8\""))),
            payload,
            extra: Vec::new(),
            duplicate: None,
            order: 0,
            in_order: false,
            replaced: None,
        }
    }

    fn to_json(&self) -> Json {
        if let Some(replaced) = &self.replaced {
            return replaced.clone();
        }
        let mut members: Vec<_> = [
            ("recordId", &self.id),
            ("approximateArrivalTimestamp", &self.timestamp),
            ("data", &self.data),
            ("kinesisRecordMetadata", &self.metadata),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((key(name), value.clone()?)))
        .collect();
        members.extend(self.extra.iter().cloned());
        if let Some(twice) = self.duplicate
            && !members.is_empty()
        {
            let copy = members[twice % members.len()].clone();
            members.push(copy);
        }
        let len = if self.in_order { 0 } else { members.len() };
        for i in 0..len {
            let j = usize::try_from(self.order.rotate_left(u32::try_from(i * 7).unwrap())).unwrap()
                % len;
            members.swap(i, j);
        }
        Json::Object(members)
    }
}

/// Records as Firehose sends them, varied in everything the fast path must still answer itself.
fn record_spec(position: usize) -> impl Strategy<Value = RecordSpec> {
    let firehose_id = format!("49617596128959546022271020452{position:09}000000000000");
    (
        payload(),
        prop_oneof![
            3 => Just(firehose_id),
            // Copied as is: no escapes, any UTF-8.
            1 => "[a-zA-Z0-9 /=+\u{e9}\u{7f}\u{2028}\u{1F6B2}-]{0,12}",
        ],
        prop_oneof![Just(1_619_185_789_847u64), 0..4_102_444_800_000u64],
        prop_oneof![
            6 => (any::<bool>(), any::<bool>(), extra_fields()).prop_map(
                |(reverse, null_key, extra)| {
                    let key = if null_key { "null" } else { "\"8\"" };
                    let mut fields = metadata_members("0", key);
                    fields.extend(extra);
                    if reverse {
                        fields.reverse();
                    }
                    Some(Json::Object(fields))
                }
            ),
            1 => Just(Some(raw_json("null"))),
            1 => Just(None),
        ],
        extra_fields(),
        any::<u64>(),
    )
        .prop_map(|(payload, id, timestamp, metadata, extra, order)| {
            let mut spec = RecordSpec::new(payload, &id);
            spec.timestamp = Some(raw_json(&timestamp.to_string()));
            spec.metadata = metadata;
            spec.extra = extra;
            spec.order = order;
            spec
        })
}

/// JSON values, valid or not, that the fast path leaves to the typed path.
fn odd_values() -> Vec<String> {
    let mut values: Vec<String> = [
        "1e5",
        "2E-3",
        "1.",
        "01",
        "-",
        "\"a\\nb\"",
        "\"\\u00e9\"",
        "\"\\ud800\"",
        "nul",
        "\"\u{1}\"",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\" 1}",
    ]
    .map(str::to_owned)
    .into();
    // Deeper than the fast path skips, then deeper than serde_json reads.
    values.push(format!("{}{}", "[".repeat(20), "]".repeat(20)));
    values.push(format!("{}{}", "[".repeat(200), "]".repeat(200)));
    values
}

/// One way to make a record odd: a value the typed path reads differently, or not at all.
type RecordFlaw = Box<dyn Fn(&mut RecordSpec)>;

/// Every record flaw tried: each changes one part of a record.
fn record_flaws() -> Vec<RecordFlaw> {
    let mut flaws: Vec<RecordFlaw> = Vec::new();
    for id in [
        "\"\\u0041bc\"",
        "\"a\\/b\"",
        "\"a\\\"b\"",
        "\"\\n\"",
        "\"\u{1}\"",
        "null",
        "5",
        "[]",
    ] {
        flaws.push(Box::new(move |r| r.id = Some(raw_json(id))));
    }
    flaws.push(Box::new(|r| r.id = None));
    // A fraction of a millisecond would panic the typed path's decoding (in `aws_lambda_events`),
    // so none is tried; Firehose never sends one.
    for timestamp in [
        "\"1619185789847\"",
        "1.0",
        "1e3",
        "-5",
        "-0",
        "01",
        "1234567890123456",
        "123456789012345678",
        "99999999999999999999999",
        "null",
        "true",
    ] {
        flaws.push(Box::new(move |r| r.timestamp = Some(raw_json(timestamp))));
    }
    flaws.push(Box::new(|r| r.timestamp = None));
    for data in [
        "\"@@not base64@@\"",
        "\"QR==\"",
        "\"QQ\"",
        "\"QQ=\"",
        "\"QUJD\\n\"",
        "\"QUJD\n\"",
        "\"QUJDRA==\u{e9}\"",
        "null",
        "12",
        "{}",
        "[\"QUJD\"]",
    ] {
        flaws.push(Box::new(move |r| r.data = Some(raw_json(data))));
    }
    flaws.push(Box::new(|r| r.data = None));
    flaws.push(Box::new(|r| {
        r.data = Some(string(&STANDARD_NO_PAD.encode(&r.payload)));
    }));
    // `\/` is `/` to JSON: the typed path decodes it, the fast path leaves escapes to it.
    flaws.push(Box::new(|r| {
        let text = serde_json::to_string(&STANDARD.encode(&r.payload)).unwrap();
        r.data = Some(raw_json(&format!("\"\\/{}", &text[1..])));
    }));
    for subsequence in ["-0", "-1", "1.5", "\"0\"", "00", "null", "1e2"] {
        flaws.push(Box::new(move |r| {
            r.metadata = Some(Json::Object(metadata_members(subsequence, "\"8\"")));
        }));
    }
    for partition_key in ["8", "\"\\u0038\"", "[]"] {
        flaws.push(Box::new(move |r| {
            r.metadata = Some(Json::Object(metadata_members("0", partition_key)));
        }));
    }
    for field in 0..5 {
        flaws.push(Box::new(move |r| {
            let mut members = metadata_members("0", "\"8\"");
            members.remove(field);
            r.metadata = Some(Json::Object(members));
        }));
        flaws.push(Box::new(move |r| {
            let mut members = metadata_members("0", "\"8\"");
            members.push(members[field].clone());
            r.metadata = Some(Json::Object(members));
        }));
    }
    for metadata in ["5", "\"x\"", "[]", "{}", "true"] {
        flaws.push(Box::new(move |r| r.metadata = Some(raw_json(metadata))));
    }
    for value in odd_values() {
        flaws.push(Box::new(move |r| {
            r.extra.push((key("odd"), raw_json(&value)));
        }));
    }
    flaws.push(Box::new(|r| {
        // `data` again, spelled with an escape.
        r.extra.push(("\"d\\u0061ta\"".to_owned(), string("QUJD")));
    }));
    for field in 0..4 {
        flaws.push(Box::new(move |r| r.duplicate = Some(field)));
    }
    for element in ["5", "\"x\"", "[]", "null", "{}", "[{}]"] {
        flaws.push(Box::new(move |r| r.replaced = Some(raw_json(element))));
    }
    flaws
}

/// An event's parts beyond its records.
#[derive(Clone, Debug)]
struct EventSpec {
    records: Vec<RecordSpec>,
    arn: Json,
    extra: Vec<(String, Json)>,
    /// Where `records` goes among the other fields.
    records_at: usize,
    /// Whitespace between tokens.
    spacing: Vec<u8>,
    /// Members added after the others (duplicates, odd fields).
    more: Vec<(String, Json)>,
    without_records: bool,
    trailer: &'static str,
}

impl EventSpec {
    fn new(records: Vec<RecordSpec>) -> Self {
        Self {
            records,
            arn: string("arn:aws:firehose:us-east-1:123456789012:deliverystream/alleycat"),
            extra: Vec::new(),
            records_at: 0,
            spacing: Vec::new(),
            more: Vec::new(),
            without_records: false,
            trailer: "",
        }
    }

    fn to_json(&self) -> String {
        let mut members = vec![
            (
                key("invocationId"),
                string("0a6f5c5c-1a3f-4f4e-9d1c-5f3c1c0b7b1a"),
            ),
            (key("deliveryStreamArn"), self.arn.clone()),
            (key("region"), string("us-east-1")),
        ];
        members.extend(self.extra.iter().cloned());
        if !self.without_records {
            let records = Json::Array(self.records.iter().map(RecordSpec::to_json).collect());
            members.insert(
                self.records_at.min(members.len()),
                (key("records"), records),
            );
        }
        members.extend(self.more.iter().cloned());
        let mut text = String::new();
        let mut spacing = Spacing {
            choices: &self.spacing,
            next: 0,
        };
        spacing.write(&mut text);
        render(&Json::Object(members), &mut spacing, &mut text);
        spacing.write(&mut text);
        text.push_str(self.trailer);
        text
    }
}

type EventFlaw = Box<dyn Fn(&mut EventSpec)>;

/// Every event flaw tried: each changes one part of an event beyond its records.
fn event_flaws() -> Vec<EventFlaw> {
    let mut flaws: Vec<EventFlaw> = Vec::new();
    for arn in ["5", "\"a\\/b\"", "{}", "[]", "\"x\" \"y\""] {
        flaws.push(Box::new(move |e| e.arn = raw_json(arn)));
    }
    for value in odd_values() {
        flaws.push(Box::new(move |e| {
            e.more.push((key("odd"), raw_json(&value)));
        }));
    }
    // Vertical tab and form feed are whitespace to many, not to JSON.
    for trailer in ["x", "{}", "]", ",", "\u{0}", "\u{b}", "\u{c}"] {
        flaws.push(Box::new(move |e| e.trailer = trailer));
    }
    flaws.push(Box::new(|e| {
        e.more.push((key("records"), Json::Array(Vec::new())));
    }));
    flaws.push(Box::new(|e| {
        e.more.push((key("region"), string("eu-west-1")));
    }));
    flaws.push(Box::new(|e| e.more.push((key("region"), raw_json("null")))));
    flaws.push(Box::new(|e| {
        // `records` again, spelled with an escape.
        e.more
            .push(("\"rec\\u006frds\"".to_owned(), Json::Array(Vec::new())));
    }));
    flaws.push(Box::new(|e| e.without_records = true));
    flaws
}

/// A flaw, with probability `chance`: by index into [`record_flaws`] with the record it applies
/// to (any number, taken modulo the records), or into [`event_flaws`].
type Flaw = Option<(Option<usize>, usize)>;

fn flaw(chance: f64) -> impl Strategy<Value = Flaw> {
    prop::option::weighted(
        chance,
        prop_oneof![
            3 => (0..record_flaws().len(), any::<usize>()).prop_map(|(f, at)| (Some(at), f)),
            1 => (0..event_flaws().len()).prop_map(|f| (None, f)),
        ],
    )
}

/// Applies `flaw` to `event`: whether it made something odd (a record flaw needs a record).
fn apply(flaw: Flaw, event: &mut EventSpec) -> bool {
    let len = event.records.len();
    match flaw {
        Some((Some(at), f)) if len > 0 => {
            record_flaws()[f](&mut event.records[at % len]);
            true
        }
        Some((None, f)) => {
            event_flaws()[f](event);
            true
        }
        _ => false,
    }
}

/// A whole event shaped as Firehose sends it, varied in everything the fast path must still
/// answer itself, and whether a flaw made something odd (by index into [`record_flaws`] for
/// one record, or [`event_flaws`]), after which it may leave the event to the typed path.
fn event() -> impl Strategy<Value = (String, bool)> {
    let records = (0..6usize).prop_flat_map(|n| (0..n).map(record_spec).collect::<Vec<_>>());
    let flaw = flaw(0.7);
    (
        records,
        prop_oneof![
            3 => Just(string("arn:aws:firehose:us-east-1:123456789012:deliverystream/alleycat")),
            1 => Just(raw_json("null")),
        ],
        extra_fields(),
        0..4usize,
        prop::option::weighted(0.9, prop::collection::vec(any::<u8>(), 1..64)),
        flaw,
    )
        .prop_map(|(records, arn, extra, records_at, spacing, flaw)| {
            let mut event = EventSpec::new(records);
            event.arn = arn;
            event.extra = extra;
            event.records_at = records_at;
            event.spacing = spacing.unwrap_or_default();
            let flawed = apply(flaw, &mut event);
            (event.to_json(), !flawed)
        })
}

/// Three records as Firehose sends them: a valid message, an invalid one, a valid one.
fn base_event() -> EventSpec {
    let valid = Message::new(3, 5_400_172, 8).to_json();
    EventSpec::new(vec![
        RecordSpec::new(valid.clone(), "record-0"),
        RecordSpec::new(b"not json".to_vec(), "record-1"),
        RecordSpec::new(valid, "record-2"),
    ])
}

/// Bytes that are not UTF-8 where the fast path copies or skips a string.
#[test]
fn invalid_utf8_in_the_envelope_is_answered_as_the_typed_path_does() -> TestResult {
    let config = Config::default();
    let json = base_event().to_json();
    for (marker, replacement) in [
        ("record-1", &b"rec\xc3ord"[..]),
        ("record-1", b"rec\xffrd-1"),
        ("us-east-1", b"us-\xed\xa0\x80"),
        ("shardId-000000000000", b"shard\xe9"),
        ("record-2", b"r\xc3\xa9cord-2"),
    ] {
        let at = json.find(marker).ok_or(marker)?;
        let mut event = json.as_bytes()[..at].to_vec();
        event.extend_from_slice(replacement);
        event.extend_from_slice(&json.as_bytes()[at + marker.len()..]);
        check(&event, config).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Every flaw alone, in the middle record or in the event: whatever the random mix misses.
#[test]
fn every_flaw_alone_is_answered_as_the_typed_path_does() -> TestResult {
    let config = Config::default();
    let base = base_event();
    assert!(check(base.to_json().as_bytes(), config).map_err(|e| e.to_string())?);
    let mut fast = 0;
    for (i, flaw) in record_flaws().iter().enumerate() {
        let mut event = base.clone();
        flaw(&mut event.records[1]);
        let json = event.to_json();
        fast += usize::from(
            check(json.as_bytes(), config).map_err(|e| format!("record flaw {i}: {e}"))?,
        );
    }
    for (i, flaw) in event_flaws().iter().enumerate() {
        let mut event = base.clone();
        flaw(&mut event);
        let json = event.to_json();
        fast += usize::from(
            check(json.as_bytes(), config).map_err(|e| format!("event flaw {i}: {e}"))?,
        );
    }
    eprintln!(
        "{fast} of {} flaws answered by the fast path",
        record_flaws().len() + event_flaws().len()
    );
    Ok(())
}

proptest! {
    // No regression files: the flaws worth keeping are all in `record_flaws` and `event_flaws`.
    #![proptest_config(ProptestConfig {
        cases: 2048,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn handle_raw_answers_every_event_as_the_typed_path_does((event, regular) in event()) {
        let config = Config::default();
        let fast = check(event.as_bytes(), config)?;
        prop_assert!(fast || !regular, "a Firehose-shaped event left the fast path: {}", event);
    }

    #[test]
    fn handle_raw_agrees_on_arbitrary_bytes(event in prop::collection::vec(any::<u8>(), 0..64)) {
        check(&event, Config::default())?;
    }

    /// Records in Firehose's own order and compact take the predicted sequence of the envelope
    /// scanner, and device messages the domain's predicted-order scanner: both must answer as
    /// the typed path does, and an event without flaws must take the fast path.
    #[test]
    fn firehose_shaped_events_are_answered_as_the_typed_path_does(
        (event, regular) in firehose_event(),
    ) {
        let fast = check(event.as_bytes(), Config::default())?;
        prop_assert!(fast || !regular, "a Firehose-shaped event left the fast path: {}", event);
    }
}

#[test]
fn the_fixture_takes_the_fast_path() -> TestResult {
    let config = Config::default();
    assert!(
        check(FIREHOSE, config).map_err(|e| e.to_string())?,
        "fast path"
    );
    let (response, metrics) = fast(FIREHOSE, config).ok_or("fast path")?;
    let response: serde_json::Value = serde_json::from_slice(&response)?;
    assert_eq!(response["records"].as_array().map(Vec::len), Some(6));
    assert_eq!((metrics.get("Ok"), metrics.get("ProcessingFailed")), (3, 3));
    Ok(())
}

/// The shape of the benchmark's events, at a size where one reused buffer serves many records.
#[test]
fn a_large_batch_takes_the_fast_path() -> TestResult {
    let records: Vec<_> = (0..300u32)
        .map(|i| {
            let message = Message::new(1 + i64::from(i % 6), 5_400_172, i64::from(i))
                .name(&"n".repeat(usize::try_from(i % 70).unwrap()));
            serde_json::json!({
                "recordId": format!("id-{i}"),
                "approximateArrivalTimestamp": 1_620_051_628_707_u64,
                "data": STANDARD.encode(message.to_json()),
                "kinesisRecordMetadata": {
                    "sequenceNumber": "1", "subsequenceNumber": 0, "partitionKey": "8",
                    "shardId": "shardId-000000000000",
                    "approximateArrivalTimestamp": 1_620_051_628_707_u64
                }
            })
        })
        .collect();
    let event = serde_json::to_vec(&serde_json::json!({ "records": records }))?;
    let config = Config::default();
    assert!(
        check(&event, config).map_err(|e| e.to_string())?,
        "fast path"
    );
    let (_, metrics) = raw(&event, config)?;
    // Names over 64 characters are rejected.
    assert_eq!(metrics.get("ProcessingFailed"), 5 * 4);
    Ok(())
}

#[test]
fn events_that_are_not_firehose_events_fail_as_before() {
    let config = Config::default();
    for event in [
        &b""[..],
        b"[]",
        b"{}",
        b"{\"records\":{}}",
        b"{\"invocationId\":\"x\"}",
        b"{\"records\":[]} x",
        b"{\"records\":[],\"region\":5}",
    ] {
        let typed = typed(event, config);
        assert!(typed.is_err(), "{}", String::from_utf8_lossy(event));
        assert_eq!(raw(event, config), typed);
    }
}

/// Runs the served function on `event`, as `alleycat_aws::serve` does (its handler never waits).
fn serve(event: &str) -> (Result<Box<RawValue>, serde_json::Error>, Metrics) {
    let transformer = Transformer {
        config: Config::default(),
    };
    let event: Box<RawValue> = serde_json::from_str(event).unwrap();
    let mut metrics = Metrics::new(FUNCTION_NAME);
    let response = {
        let future = pin!(transformer.handle(event, &mut metrics));
        let Poll::Ready(response) = future.poll(&mut Context::from_waker(Waker::noop())) else {
            panic!("the handler never waits");
        };
        response
    };
    (response, metrics)
}

/// The `Function` the Lambda main serves: bytes through, the same response.
#[test]
fn the_served_function_answers_with_handle_raw() -> TestResult {
    let (response, metrics) = serve(std::str::from_utf8(FIREHOSE)?);
    let (expected, expected_metrics) = typed(FIREHOSE, Config::default())?;
    let response = response?;
    assert_eq!(response.get().as_bytes(), expected);
    assert_eq!(serde_json::to_vec(&response)?, expected);
    assert_eq!(metrics, expected_metrics);
    assert!(serve("{\"records\":5}").0.is_err());
    Ok(())
}

// ------------------------------------------- records and messages as Firehose and devices write them

/// A device message written as devices write it (compact, the keys in the line's order: the shape
/// the domain's predicted-order scanner reads), its arrival (plausible), and perhaps one value
/// in a form that scanner leaves to the general one (or out of range).
fn device_payload() -> impl Strategy<Value = (Vec<u8>, u64)> {
    (
        (
            any::<bool>(),
            1..=300i64,
            3_400_000..13_000_000i64,
            0..=1_000_000i64,
            1..=6i64,
            0..=2500u32,
            0..=100u32,
        ),
        "[a-zA-Z0-9 \u{e9}]{0,12}",
        prop::option::weighted(0.3, "[a-z0-9:-]{1,20}"),
        prop::option::weighted(
            0.4,
            (
                0..10usize,
                prop::sample::select(vec![
                    "01",
                    "-1",
                    "1.0",
                    "1e1",
                    "7.50",
                    "99999999999999999",
                    "0",
                    "\"x\"",
                    "null",
                ]),
            ),
        ),
    )
        .prop_map(
            |((last, second, race, racer, class, tenths, resistance), name, identity, odd)| {
                let start = race * 300_000 + 1_000;
                let timestamp = start + (second - 1) * 1000;
                let mut values = vec![
                    format!("\"{race}-{racer}-{second}\""),
                    format!("\"{}\"", if last { "final" } else { "update" }),
                    timestamp.to_string(),
                    second.to_string(),
                    race.to_string(),
                    format!("\"{name}\""),
                    racer.to_string(),
                    class.to_string(),
                    if tenths % 10 == 0 {
                        (tenths / 10).to_string()
                    } else {
                        format!("{}.{}", tenths / 10, tenths % 10)
                    },
                    resistance.to_string(),
                ];
                if let Some((field, value)) = odd {
                    value.clone_into(&mut values[field]);
                }
                let keys = [
                    "uuid",
                    "event",
                    "deviceTimestamp",
                    "second",
                    "raceId",
                    "name",
                    "racerId",
                    "classId",
                    "cadence",
                    "resistance",
                ];
                let mut fields: Vec<String> = keys
                    .iter()
                    .zip(&values)
                    .map(|(key, value)| format!("\"{key}\":{value}"))
                    .collect();
                if let Some(identity) = identity {
                    fields.push(format!("\"identityId\":\"{identity}\""));
                }
                // Any millisecond: about half of them are those `aws_lambda_events` alone
                // would read a millisecond early (the typed path reads them itself).
                let arrival = u64::try_from(timestamp).unwrap() + 123;
                (format!("{{{}}}", fields.join(",")).into_bytes(), arrival)
            },
        )
}

/// A record as Firehose writes it: its fields in Firehose's order, its message as devices write
/// it (any other payload a quarter of the time), arriving when its ride does.
fn firehose_record(position: usize) -> impl Strategy<Value = RecordSpec> {
    (
        record_spec(position),
        prop_oneof![3 => device_payload().prop_map(Some), 1 => Just(None)],
    )
        .prop_map(|(mut spec, payload)| {
            if let Some((payload, arrival)) = payload {
                spec.data = Some(string(&STANDARD.encode(&payload)));
                spec.timestamp = Some(raw_json(&arrival.to_string()));
                spec.payload = payload;
            }
            spec.in_order = true;
            spec
        })
}

/// A compact event of records as Firehose writes them, and whether a flaw made something odd.
fn firehose_event() -> impl Strategy<Value = (String, bool)> {
    let records = (0..6usize).prop_flat_map(|n| (0..n).map(firehose_record).collect::<Vec<_>>());
    let flaw = flaw(0.4);
    (records, flaw, 0..4usize).prop_map(|(records, flaw, records_at)| {
        let mut event = EventSpec::new(records);
        event.records_at = records_at;
        let flawed = apply(flaw, &mut event);
        (event.to_json(), !flawed)
    })
}

/// The benchmark's event shape, record by record: every message valid, plausible and copied.
#[test]
fn records_in_firehose_order_with_device_messages_are_answered_ok() -> TestResult {
    let records: Vec<RecordSpec> = (0..50u32)
        .map(|i| {
            let second = 1 + i64::from(i % 300);
            let timestamp = 1_620_051_600_000 + (second - 1) * 1000;
            let message = format!(
                r#"{{"uuid":"{i:08x}-62a2","event":"update","deviceTimestamp":{timestamp},"second":{second},"raceId":5400172,"name":"Racer {i}","racerId":{i},"classId":3,"cadence":74.{},"resistance":{}}}"#,
                i % 10,
                33 + i % 53
            );
            let mut spec = RecordSpec::new(message.into_bytes(), &format!("id-{i}"));
            spec.timestamp = Some(raw_json("1620051628707"));
            spec.in_order = true;
            spec
        })
        .collect();
    let event = EventSpec::new(records).to_json();
    let config = Config::default();
    assert!(
        check(event.as_bytes(), config).map_err(|e| e.to_string())?,
        "fast path"
    );
    let (_, metrics) = raw(event.as_bytes(), config)?;
    assert_eq!(
        (metrics.get("Ok"), metrics.get("ProcessingFailed")),
        (50, 0)
    );
    Ok(())
}
