//! Property tests: the merge laws of every view, top-K against brute force, codec round trips,
//! and the fast parser against serde_json.

use std::collections::BTreeMap;

use alleycat_domain::{
    ClassHistory, DeviceMessage, LeaderboardEntry, MaxMerge, Output, RaceClock, RacerSample,
    Reading, SecondSeries, Standings, sample_hash,
};
use proptest::collection::vec;
use proptest::prelude::*;

// ---------------------------------------------------------------- generators

/// Small ranges on purpose: ties and repeated racers are where max-merges and top-K go wrong.
fn output() -> impl Strategy<Value = Output> {
    (0u32..40).prop_map(|v| Output::from_ten_thousandths(v * 2500))
}

fn standings() -> impl Strategy<Value = Standings> {
    vec((0u32..12, output()), 0..20).prop_map(|pairs| pairs.into_iter().collect())
}

fn series() -> impl Strategy<Value = SecondSeries> {
    vec((0u16..10, output()), 0..20).prop_map(|pairs| pairs.into_iter().collect())
}

fn leaderboard_entry() -> impl Strategy<Value = LeaderboardEntry> {
    (
        output(),
        1u64..4,
        0u64..3,
        prop::sample::select(vec!["Adell", "Bo"]),
    )
        .prop_map(|(best, race_id, updated_at, name)| LeaderboardEntry {
            racer_id: 8,
            name: name.to_owned(),
            best,
            race_id,
            updated_at,
        })
}

type Record = (u16, u32, Output);

fn records(max: usize) -> impl Strategy<Value = Vec<Record>> {
    vec((1u16..5, 0u32..15, output()), 0..max)
}

fn history_with(k: u32, records: &[Record], updated_at: u64) -> ClassHistory {
    let mut history = ClassHistory::new(3, k);
    for &(second, racer, output) in records {
        history.record(second, racer, output);
    }
    history.touch(updated_at);
    history
}

fn history() -> impl Strategy<Value = ClassHistory> {
    (0u32..5, records(40), 0u64..5).prop_map(|(k, r, t)| history_with(k, &r, t))
}

fn merged<T: MaxMerge + Clone>(a: &T, b: &T) -> T {
    let mut out = a.clone();
    out.merge(b);
    out
}

fn assert_laws<T: MaxMerge + Clone + PartialEq + std::fmt::Debug>(a: &T, b: &T, c: &T) {
    assert_eq!(&merged(a, a), a, "idempotent");
    assert_eq!(merged(a, b), merged(b, a), "commutative");
    assert_eq!(
        merged(&merged(a, b), c),
        merged(a, &merged(b, c)),
        "associative"
    );
    let mut again = merged(a, b);
    assert!(
        !again.merge(b),
        "merging what is already in reports no change"
    );
}

/// Top-K by brute force: every racer's best at each second, ranked, cut at K.
fn brute_force_top_k(records: &[Record], k: u32) -> BTreeMap<u16, Vec<(u32, Output)>> {
    let mut best: BTreeMap<u16, BTreeMap<u32, Output>> = BTreeMap::new();
    for &(second, racer, output) in records {
        let slot = best
            .entry(second)
            .or_default()
            .entry(racer)
            .or_insert(output);
        *slot = (*slot).max(output);
    }
    best.into_iter()
        .map(|(second, racers)| {
            let mut ranked: Vec<_> = racers.into_iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            if k > 0 {
                ranked.truncate(k as usize);
            }
            (second, ranked)
        })
        .collect()
}

fn ranked_by_second(history: &ClassHistory) -> BTreeMap<u16, Vec<(u32, Output)>> {
    (1..=history.last_second())
        .map(|s| (s, history.ranked(s)))
        .filter(|(_, r)| !r.is_empty())
        .collect()
}

// ---------------------------------------------------------------- merge laws

