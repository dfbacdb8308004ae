//! Every racer's rank through the API on the embedded table (issue 14): a 5,000-racer
//! leaderboard paged through, every row once and in order, every rank against brute force; a
//! recount after rows change without their counts (what a rebuild does) restores every rank.

use std::sync::Arc;

use alleycat_local::db::Db;
use alleycat_local::objects::LocalBucket;
use alleycat_local::table::LocalTable;
use alleycat_ports::{FinalsRepair, RankedRecords};
use api::testing::{check_pages_and_ranks, seed, tied_rows};

fn open(dir: &tempfile::TempDir) -> (LocalTable, LocalBucket) {
    let db = Db::open(&dir.path().join("table.db")).expect("a database");
    let table = LocalTable::open(Arc::new(db)).expect("a table");
    let bucket = LocalBucket::open("history", dir.path().join("history"), "http://127.0.0.1:1")
        .expect("a bucket");
    (table, bucket)
}

#[tokio::test]
async fn a_5000_racer_leaderboard_pages_and_ranks_exactly_on_the_embedded_table() {
    let dir = tempfile::tempdir().expect("a directory");
    let (table, bucket) = open(&dir);
    let rows = tied_rows(5_000);
    seed(&table, 2, &rows).await;
    check_pages_and_ranks(&table, &bucket, 2, &rows, 100).await;
}

#[tokio::test]
async fn a_recount_follows_rows_rewritten_without_counts() {
    let dir = tempfile::tempdir().expect("a directory");
    let (table, bucket) = open(&dir);
    let mut rows = tied_rows(300);
    seed(&table, 5, &rows).await;
    // A rebuild lowers one row and removes another, which moves no count.
    let lowered = {
        let mut row = rows[0].clone();
        row.best = alleycat_domain::Output::from_ten_thousandths(10_000);
        row
    };
    table
        .replace_record(5, &lowered, Some(&rows[0]))
        .await
        .expect("replaced");
    table.remove_record(5, &rows[1]).await.expect("removed");
    rows[0] = lowered;
    rows.remove(1);
    table.recount(5).await.expect("recounted");
    check_pages_and_ranks(&table, &bucket, 5, &rows, 100).await;
}
