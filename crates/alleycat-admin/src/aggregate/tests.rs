use alleycat_domain::{Output, RaceClock};

use super::*;

fn rules() -> Rules {
    Rules {
        plausibility: Plausibility::new(RaceClock::new(10, 10), 2),
        scope: Scope {
            excluded: [9].into(),
            classes: [1].into(),
            ..Scope::default()
        },
        top_k: 10,
    }
}

/// A reading of racer `racer` at second 1 of a ride starting at `T0` (race 170,000,000, which
/// closes 20 s later).
fn line(racer: u32, class: u8, extra: &str) -> Vec<u8> {
    line_at(racer, class, 60, extra)
}

fn line_at(racer: u32, class: u8, cadence: u32, extra: &str) -> Vec<u8> {
    format!(
        r#"{{"event":"update","deviceTimestamp":1700000000000,"second":1,"raceId":170000000,"name":"r","racerId":{racer},"classId":{class},"cadence":{cadence},"resistance":20{extra}}}"#
    )
    .into_bytes()
}

fn add(aggregate: &mut Aggregate, bytes: &[u8]) {
    let rules = rules();
    let reading = Reading::from_json(bytes, rules.plausibility.clock).unwrap();
    aggregate.add_line(&reading, &rules);
}

#[test]
fn lines_are_judged_by_scope_exclusion_and_plausibility_at_arrival() {
    let mut aggregate = Aggregate::default();
    add(&mut aggregate, &line(1, 1, r#","arrivedAt":1700000000500"#));
    add(&mut aggregate, &line(2, 2, ""));
    add(&mut aggregate, &line(9, 1, ""));
    // Arrived after the race closed plus the skew.
    add(&mut aggregate, &line(3, 1, r#","arrivedAt":1700000022001"#));
    // Archived before arrivedAt existed: only the race window can be judged, and it holds.
    add(&mut aggregate, &line(4, 1, ""));
    let c = &aggregate.counts;
    assert_eq!((c.admitted, c.out_of_scope, c.excluded), (2, 1, 1));
    assert_eq!(c.rejected.get("closed"), Some(&1));
    let race = RaceKey {
        class_id: 1,
        race_id: 170_000_000,
    };
    let racers: Vec<u32> = aggregate.standings[&race]
        .results()
        .keys()
        .copied()
        .collect();
    assert_eq!(racers, [1, 4]);
    // The excluded and the rejected racers' documents are named, to be removed if stored.
    assert_eq!(aggregate.traces_named.len(), 4);
    assert_eq!(aggregate.first_race.get(&1), Some(&170_000_000));
}

#[test]
fn an_identitys_lines_count_only_while_it_held_the_racer() {
    let mut aggregate = Aggregate::default();
    add(
        &mut aggregate,
        &line(1, 1, r#","identityId":"alice","arrivedAt":1700000000500"#),
    );
    add(
        &mut aggregate,
        &line(1, 1, r#","identityId":"mallory","arrivedAt":1700000000600"#),
    );
    add(
        &mut aggregate,
        &line(2, 1, r#","identityId":"alice","arrivedAt":1700000000700"#),
    );
    assert_eq!(aggregate.pending_racers(), [1, 2]);
    let claims: HashMap<u32, Claim> = [(
        1,
        Claim {
            racer_id: 1,
            identity_id: "alice".into(),
            claimed_at: 1_700_000_000_000,
            expires_at: 1_700_000_100_000,
        },
    )]
    .into();
    aggregate.admit_pending(&claims, &rules());
    assert_eq!(aggregate.counts.admitted, 1);
    assert_eq!(aggregate.counts.rejected.get("not_holder"), Some(&2));
    let bests = &aggregate.bests[&BestsKey {
        racer_id: 1,
        class_id: 1,
    }];
    assert_eq!(bests.get(1), Some(Output::from_effort(60.0, 20.0)));
}

#[test]
fn workers_aggregates_merge_to_one_aggregate_of_every_line() {
    let (mut a, mut b, mut both) = (
        Aggregate::default(),
        Aggregate::default(),
        Aggregate::default(),
    );
    add(&mut a, &line(1, 1, ""));
    add(&mut b, &line_at(1, 1, 61, ""));
    add(&mut b, &line(3, 1, ""));
    for bytes in [line(1, 1, ""), line_at(1, 1, 61, ""), line(3, 1, "")] {
        add(&mut both, &bytes);
    }
    a.merge(b);
    assert_eq!(a.standings, both.standings);
    assert_eq!(a.traces, both.traces);
    assert_eq!(a.counts, both.counts);
    assert_eq!(a.histories[&1].to_json(), both.histories[&1].to_json());
}
