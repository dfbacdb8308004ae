//! The retry and merge loops against the in-memory stores.

use std::sync::Arc;
use std::time::Duration;

use alleycat_domain::{ClassHistory, MaxMerge, Output, RaceKey, Standings};
use alleycat_ports::memory::{MemoryObjects, MemoryTable};
use alleycat_ports::{HistoryObjects, MergeStore, PortError, RetryPolicy, merge_into, retry};

const RACE: RaceKey = RaceKey {
    class_id: 3,
    race_id: 5_400_172,
};

fn standings(pairs: &[(u32, u32)]) -> Standings {
    pairs
        .iter()
        .map(|&(racer, units)| (racer, Output::from_ten_thousandths(units)))
        .collect()
}

#[tokio::test]
async fn merge_creates_then_merges_then_skips_what_is_already_stored()
-> Result<(), Box<dyn std::error::Error>> {
    let table = MemoryTable::new();
    let policy = RetryPolicy::immediate(3);
    let first = merge_into(&table, &RACE, &standings(&[(1, 10), (2, 20)]), &policy).await?;
    assert!(first.written);
    let second = merge_into(&table, &RACE, &standings(&[(1, 5), (3, 30)]), &policy).await?;
    assert!(second.written);
    let replay = merge_into(&table, &RACE, &standings(&[(1, 10), (3, 30)]), &policy).await?;
    assert!(!replay.written, "a replay costs a read, not a write");
    assert_eq!(table.standings_version(RACE), 2);
    assert_eq!(
        table.all_standings()[&RACE],
        standings(&[(1, 10), (2, 20), (3, 30)])
    );
    Ok(())
}

#[tokio::test]
async fn conflicts_are_re_read_and_re_merged() -> Result<(), Box<dyn std::error::Error>> {
    let table = MemoryTable::new();
    table.faults.fail("store", PortError::Conflict, 2);
    let outcome = merge_into(
        &table,
        &RACE,
        &standings(&[(1, 10)]),
        &RetryPolicy::immediate(3),
    )
    .await?;
    assert_eq!((outcome.written, outcome.conflicts), (true, 2));
    assert_eq!(table.faults.calls("load"), 3);
    Ok(())
}

#[tokio::test]
async fn throttling_is_retried_then_reported_with_its_attempts() {
    let table = MemoryTable::new();
    table
        .faults
        .fail("store", PortError::Throttled("slow down".into()), 5);
    let error = merge_into(
        &table,
        &RACE,
        &standings(&[(1, 10)]),
        &RetryPolicy::immediate(4),
    )
    .await
    .unwrap_err();
    assert_eq!(error.attempts, 4);
    assert_eq!(error.last, PortError::Throttled("slow down".into()));
    assert!(table.all_standings().is_empty());
}

#[tokio::test]
async fn permanent_failures_are_not_retried() {
    let table = MemoryTable::new();
    table
        .faults
        .fail("load", PortError::Permanent("access denied".into()), 1);
    let error = merge_into(
        &table,
        &RACE,
        &standings(&[(1, 10)]),
        &RetryPolicy::immediate(4),
    )
    .await
    .unwrap_err();
    assert_eq!(error.attempts, 1);
}

#[tokio::test]
async fn retry_counts_its_retries() -> Result<(), Box<dyn std::error::Error>> {
    let mut calls = 0;
    let (value, retries) = retry(&RetryPolicy::immediate(5), || {
        calls += 1;
        let result = if calls < 3 {
            Err(PortError::Transient("503".into()))
        } else {
            Ok(calls)
        };
        async move { result }
    })
    .await?;
    assert_eq!((value, retries), (3, 2));
    Ok(())
}

#[test]
fn backoff_is_bounded_by_the_exponential_ceiling() {
    let policy = RetryPolicy {
        max_attempts: 10,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
    };
    for retry in 0..12 {
        let ceiling =
            Duration::from_millis(10 * (1 << retry.min(10))).min(Duration::from_millis(100));
        for _ in 0..50 {
            assert!(policy.backoff(retry) <= ceiling);
        }
    }
    assert_eq!(RetryPolicy::immediate(3).backoff(5), Duration::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_writers_lose_no_update() -> Result<(), Box<dyn std::error::Error>> {
    let table = Arc::new(MemoryTable::new());
    let deltas: Vec<Standings> = (0..16u32)
        .map(|w| standings(&[(w, 100 + w), (99, 1000 * w), (w + 50, 7)]))
        .collect();
    let mut tasks = Vec::new();
    for delta in deltas.clone() {
        let table = Arc::clone(&table);
        tasks.push(tokio::spawn(async move {
            merge_into(&*table, &RACE, &delta, &RetryPolicy::immediate(64)).await
        }));
    }
    for task in tasks {
        task.await??;
    }
    let mut oracle = Standings::new();
    for delta in &deltas {
        oracle.merge(delta);
    }
    assert_eq!(table.all_standings()[&RACE], oracle);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_history_mergers_lose_no_record() -> Result<(), Box<dyn std::error::Error>> {
    let histories = Arc::new(HistoryObjects::new(MemoryObjects::new(), 3));
    let mut deltas = Vec::new();
    for merger in 0..8u32 {
        let mut delta = ClassHistory::new(2, 3);
        for second in 1..=5u16 {
            delta.record(
                second,
                merger,
                Output::from_ten_thousandths(merger * 10 + u32::from(second)),
            );
        }
        delta.touch(u64::from(merger));
        deltas.push(delta);
    }
    let mut tasks = Vec::new();
    for delta in deltas.clone() {
        let histories = Arc::clone(&histories);
        tasks.push(tokio::spawn(async move {
            merge_into(&*histories, &2, &delta, &RetryPolicy::immediate(64)).await
        }));
    }
    for task in tasks {
        task.await??;
    }
    let mut oracle = ClassHistory::new(2, 3);
    for delta in &deltas {
        oracle.merge(delta);
    }
    let (stored, _) = histories.load(&2).await?.expect("the object exists");
    assert_eq!(stored, oracle);
    Ok(())
}
