//! The price table: checked in as `prices.json`, dated, with the page each price comes from.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// One region's prices, in dollars.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Prices {
    /// Kinesis Data Streams (provisioned), per shard-hour.
    pub kinesis_shard_hour: f64,
    /// Per million PUT payload units.
    pub kinesis_put_units_per_million: f64,
    /// Lambda (arm64), per GB-second.
    pub lambda_gb_second: f64,
    /// Per million requests.
    pub lambda_requests_per_million: f64,
    /// DynamoDB on-demand, per million write request units.
    pub dynamodb_write_units_per_million: f64,
    /// Per million read request units.
    pub dynamodb_read_units_per_million: f64,
    /// Data Firehose, per GB ingested.
    pub firehose_gb_ingested: f64,
    /// S3 Standard, per thousand PUT requests.
    pub s3_puts_per_thousand: f64,
    /// Per thousand GET requests.
    pub s3_gets_per_thousand: f64,
    /// Per GB-month stored.
    pub s3_gb_month: f64,
    /// IoT Core, per million messages.
    pub iot_messages_per_million: f64,
    /// Per million connection-minutes.
    pub iot_connection_minutes_per_million: f64,
    /// Per million rules triggered.
    pub iot_rules_triggered_per_million: f64,
    /// Per million rule actions.
    pub iot_actions_per_million: f64,
    /// API Gateway HTTP API, per million requests.
    pub api_requests_per_million: f64,
}

/// The whole table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriceTable {
    /// Currency of every price.
    pub currency: String,
    /// When the prices were read.
    pub date: String,
    /// What to know before relying on them.
    pub note: String,
    /// The pricing page of each service.
    pub sources: BTreeMap<String, String>,
    /// Prices by region.
    pub regions: BTreeMap<String, Prices>,
}

/// A region the table has no prices for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no prices for region {region}; the price table has: {known}")]
pub struct UnknownRegion {
    /// The region asked for.
    pub region: String,
    /// The regions it has.
    pub known: String,
}

impl PriceTable {
    /// The checked-in table (`prices.json`).
    pub fn builtin() -> &'static Self {
        static TABLE: OnceLock<PriceTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            serde_json::from_str(include_str!("../prices.json")).expect("prices.json is valid")
        })
    }

    /// The prices of `region`.
    pub fn region(&self, region: &str) -> Result<&Prices, UnknownRegion> {
        self.regions.get(region).ok_or_else(|| UnknownRegion {
            region: region.to_owned(),
            known: self.regions.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_dated_sourced_and_complete() {
        let table = PriceTable::builtin();
        assert_eq!(table.currency, "USD");
        assert!(!table.date.is_empty());
        for service in [
            "kinesis",
            "lambda",
            "dynamodb",
            "firehose",
            "s3",
            "iot",
            "apigateway",
        ] {
            assert!(
                table.sources[service].starts_with("https://aws.amazon.com/"),
                "{service}"
            );
        }
        let prices = table.region("us-east-1").unwrap();
        assert!((prices.kinesis_shard_hour - 0.015).abs() < 1e-12);
        let error = table.region("mars-north-1").unwrap_err().to_string();
        assert!(
            error.contains("mars-north-1") && error.contains("us-east-1"),
            "{error}"
        );
    }
}
