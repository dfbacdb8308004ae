//! The leaderboard-writer handler end to end, on the in-memory table.

use std::collections::HashMap;
use std::error::Error;

use alleycat_domain::{Claim, LeaderboardEntry, Output, RacerFinal};
use alleycat_lambda::testing::{KinesisEventBuilder, Message, bad_messages, sequence_number};
use alleycat_lambda::{LenientKinesisEvent, Metrics};
use alleycat_ports::memory::MemoryTable;
use alleycat_ports::{Claims, Finals, PortError, RankedRecords, RetryPolicy, RowWrite};
use aws_lambda_events::event::streams::KinesisEventResponse;
use leaderboard_writer::{Config, FUNCTION_NAME, handle};

type TestResult = Result<(), Box<dyn Error>>;

const KINESIS: &[u8] = include_bytes!("../../../fixtures/events/kinesis.json");

fn config(attempts: u32) -> Config {
    Config {
        retry: RetryPolicy::immediate(attempts),
        ..Config::default()
    }
}

async fn run<F: Finals + RankedRecords + Claims>(
    event: LenientKinesisEvent,
    finals: &F,
    config: &Config,
) -> (KinesisEventResponse, Metrics) {
    let mut metrics = Metrics::new(FUNCTION_NAME);
    let response = handle(event, finals, config, &mut metrics).await;
    (response, metrics)
}

fn failures(response: &KinesisEventResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap_or_default())
        .collect()
}

fn output(value: f64) -> Output {
    Output::from_f64(value).unwrap()
}

fn best(table: &MemoryTable, class_id: u8, racer_id: u32) -> Option<LeaderboardEntry> {
    table
        .all_leaderboard_rows()
        .get(&(class_id, racer_id))
        .cloned()
}

#[tokio::test]
async fn fixture_finals_are_stored_and_set_leaderboard_records() -> TestResult {
    let event: LenientKinesisEvent = serde_json::from_slice(KINESIS)?;
    let table = MemoryTable::new();
    let (response, metrics) = run(event, &table, &config(3)).await;

    assert_eq!(
        serde_json::to_value(&response)?,
        serde_json::json!({"batchItemFailures": []})
    );
    let finals = table.all_finals();
    assert_eq!(
        finals
            .iter()
            .map(|f| (f.class_id, f.race_id, f.racer_id, f.name.as_str(), f.output))
            .collect::<Vec<_>>(),
        [
            (3, 5_400_172, 12, "Bo", output(162.0)),
            (5, 5_400_172, 21, "Chiara", output(156.6)),
        ]
    );
    let row = best(&table, 3, 12).expect("a leaderboard row");
    assert_eq!(
        (row.best, row.race_id, row.updated_at),
        (output(162.0), 5_400_172, 1_620_051_915_719)
    );
    assert_eq!(best(&table, 5, 21).map(|r| r.best), Some(output(156.6)));
    assert_eq!(metrics.get("RecordsIn"), 8);
    assert_eq!(metrics.get("Rejected"), 1);
    assert_eq!(metrics.get("NotFinal"), 5);
    assert_eq!(metrics.get("Finals"), 2);
    assert_eq!(metrics.get("NewRecord"), 2);
    Ok(())
}

#[tokio::test]
async fn every_class_of_bad_input_is_counted_and_the_rest_is_processed() {
    let mut event = KinesisEventBuilder::new().raw_record("%%%");
    for (_, data) in bad_messages() {
        event = event.record(&data);
    }
    let event = event
        .record(&Message::new(3, 5_400_172, 8).second(300).finish().to_json())
        .build();
    let table = MemoryTable::new();
    let (response, metrics) = run(event, &table, &config(3)).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(metrics.get("Rejected"), 7);
    assert_eq!(metrics.get("Finals"), 1);
    assert_eq!(table.all_finals().len(), 1);
}

#[tokio::test]
async fn redelivering_a_batch_gives_identical_state_and_no_new_record() -> TestResult {
    let table = MemoryTable::new();
    let config = config(3);
    run(serde_json::from_slice(KINESIS)?, &table, &config).await;
    let (finals, rows) = (table.all_finals(), table.all_leaderboard_rows());

    let (response, metrics) = run(serde_json::from_slice(KINESIS)?, &table, &config).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(table.all_finals(), finals);
    assert_eq!(table.all_leaderboard_rows(), rows);
    assert_eq!(
        (metrics.get("NewRecord"), metrics.get("NoNewRecord")),
        (0, 2)
    );
    Ok(())
}

