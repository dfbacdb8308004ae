//! The history merger as Lambda runs it on AWS: behind an SQS queue, not invoked by S3 directly.
//!
//! S3 announces each `raw/` object on the merge queue, and Lambda hands the merger batches of
//! those notices at a bounded concurrency (the event source's `ScalingConfig.MaximumConcurrency`).
//! Invoked by S3, every object was one invocation at once: in a backlog, hundreds of invocations
//! fought over the same few class histories and exhausted their attempts. Batched, the objects of
//! one batch are also folded into one delta per document, so a class history is written once per
//! batch rather than once per object.
//!
//! A message is one S3 event. What is not one (S3's `s3:TestEvent` when the notification is
//! configured, anything else) is counted as skipped and dropped: a retry would read the same
//! body. When reads or merges still fail after their retries, the messages to try again are
//! reported as batch item failures; after the queue's `maxReceiveCount` receives, SQS moves them
//! to the failure queue. A failed read fails the messages of that object only; a failed merge
//! fails the whole batch, whose objects were folded together (replaying them is harmless: every
//! view is a max-merge).

use std::collections::HashSet;

use alleycat_domain::{ClassHistory, SecondSeries};
use alleycat_lambda::Metrics;
use alleycat_ports::{BestsKey, Claims, MergeStore, ObjectStore, TraceKey};
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

use crate::{Config, Error, Failed, HistoryMerger, decode_event_key, handle, metric};

/// Merges the objects of one batch of merge-queue messages, each an S3 event; answers the
/// messages to receive again.
///
/// Counts into `metrics` as [`handle`] does (a message that is no S3 event counts as `Skipped`).
#[tracing::instrument(skip_all, fields(messages = event.records.len()))]
pub async fn handle_queue<D, H, T>(
    event: SqsEvent,
    delivery: &D,
    histories: &H,
    table: &T,
    config: &Config,
    metrics: &mut Metrics,
) -> SqsBatchResponse
where
    D: ObjectStore,
    H: MergeStore<u8, ClassHistory>,
    T: MergeStore<BestsKey, SecondSeries> + MergeStore<TraceKey, SecondSeries> + Claims,
{
    let mut objects = S3Event::default();
    // Each message's id and the keys (as S3 encodes them) of the objects it announced.
    let mut announced: Vec<(String, Vec<String>)> = Vec::new();
    let mut skipped = 0;
    for message in event.records {
        let id = message.message_id.unwrap_or_default();
        match announcement(message.body.as_deref()) {
            Ok(event) => {
                let keys = event
                    .records
                    .iter()
                    .filter_map(|record| record.s3.object.key.clone())
                    .collect();
                objects.records.extend(event.records);
                announced.push((id, keys));
            }
            Err(reason) => {
                skipped += 1;
                tracing::info!(message_id = %id, reason, "message skipped");
            }
        }
    }
    let result = handle(objects, delivery, histories, table, config, metrics).await;
    metrics.add(metric::SKIPPED, skipped);
    let mut response = SqsBatchResponse::default();
    let Err(error) = result else {
        return response;
    };
    let failures = match &error {
        Error::Incomplete { failures } => failures.as_slice(),
        Error::Config(_) => &[],
    };
    let merge_failed =
        failures.is_empty() || failures.iter().any(|f| matches!(f.what, Failed::Merge(_)));
    let unread: HashSet<&str> = failures
        .iter()
        .filter_map(|failure| match &failure.what {
            Failed::Read(key) => Some(key.as_str()),
            Failed::Merge(_) => None,
        })
        .collect();
    for (id, keys) in announced {
        let unread_object = keys
            .iter()
            .filter_map(|key| decode_event_key(key))
            .any(|key| unread.contains(key.as_str()));
        if merge_failed || unread_object {
            // An empty id (never sent by SQS) makes Lambda retry the whole batch: still safe.
            response.add_failure(id);
        }
    }
    tracing::error!(
        %error,
        messages_to_retry = response.batch_item_failures.len(),
        "reporting messages for another receive"
    );
    response
}

/// The S3 event a message's body carries, or why it carries none.
fn announcement(body: Option<&str>) -> Result<S3Event, &'static str> {
    let body = body.ok_or("no body")?;
    let event: S3Event = serde_json::from_str(body).map_err(|_| "not an S3 event")?;
    if event.records.is_empty() {
        // S3's `{"Service": "Amazon S3", "Event": "s3:TestEvent", …}` has no records.
        return Err("an S3 event without records (S3's test event)");
    }
    Ok(event)
}

/// The history merger on batches of the merge queue (see the module documentation): the
/// `bootstrap` serves this; the embedded stack invokes [`HistoryMerger`] with S3 events directly.
pub struct QueuedHistoryMerger<D, H, T>(pub HistoryMerger<D, H, T>);

impl<D, H, T> alleycat_lambda::Function for QueuedHistoryMerger<D, H, T>
where
    D: ObjectStore,
    H: MergeStore<u8, ClassHistory>,
    T: MergeStore<BestsKey, SecondSeries> + MergeStore<TraceKey, SecondSeries> + Claims,
{
    const NAME: &'static str = crate::FUNCTION_NAME;
    type Event = SqsEvent;
    type Response = SqsBatchResponse;
    type Error = Error;

    async fn handle(
        &self,
        event: SqsEvent,
        metrics: &mut Metrics,
    ) -> Result<SqsBatchResponse, Error> {
        let merger = &self.0;
        Ok(handle_queue(
            event,
            &merger.delivery,
            &merger.histories,
            &merger.table,
            &merger.config,
            metrics,
        )
        .await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_events_and_foreign_bodies_announce_nothing() {
        let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-21T10:00:00.000Z","Bucket":"alleycat-delivery-1","RequestId":"1","HostId":"2"}"#;
        assert!(announcement(Some(test_event)).is_err());
        assert!(announcement(Some(r#"{"Records": []}"#)).is_err());
        assert!(announcement(Some("not json")).is_err());
        assert!(announcement(None).is_err());
    }
}
