//! Pacing and retries for Kinesis, as a pure state machine (time is passed in), so the budget,
//! ordering and retry rules are unit-tested without a clock or a network.
//!
//! **Budget.** A shard takes 1,000 records/s and 1 MiB/s (data plus partition key). With
//! `--shards N` the budget is N times that. Time is cut into [`SLOTS_PER_SECOND`] slots; at the
//! start of each slot the dispatcher takes at most 1/[`SLOTS_PER_SECOND`] of the budget, and never
//! more than what is left of the budget over the last second of actual sends. Records are
//! therefore spread across each second, and no one-second window ever holds more than the budget.
//!
//! **Requests.** A slot's records go out in PutRecords requests of at most `--batch-size` (≤ 500)
//! records and 5 MiB.
//!
//! **Order.** Each racer has its own queue, and only its head may be in flight: a racer's second 12
//! is never sent before its second 11 is acknowledged (a PutRecords request does not keep order
//! between its records, and a retried record would otherwise overtake the next one).
//!
//! **Retries.** A refused record (a failed entry, or a request failing as a whole with a retryable
//! error) goes back to the head of its racer's queue, ready again after a full-jitter backoff
//! ([`RetryPolicy::backoff`]); after `max_attempts` attempts it is lost and the racer moves on.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use alleycat_ports::RetryPolicy;

/// Records per second one shard accepts.
pub const SHARD_RECORDS_PER_SECOND: u32 = 1_000;
/// Bytes (data plus partition key) per second one shard accepts.
pub const SHARD_BYTES_PER_SECOND: u64 = 1024 * 1024;
/// Most records in one PutRecords request.
pub const MAX_REQUEST_RECORDS: usize = 500;
/// Most bytes (data plus partition keys) in one PutRecords request.
pub const MAX_REQUEST_BYTES: u64 = 5 * 1024 * 1024;
/// How many slices a second is paced in.
pub const SLOTS_PER_SECOND: u32 = 10;

/// The throughput allowed: per second, and per slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Records per second.
    pub records_per_second: u32,
    /// Bytes per second.
    pub bytes_per_second: u64,
    /// Slots per second.
    pub slots_per_second: u32,
}

impl Budget {
    /// The budget of `shards` shards.
    pub fn for_shards(shards: u32) -> Self {
        let shards = shards.max(1);
        Self {
            records_per_second: SHARD_RECORDS_PER_SECOND.saturating_mul(shards),
            bytes_per_second: SHARD_BYTES_PER_SECOND.saturating_mul(u64::from(shards)),
            slots_per_second: SLOTS_PER_SECOND,
        }
    }

    /// Time between slots.
    pub fn slot(&self) -> Duration {
        Duration::from_secs(1) / self.slots_per_second.max(1)
    }

    /// Records one slot may take.
    pub fn slot_records(&self) -> u64 {
        u64::from(
            self.records_per_second
                .div_ceil(self.slots_per_second.max(1)),
        )
    }

    /// Bytes one slot may take.
    pub fn slot_bytes(&self) -> u64 {
        self.bytes_per_second
            .div_ceil(u64::from(self.slots_per_second.max(1)))
    }
}

/// One record on its way: which racer's queue it belongs to, its partition key and data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The racer's queue.
    pub racer: u32,
    /// Partition key.
    pub key: Arc<str>,
    /// The message.
    pub data: Vec<u8>,
    /// Attempts made so far.
    pub attempts: u32,
}

impl Entry {
    /// What the record counts against the byte budgets: data plus partition key.
    pub fn cost(&self) -> u64 {
        (self.data.len() + self.key.len()) as u64
    }
}

/// The answer for one record of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordResult {
    /// Stored.
    Ok,
    /// Refused, with Kinesis's error code (`ProvisionedThroughputExceededException`,
    /// `InternalFailure`, …).
    Failed(String),
}

/// What one completed request changed, for the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Completion {
    /// Records acknowledged.
    pub sent: u64,
    /// Records refused.
    pub rejected: u64,
    /// Records queued again for a retry.
    pub retried: u64,
    /// Records out of attempts.
    pub lost: u64,
}

