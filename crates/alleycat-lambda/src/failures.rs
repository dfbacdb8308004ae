//! Partial batch responses for ordered streams.

use std::collections::HashMap;

use aws_lambda_events::event::kinesis::KinesisTimeWindowEventResponse;
use aws_lambda_events::event::streams::{
    DynamoDbBatchItemFailure, DynamoDbEventResponse, KinesisBatchItemFailure, KinesisEventResponse,
};

/// The records of a batch that must be processed again.
///
/// On an ordered stream (Kinesis, DynamoDB streams) Lambda restarts the batch from the lowest
/// reported sequence number and ignores the rest, so only the earliest failure matters; records
/// after it are delivered again, which every max-merged view absorbs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchFailures {
    earliest: Option<(usize, String)>,
    count: usize,
}

impl BatchFailures {
    /// No failures.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the record at `position` of the batch, with its sequence number, as failed.
    pub fn fail(&mut self, position: usize, sequence_number: &str) {
        self.count += 1;
        if self
            .earliest
            .as_ref()
            .is_none_or(|(earliest, _)| position < *earliest)
        {
            self.earliest = Some((position, sequence_number.to_owned()));
        }
    }

    /// Whether any record failed.
    pub fn is_empty(&self) -> bool {
        self.earliest.is_none()
    }

    /// How many failures were marked.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The response for a Kinesis event source.
    pub fn into_kinesis_response(self) -> KinesisEventResponse {
        let mut response = KinesisEventResponse::default();
        if let Some((_, sequence_number)) = self.earliest {
            let mut failure = KinesisBatchItemFailure::default();
            failure.item_identifier = Some(sequence_number);
            response.batch_item_failures.push(failure);
        }
        response
    }

    /// The response to a tumbling-window invocation: the window's new `state`, and the failures
    /// in `batchItemFailures`, which Lambda accepts there but `aws_lambda_events` does not model
    /// (so it travels in the type's catch-all fields).
    pub fn into_window_response(
        self,
        state: HashMap<String, String>,
    ) -> KinesisTimeWindowEventResponse {
        let failures = serde_json::to_value(self.into_kinesis_response().batch_item_failures)
            .expect("batch item failures always serialize");
        let mut response = KinesisTimeWindowEventResponse::default();
        response.time_window_event_response_properties.state = state;
        response
            .other
            .insert("batchItemFailures".to_owned(), failures);
        response
    }

    /// The response for a DynamoDB stream event source.
    pub fn into_dynamodb_response(self) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        if let Some((_, sequence_number)) = self.earliest {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence_number);
            response.batch_item_failures.push(failure);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_earliest_failure_is_reported() {
        let mut failures = BatchFailures::new();
        failures.fail(7, "700");
        failures.fail(2, "200");
        failures.fail(9, "900");
        assert_eq!(failures.count(), 3);
        let response = failures.into_kinesis_response();
        assert_eq!(response.batch_item_failures.len(), 1);
        assert_eq!(
            response.batch_item_failures[0].item_identifier.as_deref(),
            Some("200")
        );
    }

    #[test]
    fn window_responses_carry_state_and_failures() {
        let mut failures = BatchFailures::new();
        failures.fail(1, "100");
        let state = HashMap::from([("race".to_owned(), "{}".to_owned())]);
        let json = serde_json::to_value(failures.into_window_response(state)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "state": {"race": "{}"},
                "batchItemFailures": [{"itemIdentifier": "100"}]
            })
        );
    }

    #[test]
    fn no_failure_is_an_empty_list() {
        let response = BatchFailures::new().into_dynamodb_response();
        assert!(response.batch_item_failures.is_empty());
        let json = serde_json::to_value(&response).unwrap();
        assert_eq!(json["batchItemFailures"], serde_json::json!([]));
    }
}
