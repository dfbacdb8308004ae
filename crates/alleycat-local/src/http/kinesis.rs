//! Kinesis: `POST /` with `X-Amz-Target: Kinesis_20131202.<Op>` (awsJson1.1), answered from
//! the stack's [`LocalStream`].
//!
//! Enough of the Kinesis API for the AWS SDK to write to the stack (the simulator's
//! `--target kinesis` with `AWS_ENDPOINT_URL=http://127.0.0.1:PORT`): `PutRecords`, `PutRecord`,
//! `DescribeStreamSummary`, `DescribeStream`, `ListShards` (every shard on one page) and
//! `CreateStream` (of the stack's stream only: `ResourceInUseException`). Records are appended in
//! one transaction before the response goes out, so an acknowledged record is durable. Requests
//! are validated as Kinesis validates them and errors carry Kinesis's `__type`s and messages: a
//! stream ARN of another account is `AccessDeniedException`, of another region
//! `ResourceNotFoundException` (the stack is one account, `000000000000`, in one region,
//! `local`); an `ExplicitHashKey` that is not a decimal number is a `ValidationException`, one
//! beyond 2^128-1 an `InvalidArgumentException`. A valid `ExplicitHashKey` and
//! `SequenceNumberForOrdering` are otherwise ignored: a record's shard is always its partition
//! key's. **SigV4 signatures are not checked**: the server is meant for the loopback interface,
//! where nothing else is authenticated either.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ACCOUNT_ID, MAX_BODY, Server, Shared, random_bytes};
use crate::stream::{LocalStream, sequence_string, shard_id};

/// `POST /` (the site answers the other methods of `/`).
pub(super) fn router<F: Send + Sync + 'static>() -> Router<Arc<Server<F>>> {
    Router::new().route("/", post(kinesis::<F>))
}

/// The `X-Amz-Target` prefix of Kinesis operations.
const KINESIS_TARGET: &str = "Kinesis_20131202.";
/// The content type of awsJson1.1 requests and responses.
pub(super) const AMZ_JSON: &str = "application/x-amz-json-1.1";
/// The region in ARNs.
const REGION: &str = "local";
/// Most records in one `PutRecords`.
const MAX_RECORDS: usize = 500;
/// Largest record data (Kinesis's default `MaxRecordSizeInKiB`).
const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Largest `PutRecords` request, data and partition keys.
const MAX_PUT_RECORDS_BYTES: usize = 5 * 1024 * 1024;
/// The hours the stream is described as keeping records.
const RETENTION_HOURS: u32 = 24;

/// A Kinesis error: its status, `__type` and message.
#[derive(Debug)]
struct KinesisError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl KinesisError {
    /// A client error (400).
    fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new("InvalidArgumentException", message)
    }

    fn not_found(stream: &str) -> Self {
        Self::new(
            "ResourceNotFoundException",
            format!("Stream {stream} under account {ACCOUNT_ID} not found."),
        )
    }

    /// The service failed (500: the SDK retries).
    fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "InternalFailure",
            message: message.into(),
        }
    }
}

/// Constraint violations, reported together as AWS's `ValidationException` does.
#[derive(Default)]
struct Violations(Vec<String>);

impl Violations {
    /// A violation by `shown` (a quoted value, `null`, or empty for values AWS does not show)
    /// at `member`.
    fn add(&mut self, shown: &str, member: &str, constraint: &str) {
        let value = if shown.is_empty() {
            "Value".to_owned()
        } else {
            format!("Value {shown}")
        };
        self.0.push(format!(
            "{value} at '{member}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// Checks that `length` is within `min..=max`.
    fn length(&mut self, shown: &str, member: &str, length: usize, min: usize, max: usize) {
        if length < min {
            let constraint = format!("Member must have length greater than or equal to {min}");
            self.add(shown, member, &constraint);
        } else if length > max {
            let constraint = format!("Member must have length less than or equal to {max}");
            self.add(shown, member, &constraint);
        }
    }

    fn finish(self) -> Result<(), KinesisError> {
        let detected = match self.0.len() {
            0 => return Ok(()),
            1 => "1 validation error detected".to_owned(),
            n => format!("{n} validation errors detected"),
        };
        Err(KinesisError::new(
            "ValidationException",
            format!("{detected}: {}", self.0.join("; ")),
        ))
    }
}

/// The stream an operation names.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StreamInput {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
}

/// One record to put.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecordInput {
    data: Option<String>,
    partition_key: Option<String>,
    explicit_hash_key: Option<String>,
}

/// `PutRecords`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsInput {
    #[serde(flatten)]
    stream: StreamInput,
    records: Option<Vec<RecordInput>>,
}

