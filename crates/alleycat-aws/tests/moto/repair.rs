//! The repair ports on moto: deletes and replacements only of what was read, and listings.

use alleycat_domain::{LeaderboardEntry, Output, RaceKey, RacerFinal, SecondSeries, Standings};
use alleycat_ports::{
    BestsKey, Finals, FinalsRepair, ListObjects, MergeStore, ObjectStore, PortError, Queries,
    RemoveStore, TraceKey,
};

use crate::support;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn out(units: u32) -> Output {
    Output::from_ten_thousandths(units)
}

#[tokio::test]
async fn documents_are_removed_only_at_the_version_read() -> TestResult {
    let table = support::table().await;
    let race = RaceKey {
        class_id: 2,
        race_id: 7,
    };
    let standings: Standings = [(5, out(10))].into_iter().collect();
    table.store(&race, &standings, None).await?;
    assert_eq!(table.remove(&race, &2).await, Err(PortError::Conflict));
    table.remove(&race, &1).await?;
    assert_eq!(
        MergeStore::<RaceKey, Standings>::load(&table, &race).await?,
        None
    );

    let bests = BestsKey {
        racer_id: 5,
        class_id: 2,
    };
    let trace = TraceKey { racer_id: 5, race };
    let series: SecondSeries = [(1, out(3))].into_iter().collect();
    table.store(&bests, &series, None).await?;
    table.store(&trace, &series, None).await?;
    table.remove(&bests, &1).await?;
    assert_eq!(table.bests(bests).await?, None);
    assert_eq!(table.trace(trace).await?, Some(series));
    table.remove(&trace, &1).await?;
    assert_eq!(table.trace(trace).await?, None);
    Ok(())
}

#[tokio::test]
async fn a_forged_record_is_lowered_and_a_final_removed_only_as_read() -> TestResult {
    let table = support::table().await;
    let forged = LeaderboardEntry {
        racer_id: 7,
        name: "Seven".into(),
        best: out(4_702_500),
        race_id: 11,
        updated_at: 1_000,
    };
    assert!(table.offer_record(3, &forged).await?);
    let fair = LeaderboardEntry {
        best: out(1_500_000),
        updated_at: 900,
        ..forged.clone()
    };
    assert_eq!(
        table.replace_record(3, &fair, None).await,
        Err(PortError::Conflict)
    );
    assert_eq!(
        table.replace_record(3, &fair, Some(&fair)).await,
        Err(PortError::Conflict)
    );
    table.replace_record(3, &fair, Some(&forged)).await?;
    assert_eq!(table.leaderboard(3, 10).await?, vec![fair.clone()]);
    assert_eq!(
        table.remove_record(3, &forged).await,
        Err(PortError::Conflict)
    );
    table.remove_record(3, &fair).await?;
    assert!(table.leaderboard(3, 10).await?.is_empty());
    // A row nobody holds yet is created only if still absent.
    table.replace_record(3, &fair, None).await?;
    assert_eq!(
        table.replace_record(3, &fair, None).await,
        Err(PortError::Conflict)
    );

    let result = RacerFinal {
        class_id: 3,
        race_id: 11,
        racer_id: 7,
        name: "Seven".into(),
        output: out(4_702_500),
        finished_at: 1_000,
    };
    table.put_final(&result).await?;
    let other = RacerFinal {
        output: out(1),
        ..result.clone()
    };
    assert_eq!(table.remove_final(&other).await, Err(PortError::Conflict));
    table.remove_final(&result).await?;
    let race = RaceKey {
        class_id: 3,
        race_id: 11,
    };
    assert!(table.finals(race).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn listings_keep_to_their_prefix_with_sizes() -> TestResult {
    let bucket = support::bucket().await;
    for i in 0..5 {
        bucket
            .put(
                &format!("raw/2026/01/{i}"),
                vec![0; i],
                "application/gzip",
                None,
            )
            .await?;
    }
    bucket
        .put("processing-failed/x", vec![1], "application/gzip", None)
        .await?;
    let listed = bucket.list("raw/").await?;
    let got: Vec<(String, u64)> = listed.into_iter().map(|l| (l.key, l.size)).collect();
    let want: Vec<(String, u64)> = (0..5).map(|i| (format!("raw/2026/01/{i}"), i)).collect();
    assert_eq!(got, want);
    Ok(())
}
