//! The race-aggregator handler end to end, on the in-memory table.

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use alleycat_domain::{Claim, MaxMerge, Output, RaceKey, Standings};
use alleycat_lambda::testing::{KinesisEventBuilder, Message, bad_messages, sequence_number};
use alleycat_lambda::{LenientKinesisEvent, Metrics};
use alleycat_ports::memory::MemoryTable;
use alleycat_ports::{Claims, MergeStore, PortError, RetryPolicy};
use race_aggregator::window::{decode_state, encode_state};
use race_aggregator::{Config, FUNCTION_NAME, Response, handle};

type TestResult = Result<(), Box<dyn Error>>;

const KINESIS: &[u8] = include_bytes!("../../../fixtures/events/kinesis.json");
const KINESIS_WINDOW: &[u8] = include_bytes!("../../../fixtures/events/kinesis-window.json");

const CLASS_3: RaceKey = RaceKey {
    class_id: 3,
    race_id: 5_400_172,
};
const CLASS_5: RaceKey = RaceKey {
    class_id: 5,
    race_id: 5_400_172,
};
const CLASS_5_NEXT: RaceKey = RaceKey {
    class_id: 5,
    race_id: 5_400_173,
};

fn config(attempts: u32) -> Config {
    Config {
        retry: RetryPolicy::immediate(attempts),
        ..Config::default()
    }
}

fn standings(results: &[(u32, f64)]) -> Standings {
    results
        .iter()
        .map(|&(racer, output)| (racer, Output::from_f64(output).unwrap()))
        .collect()
}

async fn run<S: MergeStore<RaceKey, Standings> + Claims>(
    event: LenientKinesisEvent,
    store: &S,
    config: &Config,
) -> (Response, Metrics) {
    let mut metrics = Metrics::new(FUNCTION_NAME);
    let response = handle(event, store, config, &mut metrics).await;
    (response, metrics)
}

/// Two races of class 3 and one of class 5, in the order below; outputs are 151.788 for the
/// default effort, 143.75 for (80, 60) and 162 for (85, 70).
fn two_classes() -> Vec<Message> {
    vec![
        Message::new(3, 5_400_172, 8).second(13),
        Message::new(5, 5_400_172, 21).effort(80.0, 60.0),
        Message::new(3, 5_400_172, 12).effort(85.0, 70.0),
        Message::new(5, 5_400_172, 22),
        Message::new(3, 5_400_173, 8),
    ]
}

#[tokio::test]
async fn fixture_batch_updates_every_race_with_one_write() -> TestResult {
    let event: LenientKinesisEvent = serde_json::from_slice(KINESIS)?;
    let table = MemoryTable::new();
    let (response, metrics) = run(event, &table, &config(3)).await;

    assert_eq!(
        serde_json::to_value(&response)?,
        serde_json::json!({"batchItemFailures": []})
    );
    assert_eq!(
        table.all_standings(),
        BTreeMap::from([
            (CLASS_3, standings(&[(8, 151.788), (12, 162.0)])),
            (CLASS_5, standings(&[(21, 156.6)])),
            (CLASS_5_NEXT, standings(&[(22, 99.75)])),
        ])
    );
    for race in [CLASS_3, CLASS_5, CLASS_5_NEXT] {
        assert_eq!(table.standings_version(race), 1, "{race:?} written once");
    }
    assert_eq!(metrics.get("RecordsIn"), 8);
    assert_eq!(metrics.get("Rejected"), 1, "classId 7");
    assert_eq!(metrics.get("Races"), 3);
    assert_eq!(metrics.get("Writes"), 3);
    assert_eq!(metrics.get("FailedRaces"), 0);
    Ok(())
}

#[tokio::test]
async fn every_class_of_bad_input_is_counted_and_the_rest_is_processed() {
    let mut event = KinesisEventBuilder::new()
        .record(&Message::new(3, 5_400_172, 8).to_json())
        .raw_record("not*base64!");
    for (_, data) in bad_messages() {
        event = event.record(&data);
    }
    let event = event
        .record(&Message::new(3, 5_400_172, 12).to_json())
        .build();
    let table = MemoryTable::new();
    let (response, metrics) = run(event, &table, &config(3)).await;

    assert!(response.batch_item_failures().is_empty());
    assert_eq!(metrics.get("RecordsIn"), 9);
    assert_eq!(metrics.get("Rejected"), 7);
    assert_eq!(
        table.all_standings(),
        BTreeMap::from([(CLASS_3, standings(&[(8, 151.788), (12, 151.788)]))])
    );
}