/// Per-racer queues, the ready heap, and the record of recent sends.
#[derive(Debug)]
pub struct Dispatcher {
    budget: Budget,
    batch_size: usize,
    policy: RetryPolicy,
    queues: Vec<VecDeque<Entry>>,
    in_flight: Vec<bool>,
    /// Racers whose head may be sent, by (ready time, arrival order).
    ready: BinaryHeap<Reverse<(Duration, u64, u32)>>,
    order: u64,
    /// Sends of the last second: (time, records, bytes).
    recent: VecDeque<(Duration, u64, u64)>,
    recent_records: u64,
    recent_bytes: u64,
    queued: usize,
    flying: usize,
}

impl Dispatcher {
    /// A dispatcher for `racers` racers.
    pub fn new(racers: u32, budget: Budget, batch_size: usize, policy: RetryPolicy) -> Self {
        let racers = racers as usize;
        Self {
            budget,
            batch_size: batch_size.clamp(1, MAX_REQUEST_RECORDS),
            policy,
            queues: vec![VecDeque::new(); racers],
            in_flight: vec![false; racers],
            ready: BinaryHeap::new(),
            order: 0,
            recent: VecDeque::new(),
            recent_records: 0,
            recent_bytes: 0,
            queued: 0,
            flying: 0,
        }
    }

    /// Records waiting (not in flight).
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Records in flight.
    pub fn in_flight(&self) -> usize {
        self.flying
    }

    /// Whether nothing is waiting or in flight.
    pub fn is_idle(&self) -> bool {
        self.queued == 0 && self.flying == 0
    }

    fn schedule(&mut self, racer: u32, at: Duration) {
        self.order += 1;
        self.ready.push(Reverse((at, self.order, racer)));
    }

    /// Queues a new record, arrived at `now`.
    pub fn push(&mut self, now: Duration, entry: Entry) {
        let racer = entry.racer;
        let queue = &mut self.queues[racer as usize];
        let was_idle = queue.is_empty() && !self.in_flight[racer as usize];
        queue.push_back(entry);
        self.queued += 1;
        if was_idle {
            self.schedule(racer, now);
        }
    }

    /// Takes what the slot starting at `now` may send, as requests.
    pub fn take(&mut self, now: Duration) -> Vec<Vec<Entry>> {
        while let Some(&(at, records, bytes)) = self.recent.front() {
            if now.saturating_sub(at) < Duration::from_secs(1) {
                break;
            }
            self.recent.pop_front();
            self.recent_records -= records;
            self.recent_bytes -= bytes;
        }
        let record_cap = self
            .budget
            .slot_records()
            .min(u64::from(self.budget.records_per_second).saturating_sub(self.recent_records));
        let byte_cap = self.budget.slot_bytes().min(
            self.budget
                .bytes_per_second
                .saturating_sub(self.recent_bytes),
        );

        let mut requests = Vec::new();
        let mut request: Vec<Entry> = Vec::new();
        let mut request_bytes = 0;
        let (mut records, mut bytes) = (0u64, 0u64);
        while let Some(&Reverse((at, _, racer))) = self.ready.peek() {
            if at > now || records >= record_cap {
                break;
            }
            let cost = self.queues[racer as usize].front().map_or(0, Entry::cost);
            // A record larger than a slot's share still goes, alone, once the last second's
            // sends leave room for it (or there were none).
            let fits = bytes + cost <= byte_cap
                || (records == 0
                    && (self.recent_bytes + cost <= self.budget.bytes_per_second
                        || self.recent_records == 0));
            if !fits {
                break;
            }
            self.ready.pop();
            let Some(entry) = self.queues[racer as usize].pop_front() else {
                continue;
            };
            self.in_flight[racer as usize] = true;
            self.queued -= 1;
            self.flying += 1;
            if request.len() == self.batch_size || request_bytes + cost > MAX_REQUEST_BYTES {
                requests.push(std::mem::take(&mut request));
                request_bytes = 0;
            }
            request_bytes += cost;
            records += 1;
            bytes += cost;
            request.push(entry);
        }
        if !request.is_empty() {
            requests.push(request);
        }
        if records > 0 {
            self.recent.push_back((now, records, bytes));
            self.recent_records += records;
            self.recent_bytes += bytes;
        }
        requests
    }

