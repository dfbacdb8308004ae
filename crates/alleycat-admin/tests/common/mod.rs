//! The scenario both end-to-end tests ride: a fair race of ten racers of class 2 (racer 7 ridden
//! by the identity that holds it, the others by the trusted producer), a forged 470.25 final of
//! racer 7 published by another identity, and that identity's own racer 666 riding 470.25 every
//! second (plausible and held: only an exclusion removes it). The oracle is computed plainly
//! from the fair lines alone, with the end-to-end test's `Oracle`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};

use alleycat_admin::{Options, Rules, Scope, Table};
use alleycat_domain::{
    Claim, ClassHistory, LeaderboardEntry, Output, Plausibility, RaceClock, RaceKey, RacerFinal,
    Reading, SecondSeries, Standings,
};
use alleycat_local::testing::Oracle;
use alleycat_ports::{BestsKey, Claims, MergeStore, Ranks, RetryPolicy, TraceKey, merge_into};
use serde_json::{Value, json};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub const CLASS: u8 = 2;
pub const SECONDS: u16 = 10;
pub const TOP_K: u32 = 100;
/// The racer an identity holds, and whose final another identity forges.
pub const HELD: u32 = 7;
/// The forger's own racer.
pub const FORGER_RACER: u32 = 666;
pub const HOLDER: &str = "local:00000000000000000000000000000007";
pub const FORGER: &str = "local:000000000000000000000000000000ff";

/// 470.25: the most the schema allows (cadence 250, resistance 100), what the forger sends.
pub fn forged_output() -> Output {
    Output::from_effort(250.0, 100.0)
}

/// The lines of one race.
pub struct Scenario {
    pub clock: RaceClock,
    pub race: RaceKey,
    /// The fair race's device messages (racer 7's stamped with its holder).
    pub fair: Vec<Vec<u8>>,
    /// The forged final and the forger's ride.
    pub forged: Vec<Vec<u8>>,
}

fn message(
    racer: u32,
    second: u16,
    start_ms: u64,
    race_id: u64,
    cadence: f64,
    resistance: f64,
) -> Value {
    json!({
        "event": if second == SECONDS { "final" } else { "update" },
        "deviceTimestamp": start_ms + (u64::from(second) - 1) * 1000,
        "second": second,
        "raceId": race_id,
        "name": format!("Racer {racer}"),
        "racerId": racer,
        "classId": CLASS,
        "cadence": cadence,
        "resistance": resistance,
    })
}

impl Scenario {
    /// A race whose racers start at `start_ms`.
    pub fn new(clock: RaceClock, start_ms: u64) -> Self {
        let race_id = clock.race_id_at(start_ms);
        let mut fair = Vec::new();
        for racer in 1..=10u32 {
            for second in 1..=SECONDS {
                let cadence = 60.0 + f64::from(racer) * 3.0 + f64::from(second);
                let resistance = 20.0 + f64::from(racer) + f64::from(second % 3);
                let mut line = message(racer, second, start_ms, race_id, cadence, resistance);
                if racer == HELD {
                    line["identityId"] = json!(HOLDER);
                }
                fair.push(serde_json::to_vec(&line).unwrap());
            }
        }
        let mut forged = Vec::new();
        let mut final7 = message(HELD, SECONDS, start_ms + 1, race_id, 250.0, 100.0);
        final7["identityId"] = json!(FORGER);
        forged.push(serde_json::to_vec(&final7).unwrap());
        for second in 1..=SECONDS {
            let mut line = message(FORGER_RACER, second, start_ms, race_id, 250.0, 100.0);
            line["identityId"] = json!(FORGER);
            forged.push(serde_json::to_vec(&line).unwrap());
        }
        Self {
            clock,
            race: RaceKey {
                class_id: CLASS,
                race_id,
            },
            fair,
            forged,
        }
    }

    /// Every line, fair first.
    pub fn all(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.fair.iter().chain(&self.forged)
    }