#[tokio::test]
async fn redelivering_a_batch_gives_identical_standings_and_writes_nothing() -> TestResult {
    let table = MemoryTable::new();
    let config = config(3);
    let (_, first) = run(serde_json::from_slice(KINESIS)?, &table, &config).await;
    let after_first = table.all_standings();
    let stores = table.faults.calls("store");

    let (response, second) = run(serde_json::from_slice(KINESIS)?, &table, &config).await;
    assert!(response.batch_item_failures().is_empty());
    assert_eq!(table.all_standings(), after_first);
    assert_eq!(table.faults.calls("store"), stores, "no write at all");
    assert_eq!((first.get("Writes"), second.get("Writes")), (3, 0));
    assert_eq!(second.get("Unchanged"), 3);
    Ok(())
}

/// A table on which every write of one race fails, whatever else happens.
#[derive(Clone, Debug)]
struct FailingRace {
    table: MemoryTable,
    races: Vec<RaceKey>,
    error: PortError,
}

impl MergeStore<RaceKey, Standings> for FailingRace {
    type Version = u64;

    fn empty(&self, _race: &RaceKey) -> Standings {
        Standings::new()
    }

    async fn load(&self, race: &RaceKey) -> Result<Option<(Standings, u64)>, PortError> {
        MergeStore::<RaceKey, Standings>::load(&self.table, race).await
    }

    async fn store(
        &self,
        race: &RaceKey,
        standings: &Standings,
        expected: Option<&u64>,
    ) -> Result<(), PortError> {
        if self.races.contains(race) {
            return Err(self.error.clone());
        }
        self.table.store(race, standings, expected).await
    }
}

impl Claims for FailingRace {
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
async fn a_failed_race_reports_its_earliest_record_and_not_another_race() {
    // Positions: 0 rejected, 1 class 5, 2 class 3, 3 class 5, 4 class 3, 5 class 3 next race.
    let messages = two_classes();
    let event = KinesisEventBuilder::new()
        .record(b"garbage")
        .messages(&messages)
        .build();
    let table = MemoryTable::new();
    let store = FailingRace {
        table: table.clone(),
        races: vec![CLASS_5],
        error: PortError::Permanent("AccessDenied".to_owned()),
    };
    let (response, metrics) = run(event, &store, &config(3)).await;

    // Class 5's records are at positions 2 and 4; class 3's first (position 1) was written.
    assert_eq!(response.batch_item_failures(), [sequence_number(2)]);
    assert_eq!(metrics.get("FailedRaces"), 1);
    assert_eq!(metrics.get("Writes"), 2, "the other races are written");
    assert!(!table.all_standings().contains_key(&CLASS_5));
    assert!(table.all_standings().contains_key(&CLASS_3));
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": sequence_number(2)}]})
    );
}

#[tokio::test]
async fn of_several_failed_races_only_the_earliest_record_is_reported() {
    let messages = two_classes();
    let event = KinesisEventBuilder::new()
        .record(b"garbage")
        .messages(&messages)
        .build();
    let store = FailingRace {
        table: MemoryTable::new(),
        races: vec![
            RaceKey {
                class_id: 3,
                race_id: 5_400_173,
            },
            CLASS_3,
        ],
        error: PortError::Permanent("ValidationException".to_owned()),
    };
    let (response, metrics) = run(event, &store, &config(3)).await;

    // The next class 3 race starts at position 5, this class 3 race at position 1.
    assert_eq!(response.batch_item_failures(), [sequence_number(1)]);
    assert_eq!(metrics.get("FailedRaces"), 2);
}

#[tokio::test]
async fn throttling_is_retried_until_the_write_succeeds() {
    let table = MemoryTable::new();
    table
        .faults
        .fail("store", PortError::Throttled("slow down".to_owned()), 3);
    let event = KinesisEventBuilder::new().messages(&two_classes()).build();
    let (response, metrics) = run(event, &table, &config(4)).await;

    assert!(response.batch_item_failures().is_empty());
    assert_eq!(metrics.get("Retries"), 3);
    assert_eq!(metrics.get("Writes"), 3);
    assert_eq!(table.all_standings().len(), 3);
}

#[tokio::test]
async fn persistent_throttling_is_reported_after_the_policy_attempts() {
    let table = MemoryTable::new();
    table
        .faults
        .fail("store", PortError::Throttled("slow down".to_owned()), 100);
    let event = KinesisEventBuilder::new()
        .record(b"{}")
        .messages(&[Message::new(3, 5_400_172, 8), Message::new(3, 5_400_172, 9)])
        .build();
    let (response, metrics) = run(event, &table, &config(4)).await;

    assert_eq!(response.batch_item_failures(), [sequence_number(1)]);
    assert_eq!(table.faults.calls("store"), 4, "the policy's attempts");
    assert_eq!(metrics.get("Retries"), 3);
    assert_eq!(metrics.get("FailedRaces"), 1);
    assert!(table.all_standings().is_empty());
}

