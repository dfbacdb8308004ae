use std::sync::Mutex;

use aws_lambda_events::event::kinesis::KinesisEvent;
use serde_json::json;

use super::*;
use crate::sources::kinesis::StreamShard;
use crate::stream::LocalStream;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failed(String);

/// A function answering by script, remembering the sequence numbers of every batch it saw.
struct Scripted<A> {
    answer: A,
    seen: Mutex<Vec<Vec<u64>>>,
}

impl<A> Function for Scripted<A>
where
    A: Fn(usize, &[u64], &[String]) -> Result<Value, Failed> + Sync,
{
    const NAME: &'static str = "scripted";
    type Event = KinesisEvent;
    type Response = Value;
    type Error = Failed;

    async fn handle(
        &self,
        event: KinesisEvent,
        _metrics: &mut alleycat_lambda::Metrics,
    ) -> Result<Value, Failed> {
        let sequences: Vec<u64> = event
            .records
            .iter()
            .map(|r| r.kinesis.sequence_number.parse().unwrap())
            .collect();
        let data: Vec<String> = event
            .records
            .iter()
            .map(|r| String::from_utf8(r.kinesis.data.0.clone()).unwrap())
            .collect();
        let call = {
            let mut seen = self.seen.lock().unwrap();
            seen.push(sequences.clone());
            seen.len()
        };
        (self.answer)(call, &sequences, &data)
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    stream: Arc<LocalStream>,
    on_failure: Arc<OnFailure>,
    invocations: Arc<Invocations>,
}

fn setup(records: &[&str]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(&dir.path().join("stream.db")).unwrap());
    let stream = Arc::new(LocalStream::open(db, "s", 1).unwrap());
    let records: Vec<(&str, &[u8])> = records.iter().map(|r| ("k", r.as_bytes())).collect();
    stream.append(&records, crate::now_ms()).unwrap();
    let on_failure = Arc::new(OnFailure::open(dir.path().join("on-failure")).unwrap());
    Setup {
        _dir: dir,
        stream,
        on_failure,
        invocations: Arc::new(Invocations::default()),
    }
}

fn mapping(batch_size: usize, max_retry_attempts: u32, filters: Vec<Pattern>) -> Mapping {
    Mapping {
        config: MappingConfig {
            batch_size,
            batching_window: Duration::ZERO,
            max_retry_attempts,
            bisect: true,
        },
        filters,
        starting: Starting::TrimHorizon,
    }
}

