//! `alleycat-admin rebuild` against moto: DynamoDB and S3 through the real SDK, holding the
//! views as they stood when forged records got in; the rebuild excluding the forger's racer must
//! leave exactly what the fair race makes.

mod common;

use alleycat_admin::{Report, Tally, View, rebuild};
use alleycat_aws::moto;
use alleycat_domain::RaceClock;
use alleycat_ports::{HistoryObjects, ObjectStore, Queries};
use common::{CLASS, HELD, Scenario, TOP_K, TestResult, archive_object, assert_views_in, claim};
use indicatif::ProgressBar;

fn tally(added: u64, changed: u64, removed: u64, unchanged: u64) -> Tally {
    Tally {
        added,
        changed,
        removed,
        unchanged,
    }
}

/// What removing the forged final of racer 7 and racer 666 changes in one race of ten.
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

#[tokio::test]
async fn a_rebuild_on_aws_removes_the_forgeries_and_a_second_changes_nothing() -> TestResult {
    let now = alleycat_local::now_ms();
    let clock = RaceClock::new(common::SECONDS, 30);
    let start = now - 3_600_000;
    let scenario = Scenario::new(clock, start);
    let table = moto::table().await;
    let delivery = moto::bucket().await;
    let histories = HistoryObjects::new(moto::bucket().await, TOP_K);
    // Claimed before the race, as a rider claims before riding.
    claim(&table, start - 60_000, now).await?;
    let arrived = start + 10_000;
    for (key, lines) in [("a", &scenario.fair), ("b", &scenario.forged)] {
        let object = archive_object(lines, clock, arrived);
        let key = format!("raw/2026/01/02/03/alleycat-{key}.gz");
        delivery.put(&key, object, "application/gzip", None).await?;
    }
    // Firehose's failed records sit beside raw/ and are never readings.
    delivery
        .put(
            "processing-failed/x.gz",
            b"junk".to_vec(),
            "application/gzip",
            None,
        )
        .await?;
    common::merge_unjudged(&table, &histories, scenario.all(), clock).await?;
    let forged_best = table.leaderboard(CLASS, 1).await?[0].best;
    assert_eq!(forged_best, common::forged_output());

    let options = scenario.options(120, now);
    let mut dry = options.clone();
    dry.dry_run = true;
    let report = rebuild(&delivery, &table, &histories, &dry, &ProgressBar::hidden()).await?;
    assert_forgeries_removed(&report);
    let rows = table.leaderboard(CLASS, 100).await?;
    assert_eq!(rows.len(), 11, "a dry run writes nothing");
    assert_eq!(rows[0].best, forged_best, "a dry run writes nothing");

    let report = rebuild(
        &delivery,
        &table,
        &histories,
        &options,
        &ProgressBar::hidden(),
    )
    .await?;
    assert_forgeries_removed(&report);
    assert_views_in(&table, &histories, &scenario.oracle()).await?;
    let held = table.leaderboard(CLASS, 100).await?;
    assert!(
        held.iter()
            .any(|row| row.racer_id == HELD && row.best < common::forged_output())
    );

    let again = rebuild(
        &delivery,
        &table,
        &histories,
        &options,
        &ProgressBar::hidden(),
    )
    .await?;
    assert!(!again.changed_anything(), "{again}");
    assert_eq!(again.tally(View::Bests), tally(0, 0, 0, 10));
    Ok(())
}