#[tokio::test]
async fn conflicts_are_reread_and_remerged() {
    let table = MemoryTable::new();
    table.faults.fail("store", PortError::Conflict, 2);
    let event = KinesisEventBuilder::new()
        .messages(&[Message::new(3, 5_400_172, 8)])
        .build();
    let (response, metrics) = run(event, &table, &config(3)).await;

    assert!(response.batch_item_failures().is_empty());
    assert_eq!(metrics.get("Conflicts"), 2);
    assert_eq!(table.faults.calls("load"), 3, "one read per attempt");
    assert_eq!(table.all_standings()[&CLASS_3], standings(&[(8, 151.788)]));
}

/// A table where another writer slips in one update between this handler's read and write.
#[derive(Clone, Debug)]
struct ConcurrentWriter {
    table: MemoryTable,
    theirs: Standings,
    done: Arc<AtomicBool>,
}

impl MergeStore<RaceKey, Standings> for ConcurrentWriter {
    type Version = u64;

    fn empty(&self, _race: &RaceKey) -> Standings {
        Standings::new()
    }

    async fn load(&self, race: &RaceKey) -> Result<Option<(Standings, u64)>, PortError> {
        MergeStore::<RaceKey, Standings>::load(&self.table, race).await
    }

    async fn store(
        &self,
        race: &RaceKey,
        standings: &Standings,
        expected: Option<&u64>,
    ) -> Result<(), PortError> {
        if !self.done.swap(true, Ordering::SeqCst) {
            let current = MergeStore::<RaceKey, Standings>::load(&self.table, race).await?;
            let (mut value, version) =
                current.map_or((Standings::new(), None), |(v, n)| (v, Some(n)));
            value.merge(&self.theirs);
            self.table.store(race, &value, version.as_ref()).await?;
        }
        self.table.store(race, standings, expected).await
    }
}

impl Claims for ConcurrentWriter {
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
async fn a_concurrent_writer_is_merged_not_overwritten() {
    let table = MemoryTable::new();
    let store = ConcurrentWriter {
        table: table.clone(),
        theirs: standings(&[(8, 200.0), (99, 50.0)]),
        done: Arc::default(),
    };
    let event = KinesisEventBuilder::new()
        .messages(&[
            Message::new(3, 5_400_172, 8),
            Message::new(3, 5_400_172, 12),
        ])
        .build();
    let (response, metrics) = run(event, &store, &config(3)).await;

    assert!(response.batch_item_failures().is_empty());
    assert_eq!(metrics.get("Conflicts"), 1);
    assert_eq!(
        table.all_standings()[&CLASS_3],
        standings(&[(8, 200.0), (12, 151.788), (99, 50.0)])
    );
}

fn window_event(
    messages: &[Message],
    state: &HashMap<String, String>,
    is_final: bool,
) -> LenientKinesisEvent {
    KinesisEventBuilder::new()
        .messages(messages)
        .window(state, is_final, false)
        .build()
}

#[tokio::test]
async fn window_state_accumulates_and_is_written_only_on_the_final_invoke() {
    let table = MemoryTable::new();
    let config = config(3);
    let batches = [
        vec![
            Message::new(3, 5_400_172, 8),
            Message::new(5, 5_400_172, 21),
        ],
        vec![
            Message::new(3, 5_400_172, 8).second(2).effort(90.0, 74.0),
            Message::new(3, 5_400_172, 12),
        ],
    ];
    let mut state = HashMap::new();
    for batch in &batches {
        let (response, metrics) = run(window_event(batch, &state, false), &table, &config).await;
        assert!(response.batch_item_failures().is_empty());
        assert_eq!(metrics.get("Writes") + metrics.get("Unchanged"), 0);
        state = response.window_state().expect("a window response").clone();
    }
    assert!(
        table.all_standings().is_empty(),
        "nothing written before the end"
    );
    let expected = BTreeMap::from([
        (CLASS_3, standings(&[(8, 173.75), (12, 151.788)])),
        (CLASS_5, standings(&[(21, 151.788)])),
    ]);
    assert_eq!(decode_state(&state), (expected.clone(), 0));

    let last = [Message::new(5, 5_400_173, 22)];
    let (response, metrics) = run(window_event(&last, &state, true), &table, &config).await;
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        serde_json::json!({"state": {}, "batchItemFailures": []})
    );
    assert_eq!(metrics.get("Writes"), 3);
    let mut expected = expected;
    expected.insert(CLASS_5_NEXT, standings(&[(22, 151.788)]));
    assert_eq!(table.all_standings(), expected);
}

