//! Service failures injected with `aws-smithy-mocks`: each maps to the right `PortError`, and the
//! merge loop retries what is retryable, re-merges after a conflict, and reports what persists.
//!
//! Failures are given as the services' real HTTP answers (status and error body), so the SDK's own
//! deserializers extract the error codes the classification reads. The SDK's retries are disabled
//! in these clients so that every attempt counted is one of `merge_into`.

use std::collections::HashMap;

use alleycat_aws::{DynamoTable, IotPublisher, S3Objects};
use alleycat_domain::{Claim, Output, RaceKey, Standings};
use alleycat_ports::keys;
use alleycat_ports::schema::ClaimItem;
use alleycat_ports::{
    Claims, MergeStore, ObjectStore, PortError, Publisher, PutCondition, RetryError, RetryPolicy,
    merge_into,
};
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};

const RACE: RaceKey = RaceKey {
    class_id: 2,
    race_id: 5_712_345,
};

/// DynamoDB's JSON error body for `code`.
fn dynamo_error(code: &str) -> String {
    format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"injected {code}"}}"#)
}

/// S3's XML error body for `code`.
fn s3_error(code: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Error><Code>{code}</Code><Message>injected {code}</Message></Error>"
    )
}

fn table(rules: &[&Rule]) -> DynamoTable {
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, rules, |config| {
        config.retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
    });
    DynamoTable::new(client, "mocked")
}

fn bucket(rules: &[&Rule]) -> S3Objects {
    let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, rules, |config| {
        config.retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
    });
    S3Objects::new(client, "mocked")
}

