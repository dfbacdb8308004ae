//! `alleycat-admin rebuild` on an embedded stack's data directory: a fair race, a forger's racer
//! and a held racer ridden through the in-process stack, plus a forged final of the held racer
//! merged into the views as it would have been before the trust rules; the stack stopped; a dry
//! run that writes nothing; the rebuild excluding the forger's racer; the stack restarted, and
//! every view its API serves compared with the end-to-end test's oracle of the fair lines.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alleycat_admin::{Report, Tally, View, rebuild};
use alleycat_domain::RaceClock;
use alleycat_local::Stack;
use alleycat_local::config::StackArgs;
use alleycat_local::repair::DataDir;
use alleycat_local::testing::{assert_views, free_port, http_get};
use alleycat_ports::{HistoryObjects, ObjectStore, Queries};
use common::{CLASS, FORGER_RACER, SECONDS, Scenario, TOP_K, TestResult};
use indicatif::ProgressBar;

const SKEW_SECONDS: u32 = 2;

async fn start(dir: &Path, clock: RaceClock) -> Stack {
    let args = StackArgs {
        data_dir: dir.to_owned(),
        http_port: free_port(),
        mqtt_port: free_port(),
        ws_port: free_port(),
        race_seconds: clock.race_seconds,
        window_seconds: clock.window_seconds,
        clock_skew_seconds: SKEW_SECONDS,
        firehose_interval_seconds: 1,
        leaderboard_batching_window_ms: 100,
        ..StackArgs::default()
    };
    Stack::start(args.config()).await.expect("the stack starts")
}

fn tally(added: u64, changed: u64, removed: u64, unchanged: u64) -> Tally {
    Tally {
        added,
        changed,
        removed,
        unchanged,
    }
}

fn assert_forgeries_removed(report: &Report) {
    assert_eq!(report.tally(View::Standings), tally(0, 1, 0, 0), "{report}");
    for view in [View::Finals, View::Leaderboard, View::Bests, View::Traces] {
        assert_eq!(report.tally(view), tally(0, 1, 1, 9), "{view:?}: {report}");
    }
    assert_eq!(report.tally(View::Histories), tally(0, 1, 0, 0), "{report}");
    assert_eq!(report.counts.excluded, 10, "{report}");
    assert_eq!(
        report.counts.rejected.get("not_holder"),
        Some(&1),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_of_a_data_directory_leaves_the_fair_race_and_nothing_else() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("data");
    let clock = RaceClock::new(SECONDS, 10);
    let stack = start(&data_dir, clock).await;
    let now = alleycat_local::now_ms();
    let scenario = Scenario::new(clock, now);
    common::claim(&**stack.table(), now - 60_000, now).await?;
    let records: Vec<(String, &Vec<u8>)> = scenario
        .all()
        .map(|line| {
            let message: serde_json::Value = serde_json::from_slice(line).unwrap();
            (message["racerId"].to_string(), line)
        })
        .collect();
    stack.put_records(&records)?;
    assert!(
        stack.wait_idle(Duration::from_secs(60)).await,
        "the stack settles"
    );
    // The stack refused the forged final (not its racer's holder); before the rules it stood.
    let histories = HistoryObjects::new(Arc::clone(stack.history()), TOP_K);
    common::merge_unjudged(&**stack.table(), &histories, &scenario.forged[..1], clock).await?;
    let rows = stack.table().leaderboard(CLASS, 100).await?;
    assert_eq!(rows.len(), 11);
    assert!(
        rows[..2]
            .iter()
            .all(|row| row.best == common::forged_output())
    );
    // Wait for the race to be over (plus the skew), so that it is rebuilt rather than merged.
    let settled = clock.race_closes_at(scenario.race.race_id) + u64::from(SKEW_SECONDS) * 1000;
    let wait = settled.saturating_sub(alleycat_local::now_ms()) + 100;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    stack.shutdown().await;

    let options = scenario.options(SKEW_SECONDS, alleycat_local::now_ms());
    {
        let data = DataDir::open(&data_dir)?;
        let histories = HistoryObjects::new(Arc::clone(&data.history), TOP_K);
        let history_before = data.history.get("class-2.json.gz").await?;
        let changes_before = data.table.last_change();
        let mut dry = options.clone();
        dry.dry_run = true;
        let report = rebuild(
            &data.delivery,
            &data.table,
            &histories,
            &dry,
            &ProgressBar::hidden(),
        )
        .await?;
        assert_forgeries_removed(&report);
        assert_eq!(
            data.table.last_change(),
            changes_before,
            "a dry run writes no item"
        );
        assert_eq!(
            data.history.get("class-2.json.gz").await?,
            history_before,
            "nor a history"
        );

        let report = rebuild(
            &data.delivery,
            &data.table,
            &histories,
            &options,
            &ProgressBar::hidden(),
        )
        .await?;
        assert_forgeries_removed(&report);
        let rebuilt = data.table.last_change();
        assert!(rebuilt > changes_before);
        let again = rebuild(
            &data.delivery,
            &data.table,
            &histories,
            &options,
            &ProgressBar::hidden(),
        )
        .await?;
        assert!(!again.changed_anything(), "{again}");
        assert_eq!(
            data.table.last_change(),
            rebuilt,
            "a second rebuild writes nothing"
        );
    }

    // The stack serves the rebuilt views: the oracle of the fair race, and no trace of 666.
    let stack = start(&data_dir, clock).await;
    let api = stack.api_url();
    let oracle = scenario.oracle();
    let forger = format!("{api}/racers/{FORGER_RACER}/bests?classId={CLASS}");
    let forger_status = tokio::task::spawn_blocking(move || {
        assert_views(&api, &oracle);
        http_get(&forger).map(|(status, _)| status)
    })
    .await??;
    assert_eq!(forger_status, 404, "the forger's bests are gone");
    stack.shutdown().await;
    Ok(())
}
