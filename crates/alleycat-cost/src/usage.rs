//! The billable quantities of a run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One function's invocations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaUsage {
    /// Requests.
    pub invocations: u64,
    /// Billed duration: each invocation's rounded up to the millisecond, summed.
    pub billed_ms: u64,
    /// Configured memory (the template's `MemorySize`).
    pub memory_mb: u64,
}

impl LambdaUsage {
    /// GB-seconds: billed duration times configured memory.
    pub fn gb_seconds(&self) -> f64 {
        self.billed_ms as f64 / 1000.0 * self.memory_mb as f64 / 1024.0
    }
}

/// What a run used, in the units AWS bills ([`crate::units`] rounds each operation as it is
/// counted). Counted by the embedded stack from the operations it makes; the few quantities only
/// a deployment has (bikes' connections, fan-out to subscribed bikes) are modeled, and named so.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// How long the run lasted, in seconds (shard-hours accrue over it).
    pub seconds: f64,
    /// Shards of the stream.
    pub kinesis_shards: u32,
    /// Records put into the stream.
    pub kinesis_records: u64,
    /// Their PUT payload units (25 KB each).
    pub kinesis_put_units: u64,
    /// Per function.
    pub lambda: BTreeMap<String, LambdaUsage>,
    /// DynamoDB write request units (index copies included).
    pub dynamodb_write_units: u64,
    /// DynamoDB read request units, in halves.
    pub dynamodb_read_half_units: u64,
    /// Records Firehose ingested.
    pub firehose_records: u64,
    /// Their billed bytes (each rounded up to 5 KB).
    pub firehose_billed_bytes: u64,
    /// S3 PUT requests (conditional ones refused included: S3 bills them).
    pub s3_puts: u64,
    /// S3 GET requests.
    pub s3_gets: u64,
    /// Bytes stored in the buckets at the end of the run.
    pub s3_stored_bytes: u64,
    /// IoT Core messages published by bikes to `alleycat-publish` (5 KB units).
    pub iot_messages_in: u64,
    /// IoT rules triggered by them.
    pub iot_rules_triggered: u64,
    /// IoT rule actions executed (one Kinesis put each).
    pub iot_rule_actions: u64,
    /// IoT Core messages the publisher published (5 KB units).
    pub iot_messages_published: u64,
    /// Modeled: deliveries of those to subscribed bikes, one per racer of the race (5 KB units).
    pub iot_deliveries_modeled: u64,
    /// Modeled: bikes' connection minutes, one per 60 device messages (a bike sends one a second).
    pub iot_connection_minutes_modeled: f64,
    /// HTTP API requests.
    pub api_requests: u64,
}
