//! The Kinesis sink's pacing, end to end through the runner, on a fake port under tokio's paused
//! clock (deterministic time): no one-second window of sends exceeds the shards' budget, sends
//! are spread across each second, every record arrives once, in order per racer.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alleycat_ports::{PortError, RetryPolicy};
use simulator::pacing::{Budget, Entry, RecordResult};
use simulator::sink::KinesisSinkConfig;
use simulator::{KinesisPort, KinesisSink, Race, RacePlan, Stats, Stop, run};
use tokio::time::Instant;

/// One request as the fake saw it.
#[derive(Clone, Debug)]
struct Request {
    at: Duration,
    records: u64,
    bytes: u64,
}

/// Accepts everything after a 30 ms round trip, except first attempts of every `fail_every`-th
/// record it sees; logs requests and delivered messages.
#[derive(Clone)]
struct FakeKinesis {
    start: Instant,
    fail_every: u64,
    seen: Arc<Mutex<u64>>,
    requests: Arc<Mutex<Vec<Request>>>,
    delivered: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl FakeKinesis {
    fn new(fail_every: u64) -> Self {
        Self {
            start: Instant::now(),
            fail_every,
            seen: Arc::default(),
            requests: Arc::default(),
            delivered: Arc::default(),
        }
    }
}

impl KinesisPort for FakeKinesis {
    async fn put_records(&self, entries: &[Entry]) -> Result<Vec<RecordResult>, PortError> {
        assert!(entries.len() <= 500);
        self.requests.lock().unwrap().push(Request {
            at: self.start.elapsed(),
            records: entries.len() as u64,
            bytes: entries.iter().map(Entry::cost).sum(),
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        let mut results = Vec::with_capacity(entries.len());
        for entry in entries {
            let n = {
                let mut seen = self.seen.lock().unwrap();
                *seen += 1;
                *seen
            };
            if self.fail_every > 0 && entry.attempts == 0 && n % self.fail_every == 0 {
                results.push(RecordResult::Failed(
                    "ProvisionedThroughputExceededException".to_owned(),
                ));
            } else {
                self.delivered.lock().unwrap().push(entry.data.clone());
                results.push(RecordResult::Ok);
            }
        }
        Ok(results)
    }
}

async fn ride(plan: &RacePlan, shards: u32, speed: f64, fake: FakeKinesis) -> Arc<Stats> {
    let mut race = Race::new(plan);
    let keys = (0..plan.racers)
        .map(|r| Arc::clone(race.partition_key(r)))
        .collect();
    let stats = Arc::new(Stats::default());
    let config = KinesisSinkConfig {
        budget: Budget::for_shards(shards),
        batch_size: 500,
        policy: RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(400),
        },
    };
    let sink = KinesisSink::start(fake, keys, config, Arc::clone(&stats));
    run(&mut race, sink, &stats, speed, &Stop::default())
        .await
        .unwrap();
    stats
}

/// Checks the budget over every one-second window starting at a send, and per 100 ms slot.
fn assert_within_budget(requests: &[Request], shards: u32) {
    let budget = Budget::for_shards(shards);
    for first in requests {
        let (records, bytes) = requests
            .iter()
            .filter(|r| r.at >= first.at && r.at < first.at + Duration::from_secs(1))
            .fold((0, 0), |(n, b), r| (n + r.records, b + r.bytes));
        assert!(
            records <= u64::from(budget.records_per_second),
            "{records} records in the second from {:?}",
            first.at
        );
        assert!(
            bytes <= budget.bytes_per_second,
            "{bytes} bytes from {:?}",
            first.at
        );
    }
    // Spread: no 100 ms slot carries more than a tenth of the budget.
    let mut per_slot = std::collections::BTreeMap::<u128, u64>::new();
    for r in requests {
        *per_slot.entry(r.at.as_millis() / 100).or_default() += r.records;
    }
    for (slot, records) in per_slot {
        assert!(
            records <= budget.slot_records(),
            "{records} records in slot {slot}"
        );
    }
}

fn plan(racers: u32, seconds: u16) -> RacePlan {
    RacePlan {
        racers,
        seconds,
        ..RacePlan::default()
    }
}

#[tokio::test(start_paused = true)]
async fn real_time_a_thousand_racers_on_one_shard() {
    let plan = plan(1000, 10);
    let fake = FakeKinesis::new(0);
    let stats = ride(&plan, 1, 1.0, fake.clone()).await;
    let requests = fake.requests.lock().unwrap().clone();
    assert_within_budget(&requests, 1);
    // Each simulated second's records went out within about that second.
    let last = requests.last().unwrap().at;
    assert!(
        last < Duration::from_millis(10_500),
        "last send at {last:?}"
    );
    let delivered = fake.delivered.lock().unwrap().clone();
    common::assert_in_order_per_racer(&delivered, &plan);
    common::assert_same_messages(delivered, common::oracle(&plan));
    assert_eq!(Stats::get(&stats.sent), 10_000);
    assert_eq!(Stats::get(&stats.lost), 0);
}

#[tokio::test(start_paused = true)]
async fn as_fast_as_possible_still_keeps_to_the_budget() {
    let plan = plan(1000, 10);
    let fake = FakeKinesis::new(0);
    let started = Instant::now();
    ride(&plan, 2, 0.0, fake.clone()).await;
    let requests = fake.requests.lock().unwrap().clone();
    assert_within_budget(&requests, 2);
    // 10,000 records at 2,000/s: about 5 s, not a burst.
    assert!(
        started.elapsed() >= Duration::from_millis(4_900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.delivered.lock().unwrap().len(), 10_000);
}

#[tokio::test(start_paused = true)]
async fn retries_share_the_budget_and_keep_each_racers_order() {
    let plan = RacePlan {
        start_offset_spread: 5,
        ..plan(1000, 8)
    };
    let fake = FakeKinesis::new(7);
    let stats = ride(&plan, 1, 1.0, fake.clone()).await;
    let requests = fake.requests.lock().unwrap().clone();
    assert_within_budget(&requests, 1);
    let delivered = fake.delivered.lock().unwrap().clone();
    common::assert_in_order_per_racer(&delivered, &plan);
    common::assert_same_messages(delivered, common::oracle(&plan));
    let rejected = Stats::get(&stats.rejected);
    assert!(rejected > 1000, "{rejected} rejected");
    assert_eq!(Stats::get(&stats.retried), rejected);
    assert_eq!(Stats::get(&stats.lost), 0);
}
