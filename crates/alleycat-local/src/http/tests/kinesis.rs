//! The Kinesis endpoint, by hand and through the AWS SDK.

use std::net::SocketAddr;

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use super::*;
use crate::stream::{sequence_string, shard_for, shard_id};

fn record(key: &str, data: &[u8]) -> Value {
    json!({ "PartitionKey": key, "Data": BASE64.encode(data) })
}

#[tokio::test]
async fn put_records_appends_durably_and_answers_sequence_numbers() {
    let stack = stack(FakeApi::default());
    let records = [("8", b"one"), ("11", b"two"), ("8", b"thr")];
    let input = json!({
        "StreamName": "alleycat",
        "Records": records.iter().map(|(k, d)| record(k, *d)).collect::<Vec<_>>(),
    });
    let (status, answer) = stack.kinesis("PutRecords", &input).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["FailedRecordCount"], 0);
    assert_eq!(answer["EncryptionType"], "NONE");
    let results = answer["Records"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    // Keys "8" and "11" fall in different halves of the hash key range.
    let (eight, eleven) = (shard_for("8", 2), shard_for("11", 2));
    assert_ne!(eight, eleven);
    let expected = [(eight, 1), (eleven, 1), (eight, 2)];
    for (result, (shard, sequence)) in results.iter().zip(expected) {
        assert_eq!(result["ShardId"], shard_id(shard));
        assert_eq!(result["SequenceNumber"], sequence_string(sequence));
    }

    // Durable as the response went out: readable, in order, with their keys.
    let stored = stack.stream.read(eight, None, 10).unwrap();
    let stored: Vec<_> = stored
        .iter()
        .map(|r| (r.partition_key.as_str(), r.data.as_slice()))
        .collect();
    assert_eq!(stored, [("8", &b"one"[..]), ("8", &b"thr"[..])]);
    assert_eq!(stack.stream.count().unwrap(), 3);

    let by_arn = json!({
        "StreamARN": "arn:aws:kinesis:local:000000000000:stream/alleycat",
        "PartitionKey": "11",
        "Data": BASE64.encode(b"four"),
    });
    let (status, answer) = stack.kinesis("PutRecord", &by_arn).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["ShardId"], shard_id(eleven));
    assert_eq!(answer["SequenceNumber"], sequence_string(2));
}

#[tokio::test]
async fn other_streams_are_not_found() {
    let stack = stack(FakeApi::default());
    let message = "Stream other under account 000000000000 not found.";
    for stream in [
        json!({ "StreamName": "other" }),
        json!({ "StreamARN": "arn:aws:kinesis:local:000000000000:stream/other" }),
    ] {
        let mut input = stream.clone();
        input["Records"] = json!([record("1", b"x")]);
        for (operation, input) in [("PutRecords", &input), ("DescribeStreamSummary", &stream)] {
            let (status, answer) = stack.kinesis(operation, input).await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(
                answer,
                json!({ "__type": "ResourceNotFoundException", "message": message }),
                "{operation} {input}"
            );
        }
    }
    assert_eq!(stack.stream.count().unwrap(), 0);
}

#[tokio::test]
async fn foreign_arns_and_hash_keys_out_of_range_are_refused_as_kinesis_refuses_them() {
    let stack = stack(FakeApi::default());
    let put = |arn: &str, hash_key: &str| {
        json!({
            "StreamARN": arn,
            "Records": [{ "Data": BASE64.encode(b"x"), "PartitionKey": "1", "ExplicitHashKey": hash_key }],
        })
    };
    let ours = "arn:aws:kinesis:local:000000000000:stream/alleycat";
    let refusals = [
        (
            put("arn:aws:kinesis:local:111111111111:stream/alleycat", "0"),
            "AccessDeniedException",
            "User: arn:aws:iam::000000000000:root is not authorized to perform: \
             kinesis:PutRecords on resource: arn:aws:kinesis:local:111111111111:stream/alleycat \
             because no resource-based policy allows the kinesis:PutRecords action",
        ),
        (
            put(
                "arn:aws:kinesis:us-east-1:000000000000:stream/alleycat",
                "0",
            ),
            "ResourceNotFoundException",
            "Stream alleycat under account 000000000000 not found in region local.",
        ),
        (
            put(ours, "340282366920938463463374607431768211456"),
            "InvalidArgumentException",
            "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. \
             Specified value was 340282366920938463463374607431768211456",
        ),
        (
            put(ours, "-1"),
            "ValidationException",
            "1 validation error detected: Value '-1' at 'records.1.member.explicitHashKey' \
             failed to satisfy constraint: Member must satisfy regular expression pattern: \
             0|([1-9]\\d{0,38})",
        ),
        (
            put(ours, "0123"),
            "ValidationException",
            "1 validation error detected: Value '0123' at 'records.1.member.explicitHashKey' \
             failed to satisfy constraint: Member must satisfy regular expression pattern: \
             0|([1-9]\\d{0,38})",
        ),
    ];
    for (input, kind, message) in refusals {
        let (status, answer) = stack.kinesis("PutRecords", &input).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{input}");
        assert_eq!(
            answer,
            json!({ "__type": kind, "message": message }),
            "{input}"
        );
    }
    assert_eq!(stack.stream.count().unwrap(), 0);
    // The largest hash key, and our own ARN, are fine.
    let (status, answer) = stack
        .kinesis("PutRecords", &put(ours, &u128::MAX.to_string()))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(stack.stream.count().unwrap(), 1);
}

