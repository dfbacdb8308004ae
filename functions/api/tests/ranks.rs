//! Every racer's rank through the API (issue 14): a 5,000-racer leaderboard paged through, every
//! row exactly once and in order, and every racer's rank against a brute-force oracle, on the
//! memory port, and 400 of many ties on moto through the DynamoDB adapter.

use alleycat_aws::moto::{bucket, table};
use alleycat_domain::LeaderboardEntry;
use alleycat_ports::memory::{MemoryObjects, MemoryTable};
use api::testing::{check_pages_and_ranks, seed, tied_rows};

const RACERS: u32 = 5_000;

#[tokio::test]
async fn a_5000_racer_leaderboard_pages_and_ranks_exactly_in_memory() {
    let table = MemoryTable::new();
    let rows = tied_rows(RACERS);
    seed(&table, 2, &rows).await;
    // Another class beside it changes nothing.
    seed(&table, 3, &tied_rows(50)).await;
    check_pages_and_ranks(&table, &MemoryObjects::new(), 2, &rows, 100).await;
}

#[tokio::test]
async fn small_pages_cut_through_ties_exactly() {
    let table = MemoryTable::new();
    // Every row ties on best; pages of 7 cut the tie group over and over.
    let rows: Vec<LeaderboardEntry> = tied_rows(200)
        .into_iter()
        .map(|mut row| {
            row.best = alleycat_domain::Output::from_ten_thousandths(1_500_000);
            row
        })
        .collect();
    seed(&table, 4, &rows).await;
    check_pages_and_ranks(&table, &MemoryObjects::new(), 4, &rows, 7).await;
}

/// 400 racers on moto (5,000 on the other stores): what moto checks is the adapter's requests,
/// and it serves them one at a time (1,000 racers took 80 s of the test command). Their bests
/// are bunched into 60 values, so pages of 30 cut through ties as the larger class's do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_racer_leaderboard_of_many_ties_pages_and_ranks_exactly_on_moto() {
    let (table, objects) = (table().await, bucket().await);
    let rows: Vec<LeaderboardEntry> = tied_rows(400)
        .into_iter()
        .map(|mut row| {
            let units = row.best.ten_thousandths();
            row.best = alleycat_domain::Output::from_ten_thousandths(units - units % 18_750);
            row
        })
        .collect();
    let distinct: std::collections::BTreeSet<_> = rows.iter().map(|row| row.best).collect();
    assert!(distinct.len() < 100, "bunched: {} bests", distinct.len());
    seed(&table, 2, &rows).await;
    check_pages_and_ranks(&table, &objects, 2, &rows, 30).await;
}