/// `PutRecord`.
#[derive(Debug, Deserialize)]
struct PutRecordInput {
    #[serde(flatten)]
    stream: StreamInput,
    #[serde(flatten)]
    record: RecordInput,
}

/// Answers one Kinesis request.
async fn kinesis<F>(State(server): Shared<F>, request: Request) -> Response {
    let request_id = uuid();
    let (status, body) = match kinesis_call(&server.state.stream, server.started_ms, request).await
    {
        Ok(body) => (StatusCode::OK, body),
        Err(error) => {
            if error.status.is_server_error() {
                tracing::error!(kind = error.kind, message = %error.message, "Kinesis request failed");
            } else {
                tracing::info!(kind = error.kind, message = %error.message, "Kinesis request refused");
            }
            let body = json!({ "__type": error.kind, "message": error.message });
            (error.status, body)
        }
    };
    let headers = [
        (header::CONTENT_TYPE, AMZ_JSON.to_owned()),
        (HeaderName::from_static("x-amzn-requestid"), request_id),
    ];
    (status, headers, body.to_string()).into_response()
}

/// A random id shaped as AWS request ids are (a UUID).
fn uuid() -> String {
    let hex = hex::encode(random_bytes(16));
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Runs the operation `request` names on `stream`, created at `created_ms`.
async fn kinesis_call(
    stream: &Arc<LocalStream>,
    created_ms: u64,
    request: Request,
) -> Result<Value, KinesisError> {
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .unwrap_or_default();
    let Some(operation) = target.strip_prefix(KINESIS_TARGET) else {
        return Err(KinesisError::new(
            "UnknownOperationException",
            format!("not a Kinesis operation: X-Amz-Target {target:?}"),
        ));
    };
    let operation = operation.to_owned();
    let body = axum::body::to_bytes(request.into_body(), MAX_BODY)
        .await
        .map_err(|_| KinesisError::invalid(format!("the request exceeds {MAX_BODY} bytes")))?;
    let input: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|error| KinesisError::new("SerializationException", error.to_string()))?
    };
    let kinesis = Kinesis {
        stream,
        created_ms,
        operation: &operation,
    };
    match operation.as_str() {
        "PutRecords" => kinesis.put_records(parse(input)?).await,
        "PutRecord" => kinesis.put_record(parse(input)?).await,
        "DescribeStreamSummary" => kinesis.describe_summary(&parse(input)?),
        "DescribeStream" => kinesis.describe(&parse(input)?),
        "ListShards" => kinesis.list_shards(&parse(input)?),
        "CreateStream" => kinesis.create(&parse(input)?),
        _ => Err(KinesisError::new(
            "UnknownOperationException",
            format!("the embedded stack does not implement Kinesis {operation}"),
        )),
    }
}

/// Reads an operation's input.
fn parse<T: serde::de::DeserializeOwned>(input: Value) -> Result<T, KinesisError> {
    serde_json::from_value(input)
        .map_err(|error| KinesisError::new("SerializationException", error.to_string()))
}

/// The stack's stream as the Kinesis API shows it.
struct Kinesis<'s> {
    stream: &'s Arc<LocalStream>,
    created_ms: u64,
    /// The operation called (`PutRecords`…), for messages.
    operation: &'s str,
}