    /// Settles a request answered at `now`: `results` holds one answer per entry, in order, or
    /// `None` when the request failed as a whole with a retryable error.
    pub fn complete(
        &mut self,
        now: Duration,
        entries: Vec<Entry>,
        results: Option<&[RecordResult]>,
    ) -> Completion {
        let mut completion = Completion::default();
        for (i, mut entry) in entries.into_iter().enumerate() {
            let racer = entry.racer;
            self.in_flight[racer as usize] = false;
            self.flying -= 1;
            entry.attempts += 1;
            let ok = matches!(results.and_then(|r| r.get(i)), Some(RecordResult::Ok));
            if ok {
                completion.sent += 1;
            } else {
                completion.rejected += 1;
                if entry.attempts < self.policy.max_attempts.max(1) {
                    completion.retried += 1;
                    let backoff = self.policy.backoff(entry.attempts - 1);
                    self.queues[racer as usize].push_front(entry);
                    self.queued += 1;
                    self.schedule(racer, now + backoff);
                    continue;
                }
                completion.lost += 1;
            }
            if !self.queues[racer as usize].is_empty() {
                self.schedule(racer, now);
            }
        }
        completion
    }

    /// Gives up on everything still queued (a fatal error): returns how many records that was.
    /// Records in flight are the caller's to count.
    pub fn abandon(&mut self) -> u64 {
        let lost = self.queued as u64;
        for queue in &mut self.queues {
            queue.clear();
        }
        self.ready.clear();
        self.queued = 0;
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(racer: u32, second: u32, size: usize) -> Entry {
        let mut data = format!("{racer}:{second}:").into_bytes();
        data.resize(size.max(data.len()), b' ');
        Entry {
            racer,
            key: racer.to_string().into(),
            data,
            attempts: 0,
        }
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn slots_take_a_tenth_of_the_budget() {
        let mut d = Dispatcher::new(1000, Budget::for_shards(1), 500, RetryPolicy::immediate(3));
        for racer in 0..1000 {
            d.push(ms(0), entry(racer, 1, 100));
        }
        let mut sent = 0;
        for slot in 0..10 {
            let requests = d.take(ms(slot * 100));
            let n: usize = requests.iter().map(Vec::len).sum();
            assert_eq!(n, 100, "slot {slot}");
            sent += n;
            for request in requests {
                let ok = vec![RecordResult::Ok; request.len()];
                d.complete(ms(slot * 100 + 10), request, Some(&ok));
            }
        }
        assert_eq!(sent, 1000);
        assert!(d.is_idle());
    }

    #[test]
    fn the_byte_budget_binds_for_large_records() {
        // 10 KiB records: a slot's 102.4 KiB takes 10 of them, whatever the record budget.
        let mut d = Dispatcher::new(100, Budget::for_shards(1), 500, RetryPolicy::immediate(3));
        for racer in 0..100 {
            d.push(ms(0), entry(racer, 1, 10 * 1024 - 2));
        }
        let requests = d.take(ms(0));
        assert_eq!(requests.iter().map(Vec::len).sum::<usize>(), 10);
    }

    #[test]
    fn requests_hold_at_most_the_batch_size() {
        let mut d = Dispatcher::new(1000, Budget::for_shards(10), 300, RetryPolicy::immediate(3));
        for racer in 0..1000 {
            d.push(ms(0), entry(racer, 1, 100));
        }
        let sizes: Vec<usize> = d.take(ms(0)).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![300, 300, 300, 100]);
    }

    #[test]
    fn requests_stay_under_five_mebibytes() {
        let budget = Budget {
            records_per_second: 10_000,
            bytes_per_second: 100 * 1024 * 1024,
            slots_per_second: 1,
        };
        let mut d = Dispatcher::new(20, budget, 500, RetryPolicy::immediate(3));
        for racer in 0..20 {
            d.push(ms(0), entry(racer, 1, 900 * 1024));
        }
        let requests = d.take(ms(0));
        assert_eq!(requests.iter().map(Vec::len).sum::<usize>(), 20);
        for request in &requests {
            assert!(request.iter().map(Entry::cost).sum::<u64>() <= MAX_REQUEST_BYTES);
        }
    }

    #[test]
    fn a_racer_has_one_record_in_flight_and_keeps_its_order() {
        let mut d = Dispatcher::new(1, Budget::for_shards(1), 500, RetryPolicy::immediate(5));
        for second in 1..=3 {
            d.push(ms(0), entry(0, second, 10));
        }
        let first = d.take(ms(0));
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].len(), 1);
        assert!(d.take(ms(100)).is_empty(), "second 2 waits for second 1");
        // Second 1 is refused: it is retried before second 2.
        let c = d.complete(
            ms(150),
            first.into_iter().next().unwrap(),
            Some(&[RecordResult::Failed(
                "ProvisionedThroughputExceededException".into(),
            )]),
        );
        assert_eq!((c.rejected, c.retried, c.lost), (1, 1, 0));
        let mut seen = Vec::new();
        let mut now = 200;
        while !d.is_idle() {
            for request in d.take(ms(now)) {
                seen.extend(request.iter().map(|e| e.data[..4].to_vec()));
                d.complete(ms(now), request, Some(&[RecordResult::Ok]));
            }
            now += 100;
        }
        assert_eq!(
            seen,
            vec![b"0:1:".to_vec(), b"0:2:".to_vec(), b"0:3:".to_vec()]
        );
    }

    #[test]
    fn a_record_out_of_attempts_is_lost_and_the_racer_moves_on() {
        let mut d = Dispatcher::new(1, Budget::for_shards(1), 500, RetryPolicy::immediate(2));
        d.push(ms(0), entry(0, 1, 10));
        d.push(ms(0), entry(0, 2, 10));
        let mut lost = 0;
        let mut sent = 0;
        let mut now = 0;
        while !d.is_idle() {
            for request in d.take(ms(now)) {
                let results: Vec<RecordResult> = request
                    .iter()
                    .map(|e| {
                        if e.data.starts_with(b"0:1:") {
                            RecordResult::Failed("InternalFailure".into())
                        } else {
                            RecordResult::Ok
                        }
                    })
                    .collect();
                let c = d.complete(ms(now), request, Some(&results));
                lost += c.lost;
                sent += c.sent;
            }
            now += 100;
        }
        assert_eq!((lost, sent), (1, 1));
    }

    #[test]
    fn a_request_failing_as_a_whole_retries_every_record() {
        let mut d = Dispatcher::new(3, Budget::for_shards(1), 500, RetryPolicy::immediate(3));
        for racer in 0..3 {
            d.push(ms(0), entry(racer, 1, 10));
        }
        let request = d.take(ms(0)).remove(0);
        let c = d.complete(ms(10), request, None);
        assert_eq!((c.rejected, c.retried), (3, 3));
        assert_eq!(d.queued(), 3);
        assert_eq!(d.take(ms(100))[0].len(), 3);
    }

    #[test]
    fn backoff_delays_the_retry() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(10),
        };
        let mut d = Dispatcher::new(1, Budget::for_shards(1), 500, policy);
        d.push(ms(0), entry(0, 1, 10));
        let request = d.take(ms(0)).remove(0);
        d.complete(ms(0), request, None);
        // Full jitter: ready somewhere in [0, 10 s]; by 10 s it certainly is.
        assert_eq!(d.take(ms(10_000)).len(), 1);
    }

    #[test]
    fn no_one_second_window_exceeds_the_budget_under_backlog() {
        // Twice a shard's records arriving each second for 10 s, on a budget of one shard.
        let budget = Budget::for_shards(1);
        let mut d = Dispatcher::new(1000, budget, 500, RetryPolicy::immediate(3));
        let mut sends: Vec<(u64, u64)> = Vec::new();
        let mut second = 0;
        for step in 0..250u64 {
            let now = step * 100;
            if step % 10 == 0 && second < 20 {
                for racer in 0..1000 {
                    d.push(ms(now), entry(racer, second + 1, 200));
                    d.push(ms(now), entry(racer, second + 2, 200));
                }
                second += 2;
            }
            for request in d.take(ms(now)) {
                sends.push((now, request.len() as u64));
                let ok = vec![RecordResult::Ok; request.len()];
                d.complete(ms(now), request, Some(&ok));
            }
        }
        for &(start, _) in &sends {
            let in_window: u64 = sends
                .iter()
                .filter(|&&(t, _)| t >= start && t < start + 1000)
                .map(|&(_, n)| n)
                .sum();
            assert!(
                in_window <= 1000,
                "{in_window} records in [{start}, {start}+1000) ms"
            );
        }
        assert_eq!(sends.iter().map(|s| s.1).sum::<u64>(), 20_000);
        assert!(d.is_idle());
    }
}
