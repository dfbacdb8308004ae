//! The arithmetic: usage times prices, one line per billed item.

use std::fmt::Write as _;

use serde::Serialize;

use crate::prices::{PriceTable, Prices, UnknownRegion};
use crate::usage::Usage;

/// One billed item.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    /// The service.
    pub service: &'static str,
    /// What is billed.
    pub item: String,
    /// How much of it.
    pub quantity: f64,
    /// In what unit the price is given.
    pub unit: &'static str,
    /// The price per unit.
    pub unit_price: f64,
    /// `quantity × unit_price`.
    pub dollars: f64,
}

/// What a run would cost on AWS.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bill {
    /// The region priced.
    pub region: String,
    /// When the prices were read.
    pub price_date: String,
    /// Every item, in the order of the flow.
    pub lines: Vec<Line>,
    /// Per service, in the order of the flow.
    pub services: Vec<(&'static str, f64)>,
    /// The sum.
    pub total: f64,
    /// What the run used.
    pub usage: Usage,
}

const MILLION: f64 = 1_000_000.0;
const GB: f64 = 1024.0 * 1024.0 * 1024.0;
/// Hours in a month, as AWS prorates monthly prices.
const HOURS_PER_MONTH: f64 = 730.0;

impl Bill {
    /// Prices `usage` in `region` of `table`.
    pub fn new(usage: &Usage, table: &PriceTable, region: &str) -> Result<Self, UnknownRegion> {
        let prices = table.region(region)?;
        let lines = lines(usage, prices);
        let mut services: Vec<(&'static str, f64)> = Vec::new();
        for line in &lines {
            match services.iter_mut().find(|(s, _)| *s == line.service) {
                Some((_, sum)) => *sum += line.dollars,
                None => services.push((line.service, line.dollars)),
            }
        }
        Ok(Self {
            region: region.to_owned(),
            price_date: table.date.clone(),
            total: lines.iter().map(|l| l.dollars).sum(),
            lines,
            services,
            usage: usage.clone(),
        })
    }

    /// The bill as a table for people.
    pub fn render(&self) -> String {
        let mut text = format!(
            "What this run would cost on AWS ({}, list prices of {}; see prices.json):\n",
            self.region, self.price_date
        );
        for line in &self.lines {
            let _ = writeln!(
                text,
                "  {:<10} {:<52} {:>14} {:<22} ${:.6}",
                line.service,
                line.item,
                quantity(line.quantity),
                line.unit,
                line.dollars
            );
        }
        let by_service: Vec<String> = self
            .services
            .iter()
            .map(|(service, dollars)| format!("{service} ${dollars:.4}"))
            .collect();
        let _ = write!(
            text,
            "  by service: {}\n  total ${:.4}",
            by_service.join(", "),
            self.total
        );
        text
    }
}

fn quantity(q: f64) -> String {
    if q.fract() == 0.0 {
        format!("{q:.0}")
    } else {
        format!("{q:.4}")
    }
}

fn line(
    service: &'static str,
    item: impl Into<String>,
    quantity: f64,
    unit: &'static str,
    unit_price: f64,
    per: f64,
) -> Line {
    Line {
        service,
        item: item.into(),
        quantity,
        unit,
        unit_price,
        dollars: quantity / per * unit_price,
    }
}

fn lines(usage: &Usage, p: &Prices) -> Vec<Line> {
    let mut lines = ingest(usage, p);
    lines.extend(compute(usage, p));
    lines.extend(storage_and_delivery(usage, p));
    lines
}

/// Bikes to the stream: IoT Core and Kinesis.
fn ingest(usage: &Usage, p: &Prices) -> Vec<Line> {
    vec![
        line(
            "IoT Core",
            "messages in (bikes → alleycat-publish)",
            usage.iot_messages_in as f64,
            "per million messages",
            p.iot_messages_per_million,
            MILLION,
        ),
        line(
            "IoT Core",
            "rules triggered",
            usage.iot_rules_triggered as f64,
            "per million",
            p.iot_rules_triggered_per_million,
            MILLION,
        ),
        line(
            "IoT Core",
            "rule actions (Kinesis)",
            usage.iot_rule_actions as f64,
            "per million",
            p.iot_actions_per_million,
            MILLION,
        ),
        line(
            "Kinesis",
            "shard-hours",
            f64::from(usage.kinesis_shards) * usage.seconds / 3600.0,
            "per shard-hour",
            p.kinesis_shard_hour,
            1.0,
        ),
        line(
            "Kinesis",
            "PUT payload units (25 KB)",
            usage.kinesis_put_units as f64,
            "per million units",
            p.kinesis_put_units_per_million,
            MILLION,
        ),
    ]
}

/// The functions, and the table they write.
fn compute(usage: &Usage, p: &Prices) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut requests = 0;
    for (function, lambda) in &usage.lambda {
        requests += lambda.invocations;
        lines.push(line(
            "Lambda",
            format!(
                "{function}: {} ms at {} MB",
                lambda.billed_ms, lambda.memory_mb
            ),
            lambda.gb_seconds(),
            "per GB-second",
            p.lambda_gb_second,
            1.0,
        ));
    }
    lines.push(line(
        "Lambda",
        "requests",
        requests as f64,
        "per million requests",
        p.lambda_requests_per_million,
        MILLION,
    ));
    lines.extend([
        line(
            "DynamoDB",
            "write request units",
            usage.dynamodb_write_units as f64,
            "per million WRU",
            p.dynamodb_write_units_per_million,
            MILLION,
        ),
        line(
            "DynamoDB",
            "read request units",
            usage.dynamodb_read_half_units as f64 / 2.0,
            "per million RRU",
            p.dynamodb_read_units_per_million,
            MILLION,
        ),
    ]);
    lines
}

