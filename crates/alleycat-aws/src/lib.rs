//! Alleycat's ports on AWS: the single DynamoDB table ([`DynamoTable`]), S3 buckets
//! ([`S3Objects`]) and IoT Core's data plane ([`IotPublisher`]).
//!
//! The handlers are generic over the traits of `alleycat-ports`; this crate is the one place that
//! speaks the AWS SDK, so the item shapes and the mapping of SDK errors
//! onto [`alleycat_ports::PortError`] ([`error`]) each live here once.
//!
//! Every adapter is built from an [`aws_config::SdkConfig`] ([`load_config`]); pointing
//! `AWS_ENDPOINT_URL` at a local fake (moto) is how the integration tests and local runs reach
//! them; `moto` (feature `moto`, for tests) starts that fake.

mod claims;
pub mod config;
pub mod dynamo;
pub mod error;
pub mod function;
pub mod iot;
mod item;
#[cfg(feature = "moto")]
pub mod moto;
mod ranks;
mod repair;
pub mod s3;

pub use alleycat_ports::keys;
pub use config::load_config;
pub use dynamo::{DynamoTable, create_table, table_schema};
pub use error::classify;
pub use function::{Fatal, env_var, init_logs, serve};
pub use iot::IotPublisher;
pub use s3::S3Objects;