/// A stored standings item at `version`.
fn standings_item(version: u64) -> HashMap<String, AttributeValue> {
    [
        ("pk", AttributeValue::S("race#2#5712345".to_owned())),
        ("sk", AttributeValue::S("standings".to_owned())),
        ("classId", AttributeValue::N("2".to_owned())),
        ("raceId", AttributeValue::N("5712345".to_owned())),
        (
            "results",
            AttributeValue::M([("7".to_owned(), AttributeValue::N("151.788".to_owned()))].into()),
        ),
        ("updatedAt", AttributeValue::N("1700000000000".to_owned())),
        ("version", AttributeValue::N(version.to_string())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn delta() -> Standings {
    [(9, Output::from_ten_thousandths(1_000_000))]
        .into_iter()
        .collect()
}

fn kind(error: &PortError) -> &'static str {
    match error {
        PortError::Conflict => "conflict",
        PortError::Throttled(_) => "throttled",
        PortError::Transient(_) => "transient",
        PortError::Permanent(_) => "permanent",
        PortError::TooLarge(_) => "too large",
    }
}

#[tokio::test]
async fn dynamodb_errors_map_to_what_a_caller_should_do() {
    let cases = [
        (400, "ProvisionedThroughputExceededException", "throttled"),
        (400, "ThrottlingException", "throttled"),
        (400, "RequestLimitExceeded", "throttled"),
        (500, "InternalServerError", "transient"),
        (400, "ValidationException", "permanent"),
        (400, "ResourceNotFoundException", "permanent"),
    ];
    for (status, code, expected) in cases {
        let get = mock!(aws_sdk_dynamodb::Client::get_item)
            .sequence()
            .http_status(status, Some(dynamo_error(code)))
            .build();
        let table = table(&[&get]);
        let error = MergeStore::<RaceKey, Standings>::load(&table, &RACE)
            .await
            .unwrap_err();
        assert_eq!(kind(&error), expected, "{code}: {error:?}");
        if expected != "conflict" {
            let message = error.to_string();
            assert!(
                message.contains("GetItem") && message.contains(code),
                "the message names the operation and the code: {message}"
            );
        }
    }
}

#[tokio::test]
async fn a_failed_condition_is_a_conflict() {
    let put = mock!(aws_sdk_dynamodb::Client::put_item)
        .sequence()
        .http_status(400, Some(dynamo_error("ConditionalCheckFailedException")))
        .build();
    let table = table(&[&put]);
    assert_eq!(
        table.store(&RACE, &delta(), Some(&3)).await,
        Err(PortError::Conflict)
    );
}

#[tokio::test]
async fn merge_retries_throttling_then_succeeds() {
    let get = mock!(aws_sdk_dynamodb::Client::get_item)
        .sequence()
        .http_status(
            400,
            Some(dynamo_error("ProvisionedThroughputExceededException")),
        )
        .http_status(400, Some(dynamo_error("ThrottlingException")))
        .output(|| GetItemOutput::builder().build())
        .repeatedly()
        .build();
    let put = mock!(aws_sdk_dynamodb::Client::put_item)
        .sequence()
        .http_status(500, Some(dynamo_error("InternalServerError")))
        .output(|| PutItemOutput::builder().build())
        .build();
    let table = table(&[&get, &put]);

    let outcome = merge_into(&table, &RACE, &delta(), &RetryPolicy::immediate(4))
        .await
        .expect("the fourth attempt succeeds");
    assert!(outcome.written);
    assert_eq!(outcome.retries, 3);
    assert_eq!(outcome.conflicts, 0);
    assert_eq!(get.num_calls(), 4);
    assert_eq!(put.num_calls(), 2);
}

#[tokio::test]
async fn merge_reports_throttling_that_persists() {
    for code in [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "InternalServerError",
    ] {
        let status = if code == "InternalServerError" {
            500
        } else {
            400
        };
        let get = mock!(aws_sdk_dynamodb::Client::get_item)
            .sequence()
            .http_status(status, Some(dynamo_error(code)))
            .repeatedly()
            .build();
        let table = table(&[&get]);

        let error = merge_into(&table, &RACE, &delta(), &RetryPolicy::immediate(5))
            .await
            .unwrap_err();
        let RetryError { attempts, last } = error;
        assert_eq!(attempts, 5, "{code}");
        assert!(last.is_retryable(), "{code}: {last:?}");
        assert!(last.to_string().contains(code), "{last}");
        assert_eq!(get.num_calls(), 5, "one request per attempt");
    }
}

#[tokio::test]
async fn merge_rereads_after_a_conflict_and_writes_from_the_new_version() {
    let get = mock!(aws_sdk_dynamodb::Client::get_item)
        .sequence()
        .output(|| {
            GetItemOutput::builder()
                .set_item(Some(standings_item(1)))
                .build()
        })
        .output(|| {
            GetItemOutput::builder()
                .set_item(Some(standings_item(2)))
                .build()
        })
        .build();
    let expects = |version: &'static str| {
        move |request: &aws_sdk_dynamodb::operation::put_item::PutItemInput| {
            request
                .expression_attribute_values()
                .and_then(|values| values.get(":expected"))
                == Some(&AttributeValue::N(version.to_owned()))
        }
    };
    let stale = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(expects("1"))
        .sequence()
        .http_status(400, Some(dynamo_error("ConditionalCheckFailedException")))
        .build();
    let fresh = mock!(aws_sdk_dynamodb::Client::put_item)
        .match_requests(expects("2"))
        .then_output(|| PutItemOutput::builder().build());
    let table = table(&[&get, &stale, &fresh]);

    let outcome = merge_into(&table, &RACE, &delta(), &RetryPolicy::immediate(3))
        .await
        .expect("the re-merge succeeds");
    assert!(outcome.written);
    assert_eq!(outcome.conflicts, 1);
    assert_eq!((stale.num_calls(), fresh.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_replayed_delta_costs_one_read_and_no_write() {
    let get = mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| {
        GetItemOutput::builder()
            .set_item(Some(standings_item(4)))
            .build()
    });
    let put =
        mock!(aws_sdk_dynamodb::Client::put_item).then_output(|| PutItemOutput::builder().build());
    let table = table(&[&get, &put]);
    let already_stored: Standings = [(7, Output::from_ten_thousandths(1_517_880))]
        .into_iter()
        .collect();

    let outcome = merge_into(&table, &RACE, &already_stored, &RetryPolicy::immediate(1))
        .await
        .expect("nothing to write");
    assert!(!outcome.written);
    assert_eq!(put.num_calls(), 0);
}

#[tokio::test]
async fn s3_errors_map_to_what_a_caller_should_do() {
    let cases = [
        (412, "PreconditionFailed", "conflict"),
        (409, "ConditionalRequestConflict", "conflict"),
        (503, "SlowDown", "throttled"),
        (500, "InternalError", "transient"),
        (403, "AccessDenied", "permanent"),
    ];
    for (status, code, expected) in cases {
        let put = mock!(aws_sdk_s3::Client::put_object)
            .sequence()
            .http_status(status, Some(s3_error(code)))
            .build();
        let bucket = bucket(&[&put]);
        let error = bucket
            .put(
                "class-1.json.gz",
                b"x".to_vec(),
                "application/gzip",
                Some(PutCondition::IfMatch("\"e\"".to_owned())),
            )
            .await
            .unwrap_err();
        assert_eq!(kind(&error), expected, "{code}: {error:?}");
    }

    let bare_slow_down = mock!(aws_sdk_s3::Client::get_object)
        .sequence()
        .http_status(503, None)
        .build();
    let error = bucket(&[&bare_slow_down]).get("k").await.unwrap_err();
    assert_eq!(kind(&error), "throttled", "{error:?}");
}

#[tokio::test]
async fn a_missing_s3_object_reads_as_none() {
    let get = mock!(aws_sdk_s3::Client::get_object)
        .sequence()
        .http_status(404, Some(s3_error("NoSuchKey")))
        .build();
    assert_eq!(bucket(&[&get]).get("k").await, Ok(None));
}

#[tokio::test]
async fn iot_throttling_is_retryable() {
    let publish = mock!(aws_sdk_iotdataplane::Client::publish)
        .sequence()
        .http_status(
            429,
            Some(r#"{"message":"injected ThrottlingException"}"#.to_owned()),
        )
        .build();
    let client = mock_client!(
        aws_sdk_iotdataplane,
        RuleMode::MatchAny,
        &[&publish],
        |config| config.retry_config(aws_sdk_iotdataplane::config::retry::RetryConfig::disabled())
    );
    let error = IotPublisher::new(client)
        .publish("alleycat-subscribe/class-1", b"{}".to_vec())
        .await
        .unwrap_err();
    assert_eq!(kind(&error), "throttled", "{error:?}");
}

/// A claim item as DynamoDB returns it.
fn claim_item(racer_id: u32) -> HashMap<String, AttributeValue> {
    let mut item: HashMap<String, AttributeValue> =
        serde_dynamo::to_item(ClaimItem::from(&Claim {
            racer_id,
            identity_id: format!("eu-west-1:{racer_id}"),
            claimed_at: 1_700_000_000_000,
            expires_at: 1_700_086_400_000,
        }))
        .unwrap();
    item.insert(
        keys::PK.to_owned(),
        AttributeValue::S(keys::racer_pk(racer_id)),
    );
    item.insert(
        keys::SK.to_owned(),
        AttributeValue::S(keys::CLAIM_SK.to_owned()),
    );
    item
}

/// The key of racer `racer_id`'s claim.
fn claim_key(racer_id: u32) -> HashMap<String, AttributeValue> {
    [
        (
            keys::PK.to_owned(),
            AttributeValue::S(keys::racer_pk(racer_id)),
        ),
        (
            keys::SK.to_owned(),
            AttributeValue::S(keys::CLAIM_SK.to_owned()),
        ),
    ]
    .into()
}

/// How many keys a `BatchGetItem` asks of the table.
fn keys_asked(request: &aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemInput) -> usize {
    request
        .request_items()
        .and_then(|items| items.get("mocked"))
        .map_or(0, |keys| keys.keys().len())
}

#[tokio::test]
async fn batch_reads_go_100_keys_at_a_time_and_read_unprocessed_keys_again() {
    // 150 racers: a first request of 100 keys, of which DynamoDB answers 60 and leaves 40
    // unprocessed, then those 40 again, then the last 50.
    let first = mock!(aws_sdk_dynamodb::Client::batch_get_item)
        .match_requests(|request| keys_asked(request) == 100)
        .then_output(|| {
            BatchGetItemOutput::builder()
                .responses("mocked", (1..=60).map(claim_item).collect())
                .unprocessed_keys(
                    "mocked",
                    KeysAndAttributes::builder()
                        .set_keys(Some((61..=100).map(claim_key).collect()))
                        .build()
                        .unwrap(),
                )
                .build()
        });
    let unprocessed = mock!(aws_sdk_dynamodb::Client::batch_get_item)
        .match_requests(|request| keys_asked(request) == 40)
        .then_output(|| {
            BatchGetItemOutput::builder()
                .responses("mocked", (61..=100).map(claim_item).collect())
                .build()
        });
    let last = mock!(aws_sdk_dynamodb::Client::batch_get_item)
        .match_requests(|request| keys_asked(request) == 50)
        .then_output(|| {
            BatchGetItemOutput::builder()
                .responses("mocked", (101..=150).map(claim_item).collect())
                .build()
        });
    let table = table(&[&first, &unprocessed, &last]);
    let racers: Vec<u32> = (1..=150).collect();
    let claims = table.claims(&racers).await.unwrap();
    assert_eq!(claims.len(), 150);
    assert!(racers.iter().all(|racer| claims[racer].racer_id == *racer));
    assert_eq!(
        (first.num_calls(), unprocessed.num_calls(), last.num_calls()),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn keys_left_unprocessed_round_after_round_are_throttling() {
    let shed = mock!(aws_sdk_dynamodb::Client::batch_get_item).then_output(|| {
        BatchGetItemOutput::builder()
            .unprocessed_keys(
                "mocked",
                KeysAndAttributes::builder()
                    .set_keys(Some(vec![claim_key(7)]))
                    .build()
                    .unwrap(),
            )
            .build()
    });
    let table = table(&[&shed]);
    let error = table.claims(&[7]).await.unwrap_err();
    assert_eq!(kind(&error), "throttled", "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("BatchGetItem") && message.contains("unprocessed"),
        "{message}"
    );
    assert_eq!(shed.num_calls(), 5, "five rounds, then the caller's retry");
}
