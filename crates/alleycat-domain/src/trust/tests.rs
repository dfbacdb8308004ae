use std::borrow::Cow;

use super::*;
use crate::message::{Event, Reading};
use crate::output::Output;

const RACE: u64 = 5_400_172;
const OPENS: u64 = RACE * 300_000;

fn reading(start_ms: u64, second: u16) -> Reading<'static> {
    Reading {
        uuid: None,
        event: Event::Update,
        device_timestamp: start_ms + (u64::from(second) - 1) * 1000,
        second,
        race_id: RaceClock::default().race_id_at(start_ms),
        name: Cow::Borrowed("Adell"),
        racer_id: 8,
        class_id: 3,
        cadence: 74.2,
        resistance: 74.0,
        output: Output::from_effort(74.2, 74.0),
        identity_id: None,
        arrived_at: None,
    }
}

#[test]
fn a_ride_in_real_time_is_plausible_from_start_to_finish() {
    let rules = Plausibility::default();
    let start = OPENS + 299_000;
    for second in [1, 150, 300] {
        let arrival = start + (u64::from(second) - 1) * 1000 + 150;
        assert_eq!(rules.check(&reading(start, second), arrival), Ok(()));
    }
}

#[test]
fn compressed_time_moves_arrival_earlier_never_the_start_later() {
    // `--speed 20`: second 300 of a ride arrives 15 s after its start, not 299 s.
    let rules = Plausibility::default();
    let start = OPENS + 10_000;
    for second in 1..=300u16 {
        let arrival = start + u64::from(second - 1) * 1000 / 20;
        assert_eq!(
            rules.check(&reading(start, second), arrival),
            Ok(()),
            "second {second}"
        );
    }
}

#[test]
fn race_id_must_be_the_window_of_the_start() {
    let rules = Plausibility::default();
    let mut forged = reading(OPENS + 1_000, 10);
    forged.race_id = RACE + 100_000;
    assert_eq!(
        rules.check(&forged, OPENS + 11_000),
        Err(Rejection::RaceMismatch {
            race_id: RACE + 100_000,
            start_race_id: RACE
        })
    );
    forged.race_id = 1;
    assert_eq!(forged.clone().race_id, 1);
    assert_eq!(
        rules.check(&forged, OPENS + 11_000).unwrap_err().rule(),
        "race_mismatch"
    );
}

#[test]
fn a_start_beyond_the_skew_is_future() {
    let rules = Plausibility::new(RaceClock::default(), 120);
    let arrival = OPENS + 1_000;
    assert_eq!(rules.check(&reading(arrival + 120_000, 1), arrival), Ok(()));
    let start = arrival + 120_001;
    assert_eq!(
        rules.check(&reading(start, 1), arrival),
        Err(Rejection::Future {
            start_ms: start,
            arrival_ms: arrival
        })
    );
    // A year ahead, consistently forged (race id of the forged start): still the future.
    let year = 365 * 86_400_000;
    assert_eq!(
        rules
            .check(&reading(arrival + year, 1), arrival)
            .unwrap_err()
            .rule(),
        "future"
    );
}

#[test]
fn data_after_the_race_closed_is_refused_ancient_races_included() {
    let rules = Plausibility::new(RaceClock::default(), 120);
    let closes = RaceClock::default().race_closes_at(RACE);
    let start = OPENS + 299_000;
    assert_eq!(rules.check(&reading(start, 300), closes + 120_000), Ok(()));
    assert_eq!(
        rules.check(&reading(start, 300), closes + 120_001),
        Err(Rejection::Closed {
            race_id: RACE,
            arrival_ms: closes + 120_001
        })
    );
    // 1970: a consistent ride of race 1, arriving today.
    let ancient = reading(300_000, 5);
    assert_eq!(ancient.race_id, 1);
    assert_eq!(rules.check(&ancient, OPENS).unwrap_err().rule(), "closed");
}

#[test]
fn admit_stamps_the_platform_arrival() {
    let mut r = reading(OPENS, 1);
    r.arrived_at = Some(1); // whatever a device claimed
    assert_eq!(Plausibility::default().admit(&mut r, OPENS + 500), Ok(()));
    assert_eq!(r.arrived_at, Some(OPENS + 500));
}

fn claim(identity: &str, claimed_at: u64, expires_at: u64) -> Claim {
    Claim {
        racer_id: 8,
        identity_id: identity.to_owned(),
        claimed_at,
        expires_at,
    }
}

#[test]
fn first_claim_wins_renewals_keep_the_tenure_and_lapsed_claims_free_the_racer() {
    let first = Claim::take(None, 8, "alice", 1_000, 60).unwrap();
    assert_eq!(first, claim("alice", 1_000, 61_000));
    assert_eq!(
        Claim::take(Some(&first), 8, "mallory", 2_000, 60),
        Err(Taken {
            racer_id: 8,
            expires_at: 61_000
        })
    );
    let renewed = Claim::take(Some(&first), 8, "alice", 30_000, 60).unwrap();
    assert_eq!(renewed, claim("alice", 1_000, 90_000));
    // Alice's own lapsed claim renews with its tenure: nobody took the racer in between.
    let late = Claim::take(Some(&renewed), 8, "alice", 100_000, 60).unwrap();
    assert_eq!(late.claimed_at, 1_000);
    // Lapsed: the next identity starts a new tenure.
    let bob = Claim::take(Some(&renewed), 8, "bob", 90_000, 60).unwrap();
    assert_eq!(bob, claim("bob", 90_000, 150_000));
}

#[test]
fn trusted_producers_need_no_claim() {
    assert_eq!(check_holder(&reading(OPENS, 1), None), Ok(()));
}

#[test]
fn an_identity_moves_views_only_while_it_holds_the_racer() {
    let mut r = reading(OPENS, 1);
    r.identity_id = Some(Cow::Borrowed("alice"));
    r.arrived_at = Some(5_000);
    let not_holder = Err(Rejection::NotHolder { racer_id: 8 });
    assert_eq!(check_holder(&r, None), not_holder);
    assert_eq!(
        check_holder(&r, Some(&claim("alice", 1_000, 10_000))),
        Ok(())
    );
    assert_eq!(
        check_holder(&r, Some(&claim("mallory", 1_000, 10_000))),
        not_holder
    );
    // Arrived before the tenure began, or after it lapsed.
    assert_eq!(
        check_holder(&r, Some(&claim("alice", 6_000, 10_000))),
        not_holder
    );
    assert_eq!(
        check_holder(&r, Some(&claim("alice", 1_000, 5_000))),
        not_holder
    );
    // Another racer's claim does not count.
    let mut other = claim("alice", 1_000, 10_000);
    other.racer_id = 9;
    assert_eq!(check_holder(&r, Some(&other)), not_holder);
    assert_eq!(Rejection::NotHolder { racer_id: 8 }.rule(), "not_holder");
}
