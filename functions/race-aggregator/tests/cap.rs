//! The cap on racers per race, against a real DynamoDB API (moto): a race at the cap, with the
//! largest racer ids, stays far under DynamoDB's 400 KB item limit and its live message within
//! one IoT Core billing unit (5 KB); racers past the cap are refused and counted; and a race whose item
//! would outgrow DynamoDB (a cap set far too high) is dropped once, not retried, so it cannot
//! hold up the shard.

use alleycat_aws::moto;
use alleycat_domain::live::{MAX_LIVE_BYTES, RealtimeMessage};
use alleycat_domain::{RaceKey, Standings};
use alleycat_lambda::Metrics;
use alleycat_lambda::testing::{KinesisEventBuilder, Message};
use alleycat_ports::{MergeStore, RetryPolicy};
use aws_sdk_dynamodb::types::AttributeValue;
use race_aggregator::{Config, FUNCTION_NAME, handle};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const RACE: RaceKey = RaceKey {
    class_id: 3,
    race_id: 5_400_172,
};

/// The size of an attribute value as DynamoDB counts it: strings by their bytes, numbers about
/// one byte per two significant digits plus one, maps and lists 3 bytes plus their elements
/// (each with its name, for maps) plus one byte each.
fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => {
            let digits = n.trim_start_matches('-').replace('.', "");
            let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
            significant.div_ceil(2) + 1
        }
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| k.len() + value_size(v) + 1)
                .sum::<usize>()
        }
        AttributeValue::L(list) => 3 + list.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        _ => 1,
    }
}

/// Every racer's max effort (the longest output, 470.25) in one batch per 1,000 racers, as
/// Lambda would deliver them.
async fn ride(
    table: &alleycat_aws::DynamoTable,
    racers: impl Iterator<Item = i64>,
    config: &Config,
) -> (Metrics, Vec<String>) {
    let messages: Vec<Message> = racers
        .map(|racer| Message::new(3, 5_400_172, racer).effort(250.0, 100.0))
        .collect();
    let mut metrics = Metrics::new(FUNCTION_NAME);
    let mut failures = Vec::new();
    for batch in messages.chunks(1000) {
        let event = KinesisEventBuilder::new().messages(batch).build();
        failures.extend(
            handle(event, table, config, &mut metrics)
                .await
                .batch_item_failures(),
        );
    }
    (metrics, failures)
}

#[tokio::test]
async fn a_race_at_the_cap_stays_under_every_limit_and_refuses_the_rest() -> TestResult {
    let table = moto::table().await;
    let config = Config {
        retry: RetryPolicy::immediate(3),
        ..Config::default()
    };
    let cap = config.max_racers_per_race;
    // The largest racer ids there are, ten more racers than the cap.
    let first = 1_000_000 - i64::try_from(cap)? - 9;
    let (metrics, failures) = ride(&table, first..=1_000_000, &config).await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(metrics.get("Rejected.over_cap"), 10);
    let (stored, _) = MergeStore::<RaceKey, Standings>::load(&table, &RACE)
        .await?
        .ok_or("the race is stored")?;
    assert_eq!(stored.len(), cap);

    let item = table
        .client
        .get_item()
        .table_name(&table.table)
        .key("pk", AttributeValue::S("race#3#5400172".to_owned()))
        .key("sk", AttributeValue::S("standings".to_owned()))
        .send()
        .await?
        .item
        .ok_or("the item")?;
    let item_bytes: usize = item.iter().map(|(k, v)| k.len() + value_size(v)).sum();
    let message = RealtimeMessage::of(RACE, 1_620_051_628_707, &stored).to_json();
    eprintln!(
        "a race at the cap of {cap} racers: standings item {item_bytes} bytes (DynamoDB allows \
         409,600), live message {} bytes (one IoT Core unit is 5,120)",
        message.len()
    );
    assert!(item_bytes < 400 * 1024 / 4, "{item_bytes} bytes");
    assert!(message.len() <= MAX_LIVE_BYTES, "{} bytes", message.len());
    Ok(())
}

#[tokio::test]
async fn a_race_too_large_for_dynamodb_is_dropped_once_and_holds_up_nothing() -> TestResult {
    let table = moto::table().await;
    let config = Config {
        retry: RetryPolicy::immediate(3),
        max_racers_per_race: 100_000,
        ..Config::default()
    };
    // 40,000 racers in one batch: about 480 KB of standings.
    let messages: Vec<Message> = (960_001..=1_000_000)
        .map(|racer| Message::new(3, 5_400_172, racer).effort(250.0, 100.0))
        .collect();
    let event = KinesisEventBuilder::new().messages(&messages).build();
    let mut metrics = Metrics::new(FUNCTION_NAME);
    let response = handle(event, &table, &config, &mut metrics).await;
    assert!(
        response.batch_item_failures().is_empty(),
        "a write that can never succeed is not retried by Lambda"
    );
    assert_eq!(metrics.get("FailedRaces"), 1);
    assert_eq!(metrics.get("Retries"), 0, "and not by the handler either");
    assert_eq!(
        MergeStore::<RaceKey, Standings>::load(&table, &RACE).await?,
        None
    );
    Ok(())
}
