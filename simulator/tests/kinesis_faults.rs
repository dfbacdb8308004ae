//! The Kinesis sink on the AWS SDK with failures injected by `aws-smithy-mocks`: partial
//! failures (FailedRecordCount, ErrorCode) and throttling are retried until every record is
//! delivered once, in order per racer; exhausted retries end with the lost count and exit
//! status 3; a missing stream and a target that keeps failing end the run (exit status 1).
//!
//! Failures of a whole request are the service's real HTTP answers (status and JSON error body),
//! so the SDK's own deserializer extracts the error codes the classification reads.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alleycat_ports::RetryPolicy;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::operation::put_records::{PutRecordsInput, PutRecordsOutput};
use aws_sdk_kinesis::types::PutRecordsResultEntry;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use simulator::pacing::Budget;
use simulator::sink::{KinesisSinkConfig, SdkKinesis};
use simulator::stats::{EXIT_FATAL, EXIT_LOST, EXIT_OK};
use simulator::{Fatal, KinesisSink, Race, RacePlan, Stats, Summary, run_to_end};

fn client(rules: &[&Rule]) -> Client {
    mock_client!(aws_sdk_kinesis, RuleMode::MatchAny, rules, |config| {
        config.retry_config(RetryConfig::disabled())
    })
}

/// Kinesis's JSON error body for `code`.
fn kinesis_error(code: &str) -> String {
    format!(r#"{{"__type":"{code}","message":"injected {code}"}}"#)
}

fn plan() -> RacePlan {
    RacePlan {
        racers: 50,
        seconds: 6,
        ..RacePlan::default()
    }
}

const POLICY: RetryPolicy = RetryPolicy {
    max_attempts: 5,
    base_delay: Duration::from_millis(1),
    max_delay: Duration::from_millis(5),
};

/// Rides `plan` into a mocked stream; the summary and the result.
async fn ride(client: Client, plan: &RacePlan, policy: RetryPolicy) -> (Summary, Arc<Stats>) {
    let mut race = Race::new(plan);
    let keys = (0..plan.racers)
        .map(|r| Arc::clone(race.partition_key(r)))
        .collect();
    let stats = Arc::new(Stats::default());
    let config = KinesisSinkConfig {
        budget: Budget::for_shards(10),
        batch_size: 500,
        policy,
    };
    let sink = KinesisSink::start(
        SdkKinesis::new(client, "mocked"),
        keys,
        config,
        Arc::clone(&stats),
    );
    let result: Result<(), Fatal> = run_to_end(&mut race, sink, Arc::clone(&stats)).await;
    let mut summary = Summary::new("kinesis", plan);
    summary.collect(&stats, Duration::from_secs(1), true);
    summary.error = result.err().map(|f| f.0);
    (summary, stats)
}

/// A PutRecords answer that refuses the records `refuse` picks (by call and position) with
/// `code`, and logs the others as delivered.
fn answer(
    input: &PutRecordsInput,
    call: usize,
    refuse: impl Fn(usize, usize) -> Option<&'static str>,
    delivered: &Mutex<Vec<Vec<u8>>>,
) -> PutRecordsOutput {
    let mut failed = 0;
    let entries = input
        .records()
        .iter()
        .enumerate()
        .map(|(i, record)| {
            if let Some(code) = refuse(call, i) {
                failed += 1;
                PutRecordsResultEntry::builder()
                    .error_code(code)
                    .error_message(format!("injected {code}"))
                    .build()
            } else {
                delivered
                    .lock()
                    .unwrap()
                    .push(record.data().as_ref().to_vec());
                PutRecordsResultEntry::builder()
                    .sequence_number(format!("{call:08}{i:05}"))
                    .shard_id("shardId-000000000000")
                    .build()
            }
        })
        .collect();
    PutRecordsOutput::builder()
        .failed_record_count(failed)
        .set_records(Some(entries))
        .build()
        .unwrap()
}

/// A rule answering every call with [`answer`].
fn answering(
    refuse: impl Fn(usize, usize) -> Option<&'static str> + Send + Sync + 'static,
) -> (Rule, Arc<Mutex<Vec<Vec<u8>>>>) {
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(AtomicUsize::new(0));
    let log = Arc::clone(&delivered);
    let rule = mock!(Client::put_records).then_compute_output(move |input| {
        let call = calls.fetch_add(1, Ordering::SeqCst);
        answer(input, call, &refuse, &log)
    });
    (rule, delivered)
}

#[tokio::test]
async fn partial_failures_are_retried_until_delivered_in_order() {
    let plan = plan();
    // Every other request refuses a third of its records, with either code Kinesis uses.
    let (rule, delivered) = answering(|call, i| match (call % 2, i % 3) {
        (0, 0) => Some("ProvisionedThroughputExceededException"),
        (0, 1) if i % 2 == 0 => Some("InternalFailure"),
        _ => None,
    });
    let (summary, _) = ride(client(&[&rule]), &plan, POLICY).await;
    assert_eq!(summary.error, None);
    assert_eq!(summary.exit_code(), EXIT_OK, "{}", summary.render());
    assert_eq!(
        (summary.generated, summary.sent, summary.lost),
        (300, 300, 0)
    );
    assert!(summary.rejected > 50, "{}", summary.render());
    assert_eq!(summary.retried, summary.rejected);
    let delivered = delivered.lock().unwrap().clone();
    common::assert_in_order_per_racer(&delivered, &plan);
    common::assert_same_messages(delivered, common::oracle(&plan));
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried() {
    let plan = plan();
    let failing = mock!(Client::put_records)
        .sequence()
        .http_status(
            400,
            Some(kinesis_error("ProvisionedThroughputExceededException")),
        )
        .times(2)
        .http_status(500, Some(kinesis_error("InternalFailure")))
        .http_status(400, Some(kinesis_error("KMSThrottlingException")))
        .build();
    let (succeeding, delivered) = answering(|_, _| None);
    let (summary, _) = ride(client(&[&failing, &succeeding]), &plan, POLICY).await;
    assert_eq!(summary.exit_code(), EXIT_OK, "{}", summary.render());
    // Four failed requests in a row: the records of the first get their fifth and last attempt.
    assert_eq!(summary.request_errors, 4);
    assert_eq!((summary.sent, summary.lost), (300, 0));
    assert_eq!(summary.retried, 4 * 50, "{}", summary.render());
    let latency = summary.latency.expect("requests were timed");
    assert!(latency.requests > 4);
    let delivered = delivered.lock().unwrap().clone();
    common::assert_in_order_per_racer(&delivered, &plan);
    common::assert_same_messages(delivered, common::oracle(&plan));
}

#[tokio::test]
async fn exhausted_retries_lose_records_and_exit_non_zero() {
    let plan = plan();
    // The first racer's records are always refused; the others go through.
    let refused = plan.first_racer_id.to_string();
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&delivered);
    let rule = mock!(Client::put_records).then_compute_output(move |input| {
        let mut failed = 0;
        let entries = input
            .records()
            .iter()
            .map(|record| {
                if record.partition_key() == Some(refused.as_str()) {
                    failed += 1;
                    PutRecordsResultEntry::builder()
                        .error_code("ProvisionedThroughputExceededException")
                        .error_message("Rate exceeded for shard")
                        .build()
                } else {
                    log.lock().unwrap().push(record.data().as_ref().to_vec());
                    PutRecordsResultEntry::builder()
                        .sequence_number("1")
                        .shard_id("shardId-000000000000")
                        .build()
                }
            })
            .collect();
        PutRecordsOutput::builder()
            .failed_record_count(failed)
            .set_records(Some(entries))
            .build()
            .unwrap()
    });
    let (summary, _) = ride(client(&[&rule]), &plan, POLICY).await;
    assert_eq!(summary.error, None);
    assert_eq!(summary.exit_code(), EXIT_LOST);
    assert_eq!(summary.lost, 6, "the first racer's six seconds");
    assert_eq!(summary.sent, 294);
    assert_eq!(summary.rejected, 6 * 5, "five attempts each");
    assert_eq!(summary.retried, 6 * 4);
    assert!(summary.render().contains("6 records were lost"));
    // The racer moved on after each loss: its later seconds were still tried, in order.
    assert_eq!(delivered.lock().unwrap().len(), 294);
}

#[tokio::test]
async fn a_missing_stream_ends_the_run() {
    let plan = plan();
    let missing = mock!(Client::put_records)
        .sequence()
        .http_status(400, Some(kinesis_error("ResourceNotFoundException")))
        .repeatedly()
        .build();
    let (summary, _) = ride(client(&[&missing]), &plan, POLICY).await;
    assert_eq!(summary.exit_code(), EXIT_FATAL);
    let error = summary.error.clone().unwrap();
    assert!(error.contains("ResourceNotFoundException"), "{error}");
    assert_eq!(summary.sent, 0);
    assert_eq!(summary.lost, summary.generated, "{}", summary.render());
    assert_eq!(summary.request_errors, 1, "not retried");
}

#[tokio::test]
async fn a_target_that_keeps_failing_ends_the_run() {
    let plan = plan();
    let down = mock!(Client::put_records)
        .sequence()
        .http_status(503, Some(kinesis_error("ServiceUnavailable")))
        .repeatedly()
        .build();
    let (summary, _) = ride(client(&[&down]), &plan, POLICY).await;
    assert_eq!(summary.exit_code(), EXIT_FATAL);
    let error = summary.error.clone().unwrap();
    assert!(
        error.contains("keeps failing (5 requests in a row)"),
        "{error}"
    );
    assert_eq!(summary.sent, 0);
    assert_eq!(summary.lost, summary.generated, "{}", summary.render());
}