#[tokio::test]
async fn invalid_requests_are_refused_as_kinesis_refuses_them() {
    let stack = stack(FakeApi::default());
    let refused = |answer: &Value, kind: &str| {
        assert_eq!(answer["__type"], kind, "{answer}");
        answer["message"].as_str().unwrap().to_owned()
    };

    let input = json!({ "StreamName": "alleycat", "Records": [record("", b"x")] });
    let (status, answer) = stack.kinesis("PutRecords", &input).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused(&answer, "ValidationException"),
        "1 validation error detected: Value '' at 'records.1.member.partitionKey' failed to \
         satisfy constraint: Member must have length greater than or equal to 1"
    );

    let too_many: Vec<_> = (0..501).map(|i| record(&i.to_string(), b"x")).collect();
    let input = json!({ "StreamName": "bad name", "Records": too_many });
    let (_, answer) = stack.kinesis("PutRecords", &input).await;
    let message = refused(&answer, "ValidationException");
    assert!(
        message.starts_with("2 validation errors detected: "),
        "{message}"
    );
    assert!(message.contains("less than or equal to 500"), "{message}");
    assert!(message.contains("'bad name' at 'streamName'"), "{message}");

    let input = json!({ "StreamName": "alleycat", "Records": [{ "PartitionKey": "1" }] });
    let (_, answer) = stack.kinesis("PutRecords", &input).await;
    let message = refused(&answer, "ValidationException");
    assert!(
        message.contains("Value null at 'records.1.member.data'"),
        "{message}"
    );

    let (_, answer) = stack
        .kinesis("PutRecords", &json!({ "Records": [record("1", b"x")] }))
        .await;
    refused(&answer, "InvalidArgumentException");

    let (_, answer) = stack.kinesis("PutRecords", &json!({ "Records": 7 })).await;
    refused(&answer, "SerializationException");

    let (_, answer) = stack
        .kinesis("CreateStream", &json!({ "StreamName": "alleycat" }))
        .await;
    assert_eq!(
        refused(&answer, "ResourceInUseException"),
        "Stream alleycat under account 000000000000 already exists."
    );

    let (_, answer) = stack.kinesis("GetRecords", &json!({})).await;
    refused(&answer, "UnknownOperationException");

    let (status, _, body) = stack
        .send(HttpRequest::post("/").body(Body::from("{}")).unwrap())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json_body(&body)["__type"], "UnknownOperationException");

    assert_eq!(
        stack.stream.count().unwrap(),
        0,
        "nothing refused was stored"
    );
}

#[tokio::test]
async fn the_stream_describes_itself_and_its_shards() {
    let stack = stack(FakeApi::default());
    let input = json!({ "StreamName": "alleycat" });

    let (status, answer) = stack.kinesis("DescribeStreamSummary", &input).await;
    assert_eq!(status, StatusCode::OK);
    let summary = &answer["StreamDescriptionSummary"];
    assert_eq!(summary["StreamName"], "alleycat");
    assert_eq!(
        summary["StreamARN"],
        "arn:aws:kinesis:local:000000000000:stream/alleycat"
    );
    assert_eq!(summary["StreamStatus"], "ACTIVE");
    assert_eq!(summary["OpenShardCount"], 2);
    assert_eq!(summary["StreamModeDetails"]["StreamMode"], "PROVISIONED");
    assert!(summary["StreamCreationTimestamp"].as_f64().unwrap() > 1.7e9);

    let (_, listed) = stack.kinesis("ListShards", &input).await;
    let (_, described) = stack.kinesis("DescribeStream", &input).await;
    assert_eq!(described["StreamDescription"]["Shards"], listed["Shards"]);
    assert_eq!(described["StreamDescription"]["HasMoreShards"], false);
    let shards = listed["Shards"].as_array().unwrap();
    let range = |i: usize, end: &str| {
        shards[i]["HashKeyRange"][end]
            .as_str()
            .unwrap()
            .parse::<u128>()
            .unwrap()
    };
    assert_eq!(shards.len(), 2);
    assert_eq!(shards[1]["ShardId"], "shardId-000000000001");
    assert_eq!(range(0, "StartingHashKey"), 0);
    assert_eq!(range(0, "EndingHashKey") + 1, range(1, "StartingHashKey"));
    assert_eq!(range(1, "EndingHashKey"), u128::MAX);
    // The ranges place keys where the stream does.
    let hash = |key: &str| {
        use md5::Digest as _;
        u128::from_be_bytes(md5::Md5::digest(key.as_bytes()).into())
    };
    for key in ["8", "11", "42", "1000"] {
        let shard = usize::try_from(shard_for(key, 2)).unwrap();
        assert!(range(shard, "StartingHashKey") <= hash(key), "{key}");
        assert!(hash(key) <= range(shard, "EndingHashKey"), "{key}");
    }
}

