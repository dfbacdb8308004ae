//! Alleycat's race simulator: rides one race for up to 1,000 seeded racers and sends their
//! messages (DESIGN section 2) through the embedded stack in-process, or to Kinesis, an MQTT broker
//! or standard output.
//!
//! - [`race`]: the race, generated one simulated second at a time as NDJSON, from a
//!   [`RacePlan`] alone (pure and deterministic), with [`racer`] (who each racer is, how they
//!   ride) and [`names`];
//! - [`pacing`]: the Kinesis budget, request sizes, per-racer order and retries, as a pure state
//!   machine;
//! - [`sink`]: the targets behind one small [`Sink`] trait; the Kinesis sink is generic over a
//!   one-method port ([`KinesisPort`]) so the AWS SDK, `aws-smithy-mocks` clients, moto and
//!   fakes all drive it;
//! - [`run`]: the runner that hands each slice of each second to a sink at its moment;
//! - [`stats`], [`progress`]: counters, latency percentiles, the progress bar and the summary;
//! - [`local`]: the default target, the embedded stack started in-process;
//! - [`cli`], [`app`]: the command line.

pub mod app;
pub mod cli;
pub mod local;
pub mod names;
pub mod pacing;
pub mod progress;
pub mod race;
pub mod racer;
pub mod rng;
pub mod run;
pub mod sink;
pub mod stats;

pub use cli::{Cli, Target};
pub use race::{Batch, DEFAULT_FIRST_RACER_ID, DEFAULT_SEED, Race, RacePlan};
pub use run::{Stop, run, run_to_end};
pub use sink::{Fatal, KinesisPort, KinesisSink, Sink, WriteSink};
pub use stats::{Stats, Summary};