    /// What every view should hold after the rebuild.
    pub fn oracle(&self) -> Oracle {
        Oracle::of(&self.fair, SECONDS, TOP_K as usize)
    }

    /// The two claims, taken at `claimed_at` and held a day past `now_ms`: racer 7 by its
    /// holder, racer 666 by the forger.
    pub fn claims(claimed_at: u64, now_ms: u64) -> [Claim; 2] {
        let claim = |racer_id, identity: &str| Claim {
            racer_id,
            identity_id: identity.to_owned(),
            claimed_at,
            expires_at: now_ms + 86_400_000,
        };
        [claim(HELD, HOLDER), claim(FORGER_RACER, FORGER)]
    }

    /// Rules of a rebuild excluding the forger's racer.
    pub fn options(&self, skew_seconds: u32, now_ms: u64) -> Options {
        let rules = Rules {
            plausibility: Plausibility::new(self.clock, skew_seconds),
            scope: Scope {
                excluded: [FORGER_RACER].into(),
                ..Scope::default()
            },
            top_k: TOP_K,
        };
        let mut options = Options::new(rules, now_ms);
        options.settle_seconds = 0;
        options.policy = RetryPolicy::immediate(4);
        options
    }
}

/// A delivery object as the transformer archives `lines`: each a compact reading with its
/// `output` and `arrivedAt` (and the stamped `identityId`), gzip NDJSON.
pub fn archive_object<'a>(
    lines: impl IntoIterator<Item = &'a Vec<u8>>,
    clock: RaceClock,
    arrived_at: u64,
) -> Vec<u8> {
    let mut ndjson = Vec::new();
    for line in lines {
        let mut reading = Reading::from_json(line, clock).expect("valid lines");
        reading.arrived_at = Some(arrived_at);
        reading.write_json_line(&mut ndjson);
        if ndjson.last() != Some(&b'\n') {
            ndjson.push(b'\n');
        }
    }
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&ndjson).unwrap();
    gzip.finish().unwrap()
}

/// Merges `lines` into every view through the ports, rules unapplied: the views as they stood
/// when forged records got in.
pub async fn merge_unjudged<'a, T: Table, H: MergeStore<u8, ClassHistory>>(
    table: &T,
    histories: &H,
    lines: impl IntoIterator<Item = &'a Vec<u8>>,
    clock: RaceClock,
) -> TestResult {
    let policy = RetryPolicy::immediate(4);
    let mut standings: BTreeMap<RaceKey, Standings> = BTreeMap::new();
    let mut bests: BTreeMap<BestsKey, SecondSeries> = BTreeMap::new();
    let mut traces: BTreeMap<TraceKey, SecondSeries> = BTreeMap::new();
    let mut history = ClassHistory::new(CLASS, TOP_K);
    let mut finals = Vec::new();
    for line in lines {
        let r = Reading::from_json(line, clock)?;
        standings
            .entry(r.race())
            .or_default()
            .record(r.racer_id, r.output);
        let key = BestsKey {
            racer_id: r.racer_id,
            class_id: r.class_id,
        };
        bests.entry(key).or_default().record(r.second, r.output);
        let key = TraceKey {
            racer_id: r.racer_id,
            race: r.race(),
        };
        traces.entry(key).or_default().record(r.second, r.output);
        history.record(r.second, r.racer_id, r.output);
        history.touch(r.device_timestamp);
        finals.extend(RacerFinal::from_reading(&r));
    }
    for (key, delta) in &standings {
        merge_into(table, key, delta, &policy).await?;
    }
    for (key, delta) in &bests {
        merge_into(table, key, delta, &policy).await?;
    }
    for (key, delta) in &traces {
        merge_into(table, key, delta, &policy).await?;
    }
    merge_into(histories, &CLASS, &history, &policy).await?;
    for result in &finals {
        table.put_final(result).await?;
        table
            .offer_record(CLASS, &result.to_leaderboard_entry())
            .await?;
    }
    Ok(())
}

