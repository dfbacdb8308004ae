//! `S3Objects` against moto: ETag conditions, concurrent history merges, presigned URLs.

use std::time::Duration;

use alleycat_domain::{ClassHistory, MaxMerge, Output};
use alleycat_ports::{
    HistoryObjects, MergeStore, ObjectStore, PortError, PutCondition, RetryPolicy, merge_into,
};

use crate::support;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn a_missing_object_reads_as_none() -> TestResult {
    let bucket = support::bucket().await;
    assert_eq!(bucket.get("nothing-here.json.gz").await?, None);
    Ok(())
}

#[tokio::test]
async fn if_none_match_creates_only_once() -> TestResult {
    let bucket = support::bucket().await;
    let etag = bucket
        .put(
            "k",
            b"first".to_vec(),
            "text/plain",
            Some(PutCondition::IfNoneMatch),
        )
        .await?;
    assert_eq!(
        bucket
            .put(
                "k",
                b"second".to_vec(),
                "text/plain",
                Some(PutCondition::IfNoneMatch)
            )
            .await,
        Err(PortError::Conflict)
    );
    let object = bucket.get("k").await?.expect("object exists");
    assert_eq!(object.bytes, b"first");
    assert_eq!(object.etag, etag);
    Ok(())
}

#[tokio::test]
async fn if_match_writes_only_over_the_version_read() -> TestResult {
    let bucket = support::bucket().await;
    let first = bucket.put("k", b"one".to_vec(), "text/plain", None).await?;
    let second = bucket
        .put(
            "k",
            b"two".to_vec(),
            "text/plain",
            Some(PutCondition::IfMatch(first.clone())),
        )
        .await?;
    assert_ne!(first, second);
    assert_eq!(
        bucket
            .put(
                "k",
                b"stale".to_vec(),
                "text/plain",
                Some(PutCondition::IfMatch(first))
            )
            .await,
        Err(PortError::Conflict),
        "a write from a stale ETag must fail"
    );
    assert_eq!(bucket.get("k").await?.expect("object").bytes, b"two");
    Ok(())
}

#[tokio::test]
async fn if_match_on_a_deleted_object_is_a_conflict() -> TestResult {
    let bucket = support::bucket().await;
    assert_eq!(
        bucket
            .put(
                "gone",
                b"x".to_vec(),
                "text/plain",
                Some(PutCondition::IfMatch(
                    "\"0123456789abcdef0123456789abcdef\"".to_owned()
                ))
            )
            .await,
        Err(PortError::Conflict)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_history_mergers_lose_no_record() -> TestResult {
    let class = 3;
    let top_k = 5;
    let histories = HistoryObjects::new(support::bucket().await, top_k);
    let mut rng = fastrand::Rng::new();
    let deltas: Vec<ClassHistory> = (0..8u64)
        .map(|merger| {
            let mut delta = ClassHistory::new(class, top_k);
            for _ in 0..40 {
                delta.record(
                    rng.u16(1..=30),
                    rng.u32(1..=25),
                    Output::from_ten_thousandths(rng.u32(0..3_000_000)),
                );
            }
            delta.touch(1_700_000_000_000 + merger);
            delta
        })
        .collect();
    let mut oracle = histories.empty(&class);
    for delta in &deltas {
        oracle.merge(delta);
    }

    let policy = RetryPolicy {
        max_attempts: 100,
        ..RetryPolicy::default()
    };
    let tasks: Vec<_> = deltas
        .into_iter()
        .map(|delta| {
            let histories = histories.clone();
            tokio::spawn(async move { merge_into(&histories, &class, &delta, &policy).await })
        })
        .collect();
    for task in tasks {
        task.await??;
    }

    let (stored, _etag) = histories.load(&class).await?.expect("history exists");
    assert_eq!(stored, oracle);
    Ok(())
}

#[tokio::test]
async fn a_presigned_url_reads_the_object_without_credentials() -> TestResult {
    let bucket = support::bucket().await;
    let bytes = b"\x1f\x8b gzip-ish bytes".to_vec();
    bucket
        .put("class-1.json.gz", bytes.clone(), "application/gzip", None)
        .await?;
    let url = bucket
        .presign_get("class-1.json.gz", Duration::from_secs(300))
        .await?;
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let (status, body) = tokio::task::spawn_blocking(move || support::http_get(&url)).await??;
    assert_eq!(status, 200);
    assert_eq!(body, bytes);
    Ok(())
}

#[tokio::test]
async fn presigning_beyond_a_week_is_refused() {
    let bucket = support::bucket().await;
    let error = bucket
        .presign_get("k", Duration::from_secs(8 * 24 * 3600))
        .await
        .unwrap_err();
    assert!(matches!(error, PortError::Permanent(_)), "{error:?}");
}
