//! Reading the delivery archive: list `raw/`, fetch objects a few at a time, and decode them on
//! one worker thread per core, each folding into its own [`Aggregate`] (merged once at the end,
//! so no lock is taken per line); then the holder rule, with claims read in batches.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use alleycat_domain::Claim;
use alleycat_ports::{Claims, ListObjects, Listed, ObjectStore, RetryError, RetryPolicy, retry};
use futures::StreamExt;
use indicatif::ProgressBar;
use tokio::sync::mpsc;

use crate::aggregate::{Aggregate, Rules};

/// Prefix of Firehose's delivery objects.
pub const RAW_PREFIX: &str = "raw/";

/// Folder of records that failed transformation: never a reading.
const PROCESSING_FAILED: &str = "processing-failed";

/// Claims read per call: DynamoDB's BatchGetItem limit.
pub const CLAIMS_BATCH: usize = 100;

/// Decoding threads: one per core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// Decoding threads, each folding what it is sent into its own aggregate.
pub struct Workers {
    sender: mpsc::Sender<Vec<u8>>,
    handles: Vec<JoinHandle<Aggregate>>,
}

impl Workers {
    /// Starts `count` threads applying `rules`.
    pub fn start(count: usize, rules: &Rules) -> Self {
        let count = count.max(1);
        let (sender, receiver) = mpsc::channel::<Vec<u8>>(count * 2);
        let receiver = Arc::new(Mutex::new(receiver));
        let handles = (0..count)
            .map(|_| {
                let receiver = Arc::clone(&receiver);
                let rules = rules.clone();
                std::thread::spawn(move || {
                    let mut aggregate = Aggregate::default();
                    loop {
                        let next = receiver
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .blocking_recv();
                        let Some(bytes) = next else { break };
                        aggregate.add_object(&bytes, &rules);
                    }
                    aggregate
                })
            })
            .collect();
        Self { sender, handles }
    }

    /// A handle to send objects with (from async code).
    pub fn sender(&self) -> mpsc::Sender<Vec<u8>> {
        self.sender.clone()
    }

    /// Sends an object from a thread outside the runtime (benchmarks).
    pub fn send_blocking(&self, bytes: Vec<u8>) {
        self.sender
            .blocking_send(bytes)
            .expect("workers run until finished");
    }

    /// Waits for the objects sent, and merges the workers' aggregates. Blocking.
    pub fn finish(self) -> Aggregate {
        drop(self.sender);
        let mut total = Aggregate::default();
        for handle in self.handles {
            total.merge(handle.join().expect("a worker panicked"));
        }
        total
    }
}

/// The archive's objects: every `raw/` object but Firehose's failed records.
pub async fn list<D: ListObjects>(
    delivery: &D,
    policy: &RetryPolicy,
) -> Result<Vec<Listed>, RetryError> {
    let (mut listed, _) = retry(policy, || delivery.list(RAW_PREFIX)).await?;
    listed.retain(|l| !l.key.split('/').any(|segment| segment == PROCESSING_FAILED));
    Ok(listed)
}

/// Reads `objects` into a new aggregate: `concurrency` gets at a time, decoded by
/// `workers` threads; `progress` advances by each object's listed size.
pub async fn read<D: ObjectStore>(
    delivery: &D,
    objects: &[Listed],
    rules: &Rules,
    workers: usize,
    concurrency: usize,
    policy: &RetryPolicy,
    progress: &ProgressBar,
) -> Result<Aggregate, RetryError> {
    let workers = Workers::start(workers, rules);
    let sender = workers.sender();
    let mut missing = 0;
    let mut gets = futures::stream::iter(objects)
        .map(|listed| async move {
            retry(policy, || delivery.get(&listed.key))
                .await
                .map(|(object, _)| (listed, object))
        })
        .buffered(concurrency.max(1));
    let mut failure = None;
    while let Some(result) = gets.next().await {
        match result {
            Ok((listed, object)) => {
                progress.inc(listed.size);
                match object {
                    // Expired or deleted since the listing.
                    None => missing += 1,
                    Some(object) => {
                        if sender.send(object.bytes).await.is_err() {
                            break;
                        }
                    }
                }
            }
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    drop(gets);
    drop(sender);
    let mut aggregate = tokio::task::spawn_blocking(move || workers.finish())
        .await
        .expect("the workers finish");
    if let Some(error) = failure {
        return Err(error);
    }
    aggregate.counts.missing += missing;
    Ok(aggregate)
}

/// Claims already read, so that each racer's is read once per rebuild.
#[derive(Debug, Default)]
pub struct ClaimCache {
    read: BTreeSet<u32>,
    held: HashMap<u32, Claim>,
}

impl ClaimCache {
    /// Reads the claims of `racers` not read yet, [`CLAIMS_BATCH`] at a time.
    pub async fn fetch<C: Claims>(
        &mut self,
        claims: &C,
        racers: &[u32],
        policy: &RetryPolicy,
    ) -> Result<(), RetryError> {
        let unread: Vec<u32> = racers
            .iter()
            .copied()
            .filter(|r| !self.read.contains(r))
            .collect();
        for batch in unread.chunks(CLAIMS_BATCH) {
            let (held, _) = retry(policy, || claims.claims(batch)).await?;
            self.held.extend(held);
            self.read.extend(batch);
        }
        Ok(())
    }

    /// The claims read.
    pub fn held(&self) -> &HashMap<u32, Claim> {
        &self.held
    }
}