impl Kinesis<'_> {
    fn arn(&self) -> String {
        format!(
            "arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/{}",
            self.stream.name()
        )
    }

    /// Checks that `input` names this stream, by name or ARN: first the members' constraints,
    /// reported together with the operation's own `violations`, then the name itself.
    fn check(&self, input: &StreamInput, mut violations: Violations) -> Result<(), KinesisError> {
        let name = input.stream_name.as_deref();
        if let Some(name) = name {
            let shown = format!("'{name}'");
            violations.length(&shown, "streamName", name.chars().count(), 1, 128);
            let valid = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !valid {
                violations.add(
                    &shown,
                    "streamName",
                    "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
                );
            }
        }
        let mut foreign = None;
        let from_arn = input.stream_arn.as_deref().and_then(|arn| {
            let Some(parsed) = parse_stream_arn(arn) else {
                violations.add(
                    &format!("'{arn}'"),
                    "streamARN",
                    "Member must satisfy regular expression pattern: \
                     arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
                );
                return None;
            };
            if parsed.account != ACCOUNT_ID {
                foreign = Some(KinesisError::new(
                    "AccessDeniedException",
                    format!(
                        "User: arn:aws:iam::{ACCOUNT_ID}:root is not authorized to perform: \
                         kinesis:{} on resource: {arn} because no resource-based policy allows \
                         the kinesis:{} action",
                        self.operation, self.operation
                    ),
                ));
            } else if parsed.region != REGION {
                foreign = Some(KinesisError::new(
                    "ResourceNotFoundException",
                    format!(
                        "Stream {} under account {ACCOUNT_ID} not found in region {REGION}.",
                        parsed.name
                    ),
                ));
            }
            Some(parsed.name)
        });
        violations.finish()?;
        if let Some(refused) = foreign {
            return Err(refused);
        }
        let named = match (name, from_arn) {
            (None, None) => {
                return Err(KinesisError::invalid(
                    "Either StreamName or StreamARN should be provided.",
                ));
            }
            (Some(name), Some(from_arn)) if name != from_arn => {
                return Err(KinesisError::invalid(format!(
                    "StreamName {name} and StreamARN {} name different streams.",
                    input.stream_arn.as_deref().unwrap_or_default()
                )));
            }
            (Some(named), _) | (None, Some(named)) => named,
        };
        if named == self.stream.name() {
            Ok(())
        } else {
            Err(KinesisError::not_found(named))
        }
    }

    /// Validates the records (`member(i)` prefixes the members of the `i`th, from 1, in
    /// messages), checks the stream, and appends the records in one transaction.
    async fn append(
        &self,
        stream: &StreamInput,
        records: Option<Vec<RecordInput>>,
        member: impl Fn(usize) -> String,
    ) -> Result<Vec<Value>, KinesisError> {
        let mut violations = Violations::default();
        let mut out_of_range = None;
        let mut batch = Vec::new();
        match &records {
            None => violations.add("null", "records", "Member must not be null"),
            Some(records) => {
                let shown = if records.is_empty() { "'[]'" } else { "" };
                violations.length(shown, "records", records.len(), 1, MAX_RECORDS);
            }
        }
        for (index, record) in records.into_iter().flatten().enumerate() {
            let member = member(index + 1);
            let key = match record.partition_key {
                None => {
                    violations.add(
                        "null",
                        &format!("{member}partitionKey"),
                        "Member must not be null",
                    );
                    String::new()
                }
                Some(key) => {
                    let shown = format!("'{key}'");
                    let length = key.chars().count();
                    violations.length(&shown, &format!("{member}partitionKey"), length, 1, 256);
                    key
                }
            };
            if let Some(key) = &record.explicit_hash_key {
                let error = check_hash_key(key, &member, &mut violations);
                out_of_range = out_of_range.or(error);
            }
            let data = match record.data.as_deref().map(|d| BASE64.decode(d)) {
                None => {
                    violations.add("null", &format!("{member}data"), "Member must not be null");
                    Vec::new()
                }
                Some(Err(error)) => {
                    return Err(KinesisError::new(
                        "SerializationException",
                        format!("{member}data is not base64: {error}"),
                    ));
                }
                Some(Ok(data)) => {
                    let member = format!("{member}data");
                    violations.length("", &member, data.len(), 0, MAX_RECORD_BYTES);
                    data
                }
            };
            batch.push((key, data));
        }
        self.check(stream, violations)?;
        if let Some(error) = out_of_range {
            return Err(error);
        }
        let size: usize = batch.iter().map(|(key, data)| key.len() + data.len()).sum();
        if size > MAX_PUT_RECORDS_BYTES {
            return Err(KinesisError::invalid("Records size exceeds 5 MB limit"));
        }
        let stream = Arc::clone(self.stream);
        let appended = tokio::task::spawn_blocking(move || stream.append(&batch, crate::now_ms()))
            .await
            .map_err(|error| KinesisError::internal(error.to_string()))?
            .map_err(|error| KinesisError::internal(error.to_string()))?;
        Ok(appended
            .into_iter()
            .map(|a| {
                json!({
                    "SequenceNumber": sequence_string(a.sequence),
                    "ShardId": shard_id(a.shard),
                })
            })
            .collect())
    }

    async fn put_records(&self, input: PutRecordsInput) -> Result<Value, KinesisError> {
        let results = self
            .append(&input.stream, input.records, |i| {
                format!("records.{i}.member.")
            })
            .await?;
        Ok(json!({
            "FailedRecordCount": 0,
            "Records": results,
            "EncryptionType": "NONE",
        }))
    }

    async fn put_record(&self, input: PutRecordInput) -> Result<Value, KinesisError> {
        let mut results = self
            .append(&input.stream, Some(vec![input.record]), |_| String::new())
            .await?;
        let mut result = results.pop().unwrap_or_default();
        result["EncryptionType"] = json!("NONE");
        Ok(result)
    }

    /// Checks that `input` names this stream.
    fn resolve(&self, input: &StreamInput) -> Result<(), KinesisError> {
        self.check(input, Violations::default())
    }

    /// `StreamCreationTimestamp`: epoch seconds, as awsJson1.1 writes timestamps.
    fn created(&self) -> f64 {
        Duration::from_millis(self.created_ms).as_secs_f64()
    }

    fn describe_summary(&self, input: &StreamInput) -> Result<Value, KinesisError> {
        self.resolve(input)?;
        Ok(json!({
            "StreamDescriptionSummary": {
                "StreamName": self.stream.name(),
                "StreamARN": self.arn(),
                "StreamStatus": "ACTIVE",
                "StreamModeDetails": { "StreamMode": "PROVISIONED" },
                "RetentionPeriodHours": RETENTION_HOURS,
                "StreamCreationTimestamp": self.created(),
                "EnhancedMonitoring": [{ "ShardLevelMetrics": [] }],
                "EncryptionType": "NONE",
                "OpenShardCount": self.stream.shards(),
                "ConsumerCount": 0,
            }
        }))
    }

    fn describe(&self, input: &StreamInput) -> Result<Value, KinesisError> {
        self.resolve(input)?;
        Ok(json!({
            "StreamDescription": {
                "StreamName": self.stream.name(),
                "StreamARN": self.arn(),
                "StreamStatus": "ACTIVE",
                "StreamModeDetails": { "StreamMode": "PROVISIONED" },
                "Shards": self.shards(),
                "HasMoreShards": false,
                "RetentionPeriodHours": RETENTION_HOURS,
                "StreamCreationTimestamp": self.created(),
                "EnhancedMonitoring": [{ "ShardLevelMetrics": [] }],
                "EncryptionType": "NONE",
            }
        }))
    }

    fn list_shards(&self, input: &StreamInput) -> Result<Value, KinesisError> {
        self.resolve(input)?;
        Ok(json!({ "Shards": self.shards() }))
    }

    fn create(&self, input: &StreamInput) -> Result<Value, KinesisError> {
        let name = input.stream_name.as_deref().unwrap_or_default();
        if name == self.stream.name() {
            return Err(KinesisError::new(
                "ResourceInUseException",
                format!("Stream {name} under account {ACCOUNT_ID} already exists."),
            ));
        }
        Err(KinesisError::invalid(format!(
            "the embedded stack has one stream, {}, and cannot create {name:?}",
            self.stream.name()
        )))
    }

    /// The shards, each with its slice of the hash key range as [`crate::stream::shard_for`]
    /// places keys: equal slices, the last one taking the remainder.
    fn shards(&self) -> Vec<Value> {
        let count = self.stream.shards();
        let slice = u128::MAX / u128::from(count);
        (0..count)
            .map(|shard| {
                let start = u128::from(shard) * slice;
                let end = if shard + 1 == count {
                    u128::MAX
                } else {
                    start + slice - 1
                };
                json!({
                    "ShardId": shard_id(shard),
                    "HashKeyRange": {
                        "StartingHashKey": start.to_string(),
                        "EndingHashKey": end.to_string(),
                    },
                    "SequenceNumberRange": { "StartingSequenceNumber": sequence_string(1) },
                })
            })
            .collect()
    }
}