/// History and delivery: Firehose, the buckets, the standings pushed to bikes, the API.
fn storage_and_delivery(usage: &Usage, p: &Prices) -> Vec<Line> {
    vec![
        line(
            "Firehose",
            "GB ingested (records rounded to 5 KB)",
            usage.firehose_billed_bytes as f64 / GB,
            "per GB",
            p.firehose_gb_ingested,
            1.0,
        ),
        line(
            "S3",
            "PUT requests",
            usage.s3_puts as f64,
            "per 1,000 requests",
            p.s3_puts_per_thousand,
            1000.0,
        ),
        line(
            "S3",
            "GET requests",
            usage.s3_gets as f64,
            "per 1,000 requests",
            p.s3_gets_per_thousand,
            1000.0,
        ),
        line(
            "S3",
            "storage for the run's duration (GB-months)",
            usage.s3_stored_bytes as f64 / GB * usage.seconds / 3600.0 / HOURS_PER_MONTH,
            "per GB-month",
            p.s3_gb_month,
            1.0,
        ),
        line(
            "IoT Core",
            "messages published (standings)",
            usage.iot_messages_published as f64,
            "per million messages",
            p.iot_messages_per_million,
            MILLION,
        ),
        line(
            "IoT Core",
            "deliveries to bikes (modeled)",
            usage.iot_deliveries_modeled as f64,
            "per million messages",
            p.iot_messages_per_million,
            MILLION,
        ),
        line(
            "IoT Core",
            "connection-minutes (modeled)",
            usage.iot_connection_minutes_modeled,
            "per million minutes",
            p.iot_connection_minutes_per_million,
            MILLION,
        ),
        line(
            "API",
            "HTTP API requests",
            usage.api_requests as f64,
            "per million requests",
            p.api_requests_per_million,
            MILLION,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::usage::LambdaUsage;

    /// A small run, priced by hand at the us-east-1 prices of the table.
    #[test]
    fn a_small_run_costs_what_the_hand_arithmetic_says() {
        let usage = Usage {
            seconds: 3600.0,
            kinesis_shards: 1,
            kinesis_records: 1_000_000,
            kinesis_put_units: 1_000_000,
            lambda: BTreeMap::from([(
                "race-aggregator".to_owned(),
                LambdaUsage {
                    invocations: 1000,
                    billed_ms: 1_000_000,
                    memory_mb: 256,
                },
            )]),
            dynamodb_write_units: 2_000_000,
            dynamodb_read_half_units: 1_000_000,
            firehose_records: 400_000,
            firehose_billed_bytes: 2 * 1024 * 1024 * 1024,
            s3_puts: 2000,
            s3_gets: 10_000,
            s3_stored_bytes: 0,
            iot_messages_in: 1_000_000,
            iot_rules_triggered: 1_000_000,
            iot_rule_actions: 1_000_000,
            iot_messages_published: 100_000,
            iot_deliveries_modeled: 1_000_000,
            iot_connection_minutes_modeled: 1_000_000.0,
            api_requests: 1_000_000,
        };
        let bill = Bill::new(&usage, PriceTable::builtin(), "us-east-1").unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        let service = |name: &str| bill.services.iter().find(|(s, _)| *s == name).unwrap().1;
        // IoT: $1.00 in + $0.15 rules + $0.15 actions + $0.10 published + $1.00 deliveries
        // + $0.08 connection-minutes.
        assert!(close(service("IoT Core"), 2.48), "{}", service("IoT Core"));
        // Kinesis: 1 shard-hour x $0.015 + 1 M PUT units x $0.014.
        assert!(close(service("Kinesis"), 0.029));
        // Lambda: 1,000 s x 0.25 GB = 250 GB-s x $0.0000133334 + 1,000 requests x $0.20/M.
        assert!(close(service("Lambda"), 0.003_333_35 + 0.0002));
        // DynamoDB: 2 M WRU x $0.625 + 0.5 M RRU x $0.125.
        assert!(close(service("DynamoDB"), 1.3125));
        // Firehose: 2 GB x $0.029.
        assert!(close(service("Firehose"), 0.058));
        // S3: 2 x $0.005 + 10 x $0.0004.
        assert!(close(service("S3"), 0.014));
        assert!(close(service("API"), 1.0));
        assert!(close(bill.total, 4.897_033_35), "{}", bill.total);
        assert_eq!(
            bill.services.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            [
                "IoT Core", "Kinesis", "Lambda", "DynamoDB", "Firehose", "S3", "API"
            ]
        );
        let text = bill.render();
        assert!(text.contains("total $4.8970"), "{text}");
        let json = serde_json::to_value(&bill).unwrap();
        assert_eq!(json["region"], "us-east-1");
        assert_eq!(json["usage"]["kinesisPutUnits"], 1_000_000);
    }
}