#[tokio::test]
async fn only_a_better_final_becomes_the_record() {
    let table = MemoryTable::new();
    let config = config(3);
    let first = Message::new(3, 5_400_172, 8).second(300).finish();
    let worse = Message::new(3, 5_400_180, 8)
        .second(300)
        .finish()
        .effort(50.0, 50.0);
    let better = Message::new(3, 5_400_190, 8)
        .second(300)
        .finish()
        .effort(120.0, 90.0);

    let (_, metrics) = run(
        KinesisEventBuilder::new()
            .messages([&first, &worse])
            .build(),
        &table,
        &config,
    )
    .await;
    assert_eq!(
        (metrics.get("NewRecord"), metrics.get("NoNewRecord")),
        (1, 1)
    );
    assert_eq!(best(&table, 3, 8).map(|r| r.race_id), Some(5_400_172));

    let (_, metrics) = run(
        KinesisEventBuilder::new().messages([&better]).build(),
        &table,
        &config,
    )
    .await;
    assert_eq!(metrics.get("NewRecord"), 1);
    let row = best(&table, 3, 8).unwrap();
    assert_eq!((row.race_id, row.best), (5_400_190, output(240.25)));
    assert_eq!(table.all_finals().len(), 3, "every result is kept");
}

#[tokio::test]
async fn non_final_records_are_ignored_and_counted() {
    let table = MemoryTable::new();
    let event = KinesisEventBuilder::new()
        .messages(&[
            Message::new(3, 5_400_172, 8),
            Message::new(3, 5_400_172, 9).second(2),
        ])
        .build();
    let (response, metrics) = run(event, &table, &config(3)).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(metrics.get("NotFinal"), 2);
    assert!(table.all_finals().is_empty());
    assert_eq!(table.faults.calls("put_final"), 0);
}

#[tokio::test]
async fn throttling_is_retried_until_it_succeeds() {
    let table = MemoryTable::new();
    let throttled = PortError::Throttled("ProvisionedThroughputExceeded".to_owned());
    table.faults.fail("put_final", throttled.clone(), 2);
    table.faults.fail("write_records", throttled, 1);
    let event = KinesisEventBuilder::new()
        .messages(&[Message::new(3, 5_400_172, 8).second(300).finish()])
        .build();
    let (response, metrics) = run(event, &table, &config(3)).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(metrics.get("Retries"), 3);
    assert_eq!(metrics.get("NewRecord"), 1);
    assert_eq!(table.all_finals().len(), 1);
}

/// A table on which every call for one racer is throttled, whatever else happens.
#[derive(Clone, Debug)]
struct ThrottledRacer {
    table: MemoryTable,
    racer_id: u32,
}

impl ThrottledRacer {
    fn check(&self, racer_id: u32) -> Result<(), PortError> {
        if racer_id == self.racer_id {
            Err(PortError::Throttled("ThrottlingException".to_owned()))
        } else {
            Ok(())
        }
    }
}

impl Finals for ThrottledRacer {
    async fn put_final(&self, result: &RacerFinal) -> Result<(), PortError> {
        self.check(result.racer_id)?;
        self.table.put_final(result).await
    }

    async fn offer_record(
        &self,
        class_id: u8,
        entry: &LeaderboardEntry,
    ) -> Result<bool, PortError> {
        self.check(entry.racer_id)?;
        self.table.offer_record(class_id, entry).await
    }
}

impl RankedRecords for ThrottledRacer {
    async fn records(
        &self,
        class_id: u8,
        racer_ids: &[u32],
    ) -> Result<HashMap<u32, LeaderboardEntry>, PortError> {
        racer_ids.iter().try_for_each(|racer| self.check(*racer))?;
        self.table.records(class_id, racer_ids).await
    }

    async fn write_records(&self, class_id: u8, writes: &[RowWrite]) -> Result<(), PortError> {
        writes
            .iter()
            .try_for_each(|write| self.check(write.entry.racer_id))?;
        self.table.write_records(class_id, writes).await
    }

    async fn recount(&self, class_id: u8) -> Result<(), PortError> {
        self.table.recount(class_id).await
    }
}

impl Claims for ThrottledRacer {
    async fn claims(&self, racer_ids: &[u32]) -> Result<HashMap<u32, Claim>, PortError> {
        self.table.claims(racer_ids).await
    }

    async fn put_claim(&self, claim: &Claim, expected: Option<&Claim>) -> Result<(), PortError> {
        self.table.put_claim(claim, expected).await
    }

    async fn delete_claim(&self, expected: &Claim) -> Result<(), PortError> {
        self.table.delete_claim(expected).await
    }
}

#[tokio::test]
async fn persistent_throttling_reports_the_racers_earliest_final_only() {
    // Positions: 0 racer 7, 1 racer 5, 2 racer 5 (not final), 3 racer 5 (next race), 4 racer 9.
    let event = KinesisEventBuilder::new()
        .messages(&[
            Message::new(3, 5_400_172, 7).second(300).finish(),
            Message::new(3, 5_400_172, 5).second(300).finish(),
            Message::new(3, 5_400_173, 5),
            Message::new(3, 5_400_173, 5).second(300).finish(),
            Message::new(3, 5_400_172, 9).second(300).finish(),
        ])
        .build();
    let table = MemoryTable::new();
    let store = ThrottledRacer {
        table: table.clone(),
        racer_id: 5,
    };
    let (response, metrics) = run(event, &store, &config(4)).await;

    assert_eq!(failures(&response), [sequence_number(1)]);
    assert_eq!(metrics.get("Failed"), 1);
    assert_eq!(
        metrics.get("Skipped"),
        1,
        "racer 5's later final waits for the retry"
    );
    assert_eq!(metrics.get("Retries"), 3);
    let racers: Vec<u32> = table.all_finals().iter().map(|f| f.racer_id).collect();
    assert_eq!(racers, [7, 9]);
}