/// Polls until the checkpoint reaches `last`, then stops the poller.
async fn run_until<F: Function + Send + 'static>(
    setup: &Setup,
    function: Arc<F>,
    mapping: Mapping,
    last: u64,
) {
    let (stop, shutdown) = watch::channel(false);
    let shard = StreamShard::new(Arc::clone(&setup.stream), 0, "scripted");
    let context = Context {
        invocations: Arc::clone(&setup.invocations),
        on_failure: Arc::clone(&setup.on_failure),
        shutdown,
    };
    let task = tokio::spawn(poll(shard, function, mapping, context));
    let db = Arc::clone(setup.stream.db());
    for _ in 0..600 {
        let at = db.checkpoint("scripted/shardId-000000000000").unwrap();
        if at.and_then(|p| p.parse::<u64>().ok()) >= Some(last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
}

fn ok() -> Value {
    json!({"batchItemFailures": []})
}

#[tokio::test]
async fn a_reported_item_failure_resumes_from_that_record() {
    let setup = setup(&["1", "2", "3", "4", "5", "6"]);
    let function = Arc::new(Scripted {
        answer: |call: usize, _: &[u64], _: &[String]| {
            if call == 1 {
                Ok(json!({"batchItemFailures": [{"itemIdentifier": "00000000000000000004"}]}))
            } else {
                Ok(ok())
            }
        },
        seen: Mutex::new(Vec::new()),
    });
    run_until(&setup, Arc::clone(&function), mapping(10, 3, Vec::new()), 6).await;
    assert_eq!(
        *function.seen.lock().unwrap(),
        [vec![1, 2, 3, 4, 5, 6], vec![4, 5, 6]]
    );
    assert!(setup.on_failure.records("scripted").is_empty());
}

#[tokio::test]
async fn an_erroring_batch_is_bisected_down_to_its_poison_record_then_given_up_on() {
    let setup = setup(&["a", "b", "poison", "c"]);
    let function = Arc::new(Scripted {
        answer: |_: usize, _: &[u64], data: &[String]| {
            if data.iter().any(|d| d == "poison") {
                Err(Failed("cannot digest".to_owned()))
            } else {
                Ok(ok())
            }
        },
        seen: Mutex::new(Vec::new()),
    });
    run_until(&setup, Arc::clone(&function), mapping(4, 2, Vec::new()), 4).await;
    // Halved on each error; a success reads full batches again; the poison record alone is
    // tried once and retried twice, then given up on, and the record after it goes on.
    assert_eq!(
        *function.seen.lock().unwrap(),
        [
            vec![1, 2, 3, 4],
            vec![1, 2],
            vec![3, 4],
            vec![3],
            vec![3],
            vec![4]
        ]
    );
    let records = setup.on_failure.records("scripted");
    assert_eq!(records.len(), 1, "{records:?}");
    let info = &records[0]["KinesisBatchInfo"];
    assert_eq!(info["startSequenceNumber"], "00000000000000000003");
    assert_eq!(info["endSequenceNumber"], "00000000000000000003");
    assert_eq!(info["batchSize"], 1);
    assert_eq!(
        records[0]["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(
        records[0]["responseContext"]["functionError"],
        "scripted: cannot digest"
    );
    assert_eq!(setup.invocations.snapshot()["scripted"].errors, 4);
}

#[tokio::test]
async fn item_failures_past_the_retries_go_to_the_on_failure_record() {
    let setup = setup(&["1", "2", "3"]);
    let function = Arc::new(Scripted {
        answer: |_: usize, _: &[u64], _: &[String]| {
            Ok(json!({"batchItemFailures": [{"itemIdentifier": "00000000000000000002"}]}))
        },
        seen: Mutex::new(Vec::new()),
    });
    run_until(&setup, Arc::clone(&function), mapping(10, 1, Vec::new()), 3).await;
    assert_eq!(*function.seen.lock().unwrap(), [vec![1, 2, 3], vec![2, 3]]);
    let records = setup.on_failure.records("scripted");
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0]["KinesisBatchInfo"]["startSequenceNumber"],
        "00000000000000000002"
    );
    assert_eq!(
        records[0]["KinesisBatchInfo"]["endSequenceNumber"],
        "00000000000000000003"
    );
}

#[tokio::test]
async fn filtered_records_are_stepped_over_and_never_delivered() {
    let setup = setup(&[
        r#"{"event":"update"}"#,
        r#"{"event":"final"}"#,
        "not json",
        r#"{"event":"final","x":1}"#,
        r#"{"event":"update"}"#,
    ]);
    let function = Arc::new(Scripted {
        answer: |_: usize, _: &[u64], _: &[String]| Ok(ok()),
        seen: Mutex::new(Vec::new()),
    });
    let finals = Pattern::parse(r#"{"data": {"event": ["final"]}}"#).unwrap();
    run_until(
        &setup,
        Arc::clone(&function),
        mapping(10, 1, vec![finals]),
        5,
    )
    .await;
    assert_eq!(*function.seen.lock().unwrap(), [vec![2, 4]]);
}

#[tokio::test]
async fn a_restarted_poller_resumes_from_its_checkpoint() {
    let setup = setup(&["1", "2", "3"]);
    let function = Arc::new(Scripted {
        answer: |_: usize, _: &[u64], _: &[String]| Ok(ok()),
        seen: Mutex::new(Vec::new()),
    });
    run_until(&setup, Arc::clone(&function), mapping(2, 1, Vec::new()), 3).await;
    setup
        .stream
        .append(&[("k", b"4")], crate::now_ms())
        .unwrap();
    run_until(&setup, Arc::clone(&function), mapping(2, 1, Vec::new()), 4).await;
    assert_eq!(
        *function.seen.lock().unwrap(),
        [vec![1, 2], vec![3], vec![4]]
    );
}