#[tokio::test]
async fn window_fixture_final_invoke_writes_state_and_batch() -> TestResult {
    let event: LenientKinesisEvent = serde_json::from_slice(KINESIS_WINDOW)?;
    let table = MemoryTable::new();
    let (response, metrics) = run(event, &table, &config(3)).await;

    assert_eq!(response.window_state(), Some(&HashMap::new()));
    assert!(response.batch_item_failures().is_empty());
    assert_eq!(
        table.all_standings(),
        BTreeMap::from([
            (CLASS_3, standings(&[(8, 159.85), (12, 143.75)])),
            (CLASS_5, standings(&[(21, 144.9)])),
            (CLASS_5_NEXT, standings(&[(22, 99.75)])),
        ])
    );
    assert_eq!(metrics.get("Races"), 3);
    Ok(())
}

#[tokio::test]
async fn window_fixture_aggregate_invoke_carries_the_state_and_writes_nothing() -> TestResult {
    let mut json: serde_json::Value = serde_json::from_slice(KINESIS_WINDOW)?;
    json["isFinalInvokeForWindow"] = false.into();
    let event: LenientKinesisEvent = serde_json::from_slice(&serde_json::to_vec(&json)?)?;
    let table = MemoryTable::new();
    let (response, _) = run(event, &table, &config(3)).await;

    assert!(table.all_standings().is_empty());
    let state = response.window_state().expect("a window response");
    assert_eq!(state["3#5400172"], r#"{"8":159.85,"12":143.75}"#);
    assert_eq!(state["5#5400172"], r#"{"21":144.9}"#);
    assert_eq!(state["5#5400173"], r#"{"22":99.75}"#);
    Ok(())
}

#[tokio::test]
async fn a_failed_final_invoke_reports_its_first_record_and_its_retry_completes_the_window() {
    let table = MemoryTable::new();
    let state = encode_state(&BTreeMap::from([(CLASS_5, standings(&[(21, 99.0)]))]));
    let messages = [
        Message::new(3, 5_400_172, 8),
        Message::new(3, 5_400_172, 12),
    ];
    let failing = FailingRace {
        table: table.clone(),
        races: vec![CLASS_5],
        error: PortError::Throttled("slow down".to_owned()),
    };
    let (response, metrics) =
        run(window_event(&messages, &state, true), &failing, &config(2)).await;

    // The failed race has no record in this batch: the whole invocation must be retried.
    assert_eq!(response.batch_item_failures(), [sequence_number(0)]);
    assert_eq!(metrics.get("FailedRaces"), 1);
    let carried = decode_state(response.window_state().unwrap()).0;
    assert_eq!(
        carried.keys().copied().collect::<Vec<_>>(),
        [CLASS_3, CLASS_5]
    );

    // Lambda retries the final invocation with the same records and state.
    let (response, metrics) = run(window_event(&messages, &state, true), &table, &config(2)).await;
    assert!(response.batch_item_failures().is_empty());
    assert_eq!((metrics.get("Writes"), metrics.get("Unchanged")), (1, 1));
    assert_eq!(
        table.all_standings(),
        BTreeMap::from([
            (CLASS_3, standings(&[(8, 151.788), (12, 151.788)])),
            (CLASS_5, standings(&[(21, 99.0)])),
        ])
    );
}

#[tokio::test]
async fn a_failed_final_invoke_without_records_fails_the_whole_batch() {
    let table = MemoryTable::new();
    table
        .faults
        .fail("store", PortError::Transient("503".to_owned()), 10);
    let state = encode_state(&BTreeMap::from([(CLASS_5, standings(&[(21, 99.0)]))]));
    let (response, _) = run(window_event(&[], &state, true), &table, &config(2)).await;

    assert_eq!(response.batch_item_failures(), [String::new()]);
    assert_eq!(response.window_state(), Some(&state));
}

#[tokio::test]
async fn an_early_terminated_window_is_written_because_its_state_is_dropped() {
    let table = MemoryTable::new();
    let event = KinesisEventBuilder::new()
        .messages(&[Message::new(3, 5_400_172, 8)])
        .window(&HashMap::new(), false, true)
        .build();
    let (response, _) = run(event, &table, &config(2)).await;

    assert_eq!(response.window_state(), Some(&HashMap::new()));
    assert_eq!(table.all_standings().len(), 1);
}

#[tokio::test]
async fn unreadable_window_state_is_counted_and_the_rest_kept() {
    let table = MemoryTable::new();
    let mut state = encode_state(&BTreeMap::from([(CLASS_5, standings(&[(21, 99.0)]))]));
    state.insert("3#5400172".to_owned(), "not standings".to_owned());
    let (response, metrics) = run(window_event(&[], &state, false), &table, &config(2)).await;

    assert_eq!(metrics.get("StateRejected"), 1);
    assert_eq!(
        response.window_state().unwrap().keys().collect::<Vec<_>>(),
        ["5#5400172"]
    );
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