/// The parts of a Kinesis stream ARN (`arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`).
#[derive(Debug, PartialEq, Eq)]
struct StreamArn<'a> {
    region: &'a str,
    account: &'a str,
    name: &'a str,
}

/// Reads a Kinesis stream ARN; `None` if it is not one.
fn parse_stream_arn(arn: &str) -> Option<StreamArn<'_>> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("kinesis"), Some(region), Some(account), Some(res)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let name = res.strip_prefix("stream/")?;
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    let name_ok = !name.is_empty() && !name.contains(char::is_whitespace);
    (partition.starts_with("aws") && account_ok && name_ok).then_some(StreamArn {
        region,
        account,
        name,
    })
}

/// Checks an `ExplicitHashKey` as Kinesis does: the pattern `0|([1-9]\d{0,38})` (a violation,
/// reported with the others as a `ValidationException`), then the range of the 128-bit hash key
/// space (an `InvalidArgumentException`, once the request is otherwise valid).
fn check_hash_key(key: &str, member: &str, violations: &mut Violations) -> Option<KinesisError> {
    let digits = key.bytes().all(|b| b.is_ascii_digit());
    let pattern = key == "0" || (digits && (1..=39).contains(&key.len()) && !key.starts_with('0'));
    if !pattern {
        violations.add(
            &format!("'{key}'"),
            &format!("{member}explicitHashKey"),
            "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})",
        );
        return None;
    }
    key.parse::<u128>().is_err().then(|| {
        KinesisError::invalid(format!(
            "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. \
             Specified value was {key}"
        ))
    })
}
