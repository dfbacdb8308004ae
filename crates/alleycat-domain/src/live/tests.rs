use proptest::prelude::*;

use super::*;

fn race() -> RaceKey {
    RaceKey {
        class_id: 2,
        race_id: 5_400_172,
    }
}

/// `racers` racers with the largest ids there are (up to 1,000,000) and distinct outputs
/// spread from 60 to 260 with all four decimals, as in a real race: the largest message.
fn wide_race(racers: u32) -> Standings {
    let mut standings = Standings::new();
    let mut x = 0x9e37_79b9_u32;
    for i in 0..racers {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let output = 600_000 + x % 2_000_000;
        standings.record(1_000_000 - i, Output::from_ten_thousandths(output));
    }
    standings
}

#[test]
fn a_thousand_racers_fit_one_iot_message_with_exact_ranks() {
    let standings = wide_race(1000);
    let message = RealtimeMessage::of(race(), 1_620_051_629_000, &standings);
    let bytes = message.to_json().len();
    assert!(bytes <= MAX_LIVE_BYTES, "{bytes} bytes");
    assert_eq!(
        message.bests.step, 1,
        "0.0001: every rank exact ({bytes} bytes)"
    );
    assert_eq!(message.riders, 1000);
    let ranked = standings.ranked();
    assert_eq!(message.top, ranked[..LIVE_TOP]);
    // Every racer's rank from the buckets is its rank in the standings, up to equal outputs.
    for (i, (_, output)) in ranked.iter().enumerate() {
        let tied_above = ranked[..i].iter().filter(|(_, o)| o == output).count();
        assert_eq!(
            message.bests.rank_of(*output).unwrap(),
            (i + 1 - tied_above) as u64
        );
    }
}

#[test]
fn a_race_at_the_cap_still_fits_in_coarser_buckets() {
    for racers in [2000, 20_000, 100_000] {
        let message = RealtimeMessage::of(race(), 1, &wide_race(racers));
        let bytes = message.to_json().len();
        assert!(bytes <= MAX_LIVE_BYTES, "{racers} racers: {bytes} bytes");
        assert!(message.bests.step > 1, "{racers} racers");
        let counted: u64 = message.bests.buckets().unwrap().iter().map(|b| b.1).sum();
        assert_eq!(counted, u64::from(racers));
    }
}

#[test]
fn the_wire_shape_is_compact_json() {
    let mut standings = Standings::new();
    for (racer, output) in [(8, 1_517_880), (12, 1_402_500), (31, 985_000), (4, 985_000)] {
        standings.record(racer, Output::from_ten_thousandths(output));
    }
    let message = RealtimeMessage::of(race(), 7, &standings);
    let json: serde_json::Value = serde_json::from_slice(&message.to_json()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"msg": "standings", "classId": 2, "raceId": 5_400_172, "ts": 7,
            "riders": 4, "top": [[8, 151.788], [12, 140.25], [4, 98.5], [31, 98.5]],
            // 1517880 (gap 0, 1 racer), 1402500 (115379 empty buckets), 985000 (417499, 2).
            "bests": {"step": 1, "max": 1_517_880, "runs": "AAz1wDA723MB"}})
    );
    assert_eq!(
        message.bests.buckets().unwrap(),
        [(1_517_880, 1), (1_402_500, 1), (985_000, 2)]
    );
    let back: RealtimeMessage = serde_json::from_value(json).unwrap();
    assert_eq!(back, message);
}

#[test]
fn nobody_riding_is_an_empty_count() {
    let message = RealtimeMessage::of(race(), 1, &Standings::new());
    assert_eq!((message.riders, message.top.len()), (0, 0));
    assert_eq!(message.bests.buckets().unwrap(), []);
    assert_eq!(
        message.bests.rank_of(Output::from_ten_thousandths(5)),
        Ok(1)
    );
}

#[test]
fn damaged_runs_are_errors() {
    let bests = |runs: &str| Bests {
        step: 1,
        max: 10,
        runs: runs.to_owned(),
    };
    assert_eq!(bests("A!").buckets(), Err(BestsError::Character('!')));
    assert_eq!(bests("A").buckets(), Err(BestsError::Truncated));
    assert_eq!(bests("Ag").buckets(), Err(BestsError::Truncated));
    // A gap of 11 below a maximum of 10.
    assert_eq!(bests("LA").buckets(), Err(BestsError::Range));
    assert_eq!(bests(&"_".repeat(20)).buckets(), Err(BestsError::Range));
}

proptest! {
    #[test]
    fn buckets_count_every_best(
        outputs in proptest::collection::vec(0u32..=u32::MAX, 0..300),
        step in prop::sample::select(STEPS.to_vec()),
    ) {
        let mut outputs = outputs;
        outputs.sort_unstable_by(|a, b| b.cmp(a));
        let bests = Bests::count(&outputs, step);
        let buckets = bests.buckets().unwrap();
        let mut expected: Vec<(u64, u64)> = Vec::new();
        for o in &outputs {
            let b = u64::from(o / step);
            match expected.last_mut() {
                Some((last, n)) if *last == b => *n += 1,
                _ => expected.push((b, 1)),
            }
        }
        prop_assert_eq!(&buckets, &expected);
        for o in &outputs {
            let above = outputs.iter().filter(|x| *x / step > o / step).count() as u64;
            prop_assert_eq!(bests.rank_of(Output::from_ten_thousandths(*o)).unwrap(), above + 1);
        }
    }
}
