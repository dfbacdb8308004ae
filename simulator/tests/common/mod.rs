//! Shared by the integration tests: the stdout oracle and message checks.

#![allow(dead_code)]

use std::collections::BTreeMap;

use alleycat_domain::{Event, Reading};
use simulator::{Batch, Race, RacePlan};

/// The messages of `plan` as the stdout target writes them (each tick's buffer, in order): the
/// oracle of every other target.
pub fn oracle(plan: &RacePlan) -> Vec<Vec<u8>> {
    let mut race = Race::new(plan);
    let mut batch = Batch::default();
    let mut out = Vec::new();
    while race.next_batch(&mut batch) {
        out.extend_from_slice(&batch.buf);
    }
    lines(&out)
}

/// The lines of NDJSON output.
pub fn lines(out: &[u8]) -> Vec<Vec<u8>> {
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// (racer id, second) of a message, validated.
pub fn racer_second(message: &[u8], plan: &RacePlan) -> (u32, u16) {
    let reading = Reading::from_json(message, plan.clock())
        .unwrap_or_else(|e| panic!("invalid message {}: {e}", String::from_utf8_lossy(message)));
    (reading.racer_id, reading.second)
}

/// Checks that each racer's seconds appear in increasing order in `messages` (a delivery order).
pub fn assert_in_order_per_racer(messages: &[Vec<u8>], plan: &RacePlan) {
    let mut last: BTreeMap<u32, u16> = BTreeMap::new();
    for message in messages {
        let (racer, second) = racer_second(message, plan);
        if let Some(&previous) = last.get(&racer) {
            assert!(
                second > previous,
                "racer {racer}: second {second} delivered after {previous}"
            );
        }
        last.insert(racer, second);
    }
}

/// Checks that `got` holds exactly the messages of `expected`, each once, in any order.
pub fn assert_same_messages(mut got: Vec<Vec<u8>>, mut expected: Vec<Vec<u8>>) {
    assert_eq!(got.len(), expected.len(), "message count");
    got.sort();
    expected.sort();
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(
            String::from_utf8_lossy(g),
            String::from_utf8_lossy(e),
            "message content"
        );
    }
}

/// Every check DESIGN section 2 and the simulator's own bounds make on a whole race's output.
pub fn assert_valid_race(out: &[u8], plan: &RacePlan) {
    let clock = plan.clock();
    let race_id = plan.race_id();
    let mut seconds: BTreeMap<u32, Vec<u16>> = BTreeMap::new();
    let mut count = 0u64;
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        count += 1;
        let reading = Reading::from_json(line, clock)
            .unwrap_or_else(|e| panic!("invalid message {}: {e}", String::from_utf8_lossy(line)));
        assert_eq!(reading.race_id, race_id);
        assert_eq!(reading.class_id, plan.class_id);
        assert!((30.0..=90.0).contains(&reading.cadence), "{reading:?}");
        assert!((33.0..=86.0).contains(&reading.resistance), "{reading:?}");
        assert!(reading.uuid.is_some());
        assert_eq!(
            reading.event == Event::Final,
            reading.second == plan.seconds,
            "final exactly on the last second: {reading:?}"
        );
        // Every start is inside the race's start window.
        let start = reading.device_timestamp - (u64::from(reading.second) - 1) * 1000;
        assert_eq!(clock.race_id_at(start), race_id);
        assert!(start >= plan.start_ms);
        seconds
            .entry(reading.racer_id)
            .or_default()
            .push(reading.second);
    }
    assert_eq!(count, plan.total_records());
    assert_eq!(seconds.len(), plan.racers as usize);
    let expected: Vec<u16> = (1..=plan.seconds).collect();
    for (racer, got) in &seconds {
        assert_eq!(
            got, &expected,
            "racer {racer} sends every second once, in order"
        );
    }
}