proptest! {
    #[test]
    fn standings_merge_is_a_lattice_join(a in standings(), b in standings(), c in standings()) {
        assert_laws(&a, &b, &c);
    }

    #[test]
    fn series_merge_is_a_lattice_join(a in series(), b in series(), c in series()) {
        assert_laws(&a, &b, &c);
    }

    #[test]
    fn leaderboard_merge_is_a_lattice_join(
        a in leaderboard_entry(), b in leaderboard_entry(), c in leaderboard_entry()
    ) {
        assert_laws(&a, &b, &c);
    }

    #[test]
    fn history_merge_is_a_lattice_join(a in history(), b in history(), c in history()) {
        assert_laws(&a, &b, &c);
    }

    #[test]
    fn standings_keep_each_racers_maximum(pairs in vec((0u32..12, output()), 0..40)) {
        let standings: Standings = pairs.iter().copied().collect();
        for (racer, best) in standings.results() {
            let expected = pairs.iter().filter(|p| p.0 == *racer).map(|p| p.1).max();
            prop_assert_eq!(Some(*best), expected);
        }
        prop_assert_eq!(
            standings.len(),
            pairs.iter().map(|p| p.0).collect::<std::collections::BTreeSet<_>>().len()
        );
    }

    #[test]
    fn leaderboard_only_replaces_on_a_strictly_better_record(
        current in leaderboard_entry(), candidate in leaderboard_entry()
    ) {
        let replaces = candidate.beats(Some(&current));
        prop_assert_eq!(
            replaces,
            candidate.best > current.best
                || (candidate.best == current.best && candidate.race_id < current.race_id)
                || (candidate.best == current.best
                    && candidate.race_id == current.race_id
                    && candidate.record_order(&current) == std::cmp::Ordering::Greater)
        );
        prop_assert!(candidate.beats(None));
        prop_assert!(!current.beats(Some(&current)), "an equal row is not a new record");
    }
}

// ---------------------------------------------------------------- top-K

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn incremental_top_k_equals_brute_force(k in 0u32..6, stream in records(200)) {
        let history = history_with(k, &stream, 0);
        prop_assert_eq!(ranked_by_second(&history), brute_force_top_k(&stream, k));
    }

    #[test]
    fn merging_partial_histories_equals_brute_force(
        k in 0u32..6, stream in records(200), cuts in vec(any::<prop::sample::Index>(), 0..4)
    ) {
        // Split the stream into chunks at random points, build one history per chunk, merge.
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        bounds.extend([0, stream.len()]);
        bounds.sort_unstable();
        let mut total = ClassHistory::new(3, k);
        for pair in bounds.windows(2) {
            total.merge(&history_with(k, &stream[pair[0]..pair[1]], 0));
        }
        prop_assert_eq!(ranked_by_second(&total), brute_force_top_k(&stream, k));
    }

    #[test]
    fn a_smaller_k_is_exact_after_merging(small in 1u32..4, stream in records(100)) {
        let mut all = history_with(0, &stream, 0);
        all.merge(&history_with(small, &[], 0));
        prop_assert_eq!(all.top_k(), small);
        prop_assert_eq!(ranked_by_second(&all), brute_force_top_k(&stream, small));
    }
}

// ---------------------------------------------------------------- racer sample

/// Outputs with fractions, so flooring to whole units is exercised.
fn fine_output() -> impl Strategy<Value = Output> {
    (0u32..60_000).prop_map(|v| Output::from_ten_thousandths(v * 7))
}

fn sample_records(max: usize) -> impl Strategy<Value = Vec<Record>> {
    vec((1u16..5, 0u32..30, fine_output()), 0..max)
}

fn sample_with(size: u32, records: &[Record]) -> RacerSample {
    let mut sample = RacerSample::new(size);
    for &(second, racer, output) in records {
        sample.record(second, racer, output);
    }
    sample
}

fn sample() -> impl Strategy<Value = RacerSample> {
    (0u32..6, sample_records(60)).prop_map(|(s, r)| sample_with(s, &r))
}