#[tokio::test]
async fn when_every_racer_fails_the_earliest_record_is_reported() {
    let table = MemoryTable::new();
    table.faults.fail(
        "write_records",
        PortError::Permanent("AccessDenied".to_owned()),
        10,
    );
    let event = KinesisEventBuilder::new()
        .record(b"[]")
        .messages(&[
            Message::new(3, 5_400_172, 7).second(300).finish(),
            Message::new(3, 5_400_172, 5).second(300).finish(),
        ])
        .build();
    let (response, metrics) = run(event, &table, &config(4)).await;

    assert_eq!(failures(&response), [sequence_number(1)]);
    assert_eq!(metrics.get("Failed"), 2);
    assert_eq!(
        metrics.get("Retries"),
        0,
        "permanent errors are not retried"
    );
    assert_eq!(
        table.all_finals().len(),
        2,
        "the results were stored before the offer failed"
    );
}

/// The rank counts the rows of a class imply.
fn counts_of_rows(table: &MemoryTable, class_id: u8) -> std::collections::BTreeMap<u32, i64> {
    let rows = table.all_leaderboard_rows();
    alleycat_domain::leaderboard::bucket_counts(
        rows.iter()
            .filter(|((class, _), _)| *class == class_id)
            .map(|(_, row)| row),
    )
    .into_iter()
    .map(|(bucket, count)| (bucket, i64::try_from(count).unwrap()))
    .collect()
}

#[tokio::test]
async fn rank_counts_move_with_the_rows_and_a_replay_moves_nothing() {
    let table = MemoryTable::new();
    let config = config(3);
    let racers: Vec<Message> = (1..=150)
        .map(|racer| {
            Message::new(3, 5_400_172, racer)
                .second(300)
                .finish()
                .effort(40.0 + f64::from(i32::try_from(racer % 50).unwrap()), 50.0)
        })
        .collect();
    let batch = || KinesisEventBuilder::new().messages(&racers).build();
    let (response, metrics) = run(batch(), &table, &config).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(metrics.get("NewRecord"), 150);
    assert_eq!(table.faults.calls("write_records"), 2, "99 rows, then 51");
    assert_eq!(table.rank_counts(3), counts_of_rows(&table, 3));
    assert_eq!(table.rank_counts(3).values().sum::<i64>(), 150);

    let (_, metrics) = run(batch(), &table, &config).await;
    assert_eq!(metrics.get("NoNewRecord"), 150);
    assert_eq!(
        table.faults.calls("write_records"),
        2,
        "nothing to write again"
    );
    assert_eq!(table.rank_counts(3).values().sum::<i64>(), 150);

    // Better results move racers between buckets; the counts follow exactly.
    let better: Vec<Message> = (1..=150)
        .step_by(3)
        .map(|racer| {
            Message::new(3, 5_400_180, racer)
                .second(300)
                .finish()
                .effort(120.0, 90.0)
        })
        .collect();
    run(
        KinesisEventBuilder::new().messages(&better).build(),
        &table,
        &config,
    )
    .await;
    assert_eq!(table.rank_counts(3), counts_of_rows(&table, 3));
    assert_eq!(table.rank_counts(3).values().sum::<i64>(), 150);
}

#[tokio::test]
async fn a_concurrent_writer_makes_the_transaction_read_again() {
    let table = MemoryTable::new();
    table.faults.fail("write_records", PortError::Conflict, 2);
    let event = KinesisEventBuilder::new()
        .messages(&[Message::new(3, 5_400_172, 8).second(300).finish()])
        .build();
    let (response, metrics) = run(event, &table, &config(3)).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(metrics.get("Retries"), 2);
    assert_eq!(metrics.get("NewRecord"), 1);
    assert_eq!(
        table.faults.calls("records"),
        3,
        "each attempt reads the rows again"
    );
    assert_eq!(table.rank_counts(3).values().sum::<i64>(), 1);
}

#[test]
fn the_handler_future_can_run_on_a_multithreaded_runtime() {
    fn assert_send<T: Send>(_: &T) {}
    let table = MemoryTable::new();
    let config = Config::default();
    let mut metrics = Metrics::new(FUNCTION_NAME);
    let future = handle(
        LenientKinesisEvent::default(),
        &table,
        &config,
        &mut metrics,
    );
    assert_send(&future);
}