/// Writes the scenario's claims, taken at `claimed_at`.
pub async fn claim<C: Claims>(claims: &C, claimed_at: u64, now_ms: u64) -> TestResult {
    for claim in Scenario::claims(claimed_at, now_ms) {
        claims.put_claim(&claim, None).await?;
    }
    Ok(())
}

fn out(value: f64) -> Output {
    Output::from_f64(value).expect("an output")
}

fn series(seconds: &[Option<f64>]) -> SecondSeries {
    seconds
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.map(|o| (u16::try_from(i + 1).unwrap(), out(o))))
        .collect()
}

/// Compares every view in `table` and `histories` with `oracle`, through the ports (the
/// embedded test compares through the API with `assert_views` instead), and checks that the
/// forger's racer left no document behind.
pub async fn assert_views_in<T: Table + Ranks, H: MergeStore<u8, ClassHistory>>(
    table: &T,
    histories: &H,
    oracle: &Oracle,
) -> TestResult {
    let race = RaceKey {
        class_id: oracle.class_id,
        race_id: oracle.race_id,
    };
    let stored = table.standings(race).await?.expect("standings");
    let want: Standings = oracle
        .standings
        .iter()
        .map(|(r, o)| (u32::try_from(*r).unwrap(), out(*o)))
        .collect();
    assert_eq!(stored.standings, want, "standings");
    let finals: BTreeMap<u64, (String, f64, u64)> = table
        .finals(race)
        .await?
        .into_iter()
        .map(|f| {
            (
                u64::from(f.racer_id),
                (f.name, f.output.as_f64(), f.finished_at),
            )
        })
        .collect();
    assert_eq!(finals, oracle.finals, "finals");
    let rows: Vec<LeaderboardEntry> = table.leaderboard(oracle.class_id, 1000).await?;
    let rows: Vec<(u64, f64)> = rows
        .iter()
        .map(|e| (u64::from(e.racer_id), e.best.as_f64()))
        .collect();
    assert_eq!(rows, oracle.leaderboard(), "leaderboard");
    // The rank counts, recounted by the rebuild, give every racer its place among the rows.
    for (racer, best) in &rows {
        let rank = table
            .rank(oracle.class_id, u32::try_from(*racer).unwrap())
            .await?
            .expect("a ranked row");
        let above = rows.iter().filter(|(_, other)| other > best).count() as u64;
        assert_eq!(
            (rank.place, rank.of),
            (1 + above, rows.len() as u64),
            "rank of {racer}"
        );
    }
    for (racer, seconds) in &oracle.seconds {
        let racer_id = u32::try_from(*racer).unwrap();
        let want = series(seconds);
        let key = BestsKey {
            racer_id,
            class_id: oracle.class_id,
        };
        assert_eq!(
            table.bests(key).await?,
            Some(want.clone()),
            "bests of {racer}"
        );
        let key = TraceKey { racer_id, race };
        assert_eq!(table.trace(key).await?, Some(want), "trace of {racer}");
    }
    let forger = BestsKey {
        racer_id: FORGER_RACER,
        class_id: oracle.class_id,
    };
    assert_eq!(table.bests(forger).await?, None, "the forger's bests");
    let forger = TraceKey {
        racer_id: FORGER_RACER,
        race,
    };
    assert_eq!(table.trace(forger).await?, None, "the forger's trace");
    let (history, _) = histories.load(&oracle.class_id).await?.expect("a history");
    for second in 1..=oracle.seconds_per_race {
        let got: Vec<(u64, f64)> = history
            .ranked(u16::try_from(second).unwrap())
            .into_iter()
            .map(|(r, o)| (u64::from(r), o.as_f64()))
            .collect();
        assert_eq!(got, oracle.top_k(second), "history at second {second}");
    }
    Ok(())
}

/// Gunzips bytes (history objects in assertions).
pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}