/// The sample by brute force: every racer's best per second in whole units, the S racers with
/// the smallest (hash, id).
fn brute_force_sample(records: &[Record], size: u32) -> Vec<(u32, Vec<Option<u32>>)> {
    let mut best: BTreeMap<u32, BTreeMap<u16, u32>> = BTreeMap::new();
    for &(second, racer, output) in records {
        let units = output.ten_thousandths() / Output::SCALE;
        let slot = best
            .entry(racer)
            .or_default()
            .entry(second)
            .or_insert(units);
        *slot = (*slot).max(units);
    }
    let mut racers: Vec<u32> = best.keys().copied().collect();
    racers.sort_unstable_by_key(|&r| (sample_hash(r), r));
    racers.truncate(size as usize);
    racers.sort_unstable();
    racers
        .into_iter()
        .map(|racer| {
            let seconds = &best[&racer];
            let last = *seconds.keys().next_back().unwrap_or(&0);
            let values = (1..=last).map(|s| seconds.get(&s).copied()).collect();
            (racer, values)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn sample_merge_is_a_lattice_join(a in sample(), b in sample(), c in sample()) {
        assert_laws(&a, &b, &c);
    }

    #[test]
    fn incremental_sample_equals_brute_force(size in 0u32..8, stream in sample_records(200)) {
        prop_assert_eq!(sample_with(size, &stream).members(), brute_force_sample(&stream, size));
    }

    #[test]
    fn merging_partial_samples_equals_brute_force(
        size in 0u32..8, stream in sample_records(200), cuts in vec(any::<prop::sample::Index>(), 0..4)
    ) {
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        bounds.extend([0, stream.len()]);
        bounds.sort_unstable();
        // Merge the chunks in reverse order too: the result may not depend on it.
        let mut forward = RacerSample::new(size);
        let mut backward = RacerSample::new(size);
        for pair in bounds.windows(2) {
            forward.merge(&sample_with(size, &stream[pair[0]..pair[1]]));
        }
        for pair in bounds.windows(2).rev() {
            backward.merge(&sample_with(size, &stream[pair[0]..pair[1]]));
        }
        prop_assert_eq!(forward.members(), brute_force_sample(&stream, size));
        prop_assert_eq!(&forward, &backward);
    }

    #[test]
    fn sampled_history_object_round_trips(size in 0u32..8, k in 0u32..4, stream in sample_records(120)) {
        let mut history = ClassHistory::new(3, k).with_sample_size(size);
        for &(second, racer, output) in &stream {
            history.record(second, racer, output);
        }
        let decoded = ClassHistory::decode_gzip(&history.encode_gzip(), 3, 77).unwrap();
        prop_assert_eq!(decoded.sample().members(), history.sample().members());
        prop_assert_eq!(decoded.to_json(), history.to_json());
    }
}

// ---------------------------------------------------------------- codecs

proptest! {
    #[test]
    fn history_object_round_trips(history in history()) {
        let bytes = history.encode_gzip();
        let decoded = ClassHistory::decode_gzip(&bytes, 3, 77).unwrap();
        prop_assert_eq!(&decoded, &history);
        prop_assert_eq!(decoded.to_json(), history.to_json());
    }

    #[test]
    fn output_json_round_trips(units in 0u32..=u32::MAX) {
        let output = Output::from_ten_thousandths(units);
        let json = serde_json::to_string(&output).unwrap();
        prop_assert_eq!(serde_json::from_str::<Output>(&json).unwrap(), output);
        prop_assert_eq!(
            output.to_string().parse::<f64>().unwrap().to_bits(),
            output.as_f64().to_bits()
        );
    }

    #[test]
    fn series_json_round_trips(series in series()) {
        let json = serde_json::to_string(&series).unwrap();
        prop_assert_eq!(serde_json::from_str::<SecondSeries>(&json).unwrap(), series);
    }

    #[test]
    fn standings_json_round_trips(standings in standings()) {
        let json = serde_json::to_string(&standings).unwrap();
        prop_assert_eq!(serde_json::from_str::<Standings>(&json).unwrap(), standings);
    }

    #[test]
    fn reading_line_round_trips(message in valid_message()) {
        let reading = Reading::from_json(message.as_bytes(), RaceClock::default()).unwrap();
        let mut line = Vec::new();
        reading.write_json_line(&mut line);
        prop_assert_eq!(
            line.iter().position(|&b| b == b'\n'),
            Some(line.len() - 1),
            "exactly one line"
        );
        let again = Reading::from_json(line.trim_ascii_end(), RaceClock::default()).unwrap();
        prop_assert_eq!(&again, &reading);
        // The hand-written line is exactly what serde_json writes for the struct.
        let mut reference = serde_json::to_vec(&reading).unwrap();
        reference.push(b'\n');
        prop_assert_eq!(line, reference);
    }
}

proptest! {
    #[test]
    fn reading_lines_escape_any_name_like_serde_json(
        name in vec(any::<char>(), 0..64).prop_map(String::from_iter),
        uuid in prop::option::of(vec(any::<char>(), 0..40).prop_map(String::from_iter)),
        identity in prop::option::of(vec(any::<char>(), 1..30).prop_map(String::from_iter)),
        arrived_at in prop::option::of(1_000_000_000_000u64..4_000_000_000_000),
    ) {
        let message = serde_json::json!({
            "uuid": uuid, "event": "final", "deviceTimestamp": 1_620_051_628_707_u64,
            "second": 300, "raceId": 5_400_172, "name": name, "racerId": 8, "classId": 3,
            "cadence": 74.2, "resistance": 74, "identityId": identity, "arrivedAt": arrived_at
        });
        let bytes = serde_json::to_vec(&message).unwrap();
        let reading = Reading::from_json(&bytes, RaceClock::default()).unwrap();
        let mut line = Vec::new();
        reading.write_json_line(&mut line);
        let mut reference = serde_json::to_vec(&reading).unwrap();
        reference.push(b'\n');
        prop_assert_eq!(&line, &reference);
        let again = Reading::from_json(line.trim_ascii_end(), RaceClock::default()).unwrap();
        prop_assert_eq!(again, reading);
    }
}

// ---------------------------------------------------------------- fast parser vs serde_json

/// A valid message in the usual flat shape, with any field order and whitespace.
fn valid_message() -> impl Strategy<Value = String> {
    (
        (
            prop::option::of("[0-9a-f]{8}-[0-9a-f]{4}"),
            prop::bool::ANY,
            1_000_000_000_000i64..4_000_000_000_000,
            1i64..=300,
            1i64..10_000_000,
        ),
        (
            "[A-Za-z é🚲]{0,20}",
            0i64..=1_000_000,
            1i64..=6,
            0.0f64..=250.0,
            0.0f64..=100.0,
        ),
        Just(()).prop_perturb(|(), mut rng| rng.random::<u64>()),
        prop::sample::select(vec!["", " ", "\n\t "]),
    )
        .prop_map(
            |(
                (uuid, last, ts, second, race),
                (name, racer, class, cadence, resistance),
                order,
                ws,
            )| {
                let mut fields = vec![
                    format!(r#""event":"{}""#, if last { "final" } else { "update" }),
                    format!(r#""deviceTimestamp":{ts}"#),
                    format!(r#""second":{second}"#),
                    format!(r#""raceId":{race}"#),
                    format!(r#""name":"{name}""#),
                    format!(r#""racerId":{racer}"#),
                    format!(r#""classId":{class}"#),
                    format!(r#""cadence":{cadence}"#),
                    format!(r#""resistance":{resistance}"#),
                    r#""clientId":"bike-1""#.to_owned(),
                    r#""ingestTimestamp":1620051628731"#.to_owned(),
                ];
                if let Some(uuid) = uuid {
                    fields.push(format!(r#""uuid":"{uuid}""#));
                }
                // Deterministic shuffle from the drawn seed.
                let mut seed = order;
                for i in (1..fields.len()).rev() {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    fields.swap(i, (seed >> 33) as usize % (i + 1));
                }
                format!("{ws}{{{ws}{}{ws}}}{ws}", fields.join(&format!("{ws},{ws}")))
            },
        )
}

/// Number texts that stress the scanner's own number conversion.
fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| v.to_string()),
        (0.0f64..300.0).prop_map(|v| v.to_string()),
        (0u32..3000, 0u32..25).prop_map(|(m, z)| format!(
            "{}.{}{m}",
            m / 10,
            "0".repeat(z as usize)
        )),
        "-?(0|[1-9][0-9]{0,25})(\\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?",
        "-?0[0-9]{1,3}",
        Just("-0".to_owned()),
        Just("1.".to_owned()),
        Just("-".to_owned()),
    ]
}

/// Field values of every JSON type, including ones the fast path must defer on.
fn any_value() -> impl Strategy<Value = String> {
    prop_oneof![
        number_text(),
        "\"[a-z]{0,6}\"",
        Just(r#""upd\u0061te""#.to_owned()),
        Just(r#""a\"b""#.to_owned()),
        Just("\"caf\u{e9}\"".to_owned()),
        Just("\"update\"".to_owned()),
        Just("\"final\"".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("[1,2]".to_owned()),
        Just("{\"a\":1}".to_owned()),
    ]
}

fn mutated_message() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
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
        "clientId",
        "racerIdx",
        "caf\u{e9}",
        "na\\u006de",
    ]);
    (
        valid_message(),
        vec((keys, any_value()), 1..4),
        any::<bool>(),
    )
        .prop_map(|(base, extra, replace)| {
            let body = base
                .trim()
                .trim_start_matches('{')
                .trim_end_matches('}')
                .to_owned();
            let extra: Vec<String> = extra.iter().map(|(k, v)| format!(r#""{k}":{v}"#)).collect();
            if replace {
                // Only the mutated fields, plus the base: duplicates and type changes.
                format!("{{{},{body}}}", extra.join(","))
            } else {
                format!("{{{body},{}}}", extra.join(","))
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn the_fast_path_covers_ordinary_messages(message in valid_message()) {
        let fast = DeviceMessage::parse_fast_path(message.as_bytes());
        prop_assert!(fast.is_some(), "{}", message);
        prop_assert_eq!(fast, DeviceMessage::parse_with_serde(message.as_bytes()).ok());
    }

    #[test]
    fn the_fast_path_agrees_with_serde_json(message in mutated_message()) {
        let bytes = message.as_bytes();
        let reference = DeviceMessage::parse_with_serde(bytes);
        if let Some(fast) = DeviceMessage::parse_fast_path(bytes) {
            prop_assert_eq!(Ok(fast), reference.clone(), "{}", message);
        }
        prop_assert_eq!(DeviceMessage::parse(bytes), reference);
    }

    #[test]
    fn the_fast_path_converts_numbers_like_serde_json(text in number_text()) {
        for field in ["cadence", "second"] {
            let message = format!(
                r#"{{"event":"update","deviceTimestamp":1620051628707,"second":13,"raceId":5400172,"name":"A","racerId":8,"classId":3,"cadence":74.2,"resistance":74,"{field}":{text}}}"#
            );
            // The duplicate key sends the message to serde, so test the field on its own.
            let message = message.replacen(&format!(r#""{field}":{}"#, if field == "cadence" { "74.2" } else { "13" }), "", 1).replacen(",,", ",", 1);
            let bytes = message.as_bytes();
            let reference = DeviceMessage::parse_with_serde(bytes);
            if let Some(fast) = DeviceMessage::parse_fast_path(bytes) {
                prop_assert_eq!(Ok(fast.clone()), reference.clone(), "{}", message);
                if field == "cadence" {
                    prop_assert_eq!(fast.cadence.to_bits(), reference.unwrap().cadence.to_bits(), "{}", text);
                }
            }
        }
    }
}