/// A real AWS SDK client of the server at `addr`.
fn sdk_client(addr: SocketAddr) -> aws_sdk_kinesis::Client {
    use aws_sdk_kinesis::config::retry::RetryConfig;
    use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};

    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDLOCAL", "secret", None, None, "test"))
        .endpoint_url(format!("http://{addr}"))
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

fn sdk_entry(key: &str, data: &str) -> aws_sdk_kinesis::types::PutRecordsRequestEntry {
    aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
        .partition_key(key)
        .data(aws_sdk_kinesis::primitives::Blob::new(data))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_sdk_writes_to_the_stack() {
    use aws_sdk_kinesis::error::ProvideErrorMetadata as _;
    use aws_sdk_kinesis::primitives::Blob;
    use aws_sdk_kinesis::types::StreamStatus;

    let stack = stack(FakeApi::default());
    let (addr, stop, server) = stack.listen().await;
    let client = sdk_client(addr);

    // What the simulator's `ensure_stream` does.
    let create = client
        .create_stream()
        .stream_name("alleycat")
        .shard_count(2);
    let error = create.send().await.unwrap_err();
    assert_eq!(error.code(), Some("ResourceInUseException"), "{error:?}");
    let describe = client.describe_stream_summary().stream_name("alleycat");
    let summary = describe.send().await.unwrap();
    let summary = summary.stream_description_summary().unwrap();
    assert_eq!(summary.stream_status(), &StreamStatus::Active);
    assert_eq!(summary.open_shard_count(), 2);
    assert!(summary.stream_creation_timestamp().secs() > 1_700_000_000);

    let records = (0..3)
        .map(|i| sdk_entry(&i.to_string(), &format!("record {i}")))
        .collect();
    let put = client.put_records().stream_name("alleycat");
    let output = put.set_records(Some(records)).send().await.unwrap();
    assert_eq!(output.failed_record_count(), Some(0));
    assert_eq!(output.records().len(), 3);
    assert!(output.records().iter().all(|r| r.error_code().is_none()
        && r.sequence_number().is_some()
        && r.shard_id().is_some_and(|s| s.starts_with("shardId-"))));

    let output = client
        .put_record()
        .stream_arn("arn:aws:kinesis:local:000000000000:stream/alleycat")
        .partition_key("3")
        .data(Blob::new("record 3"))
        .send()
        .await
        .unwrap();
    assert_eq!(output.shard_id(), shard_id(shard_for("3", 2)));

    let shards = client.list_shards().stream_name("alleycat").send().await;
    assert_eq!(shards.unwrap().shards().len(), 2);
    let described = client
        .describe_stream()
        .stream_name("alleycat")
        .send()
        .await;
    let described = described.unwrap();
    assert_eq!(described.stream_description().unwrap().shards().len(), 2);

    let elsewhere = client.put_records().stream_name("elsewhere");
    let error = elsewhere.records(sdk_entry("1", "lost")).send().await;
    let error = error.unwrap_err();
    assert_eq!(error.code(), Some("ResourceNotFoundException"), "{error:?}");
    assert_eq!(
        error.message(),
        Some("Stream elsewhere under account 000000000000 not found.")
    );

    let mut stored: Vec<String> = (0..2)
        .flat_map(|shard| stack.stream.read(shard, None, 100).unwrap())
        .map(|r| String::from_utf8(r.data).unwrap())
        .collect();
    stored.sort();
    assert_eq!(stored, ["record 0", "record 1", "record 2", "record 3"]);

    drop(client);
    stopped(stop, server).await;
}
