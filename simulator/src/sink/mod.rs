//! Where the messages go: a small [`Sink`] trait and its four targets.

use std::future::Future;
use std::ops::Range;

use crate::race::Batch;

pub mod kinesis;
pub mod local;
pub mod mqtt;
pub mod stdout;

pub use kinesis::{KinesisPort, KinesisSink, KinesisSinkConfig, SdkKinesis};
pub use local::LocalSink;
pub use mqtt::{MqttSink, MqttSinkConfig};
pub use stdout::WriteSink;

/// An error that ends the run: the target is unreachable, the stream does not exist, standard
/// output was closed. Records not yet delivered are counted lost.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Fatal(pub String);

/// A target for the race's messages. The runner hands it each slice of each tick, in order; the
/// sink counts what it delivers in the shared [`crate::Stats`].
pub trait Sink {
    /// Sends records `range` of `batch` (or queues them: it may also wait, which slows the
    /// runner down).
    fn submit(
        &mut self,
        batch: &Batch,
        range: Range<usize>,
    ) -> impl Future<Output = Result<(), Fatal>>;

    /// Delivers whatever is still pending, then returns. Records that could not be delivered are
    /// counted lost.
    fn finish(self) -> impl Future<Output = Result<(), Fatal>>;
}
