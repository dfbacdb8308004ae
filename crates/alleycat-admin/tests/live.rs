//! The rebuild's write rules on the in-memory fakes: a race still receiving data keeps what the
//! archive does not hold yet (but never an excluded racer's), a settled race is replaced, and a
//! write that loses to a function is read and computed again.

use alleycat_admin::{Change, Item, Options, Rules, Scope, rebuild};
use alleycat_domain::{Output, Plausibility, RaceClock, RaceKey, Standings};
use alleycat_ports::memory::{MemoryObjects, MemoryTable};
use alleycat_ports::{HistoryObjects, MergeStore, PortError, RetryPolicy};
use indicatif::ProgressBar;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const CLOCK: RaceClock = RaceClock {
    race_seconds: 10,
    window_seconds: 10,
};

/// One archived line of `racer` in race 170,000,000 of class 1 (it closes at `T0` + 20 s) (second 1, output from `cadence`).
fn line(racer: u32, cadence: u32) -> String {
    format!(
        r#"{{"event":"update","deviceTimestamp":1700000000000,"second":1,"raceId":170000000,"name":"r","racerId":{racer},"classId":1,"cadence":{cadence},"resistance":20,"arrivedAt":1700000000500}}"#
    )
}

fn gzip(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

fn options(now_ms: u64) -> Options {
    let rules = Rules {
        plausibility: Plausibility::new(CLOCK, 0),
        scope: Scope {
            excluded: [9].into(),
            classes: [1].into(),
            ..Scope::default()
        },
        top_k: 10,
    };
    let mut options = Options::new(rules, now_ms);
    options.settle_seconds = 0;
    options.policy = RetryPolicy::immediate(3);
    options
}

const RACE: RaceKey = RaceKey {
    class_id: 1,
    race_id: 170_000_000,
};

/// When race [`RACE`] opens.
const T0: u64 = 1_700_000_000_000;

fn out(cadence: u32) -> Output {
    Output::from_effort(f64::from(cadence), 20.0)
}

/// Stored: racers 1 (archived, lower), 2 (not archived yet), 9 (excluded).
async fn setup() -> Result<(MemoryObjects, MemoryTable), PortError> {
    let delivery = MemoryObjects::new();
    delivery.insert("raw/a.gz", gzip(&format!("{}\n", line(1, 90))));
    let table = MemoryTable::new();
    let stored: Standings = [(1, out(60)), (2, out(70)), (9, out(250))]
        .into_iter()
        .collect();
    table.store(&RACE, &stored, None).await?;
    Ok((delivery, table))
}

#[tokio::test]
async fn a_live_race_keeps_what_the_archive_lacks_but_not_the_excluded() -> TestResult {
    let (delivery, table) = setup().await?;
    let histories = HistoryObjects::new(MemoryObjects::new(), 10);
    // The race closes at T0 + 20 s: a second before, it still receives data.
    let report = rebuild(
        &delivery,
        &table,
        &histories,
        &options(T0 + 19_000),
        &ProgressBar::hidden(),
    )
    .await?;
    let want: Standings = [(1, out(90)), (2, out(70))].into_iter().collect();
    assert_eq!(table.all_standings()[&RACE], want);
    assert_eq!(report.items[&Item::Standings(RACE)], Change::Changed);
    Ok(())
}

#[tokio::test]
async fn a_settled_race_is_replaced_and_a_lost_write_redone() -> TestResult {
    let (delivery, table) = setup().await?;
    let histories = HistoryObjects::new(MemoryObjects::new(), 10);
    // A function's merge lands between the rebuild's read and its write: the first write
    // conflicts, and the standings are read and computed again.
    table.faults.fail("store:standings", PortError::Conflict, 1);
    let report = rebuild(
        &delivery,
        &table,
        &histories,
        &options(T0 + 20_000),
        &ProgressBar::hidden(),
    )
    .await?;
    let want: Standings = [(1, out(90))].into_iter().collect();
    assert_eq!(table.all_standings()[&RACE], want);
    assert_eq!(report.rounds, 2);
    assert_eq!(report.items[&Item::Standings(RACE)], Change::Changed);
    Ok(())
}

#[tokio::test]
async fn an_archive_that_no_longer_reaches_a_stored_record_stops_the_rebuild() -> TestResult {
    use alleycat_domain::LeaderboardEntry;
    use alleycat_ports::Finals;
    let (delivery, table) = setup().await?;
    let histories = HistoryObjects::new(MemoryObjects::new(), 10);
    let old = LeaderboardEntry {
        racer_id: 3,
        name: "r".into(),
        best: out(80),
        race_id: 2,
        updated_at: 1,
    };
    table.offer_record(1, &old).await?;
    let error = rebuild(
        &delivery,
        &table,
        &histories,
        &options(T0 + 20_000),
        &ProgressBar::hidden(),
    )
    .await
    .unwrap_err();
    assert!(
        error.to_string().contains("--allow-archive-gaps"),
        "{error}"
    );
    assert_eq!(table.standings_version(RACE), 1, "nothing was written");
    let mut options = options(T0 + 20_000);
    options.allow_archive_gaps = true;
    rebuild(
        &delivery,
        &table,
        &histories,
        &options,
        &ProgressBar::hidden(),
    )
    .await?;
    assert!(table.all_leaderboard_rows().is_empty());
    Ok(())
}
