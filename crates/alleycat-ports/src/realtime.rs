//! Pushing live standings to bikes.

use std::future::Future;

use crate::error::PortError;

/// An MQTT publisher (IoT Core's data plane on AWS, the embedded broker locally). QoS 0: the next
/// standings message supersedes a lost one.
pub trait Publisher: Sync {
    /// Publishes `payload` to `topic`.
    fn publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}
