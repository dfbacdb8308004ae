//! The whole Alleycat application in one process, with no AWS account: the embedded stack.
//!
//! It runs the very handlers the Lambda functions run (the function crates, without their
//! `lambda` feature), fed by local stand-ins for the AWS services around them:
//!
//! | AWS | here |
//! |---|---|
//! | IoT Core broker and policies | [`gate`] (the public ports) in front of [`broker`] (rumqttd) |
//! | IoT rule | [`ingest`]: stamps `identityId` and `ingestTimestamp`, appends to the stream |
//! | Cognito identities, IAM authorizer | [`identity`]: HMAC tokens; the operator secret |
//! | Kinesis stream | [`stream`]: MD5-sharded, sequence-numbered, durable |
//! | DynamoDB table and stream | [`table`]: SQLite, with a change log of old and new images |
//! | S3 buckets | [`objects`]: directories, atomic writes, ETags, conditional puts |
//! | Lambda event sources, Firehose | [`sources`]: pollers building genuine `aws_lambda_events` |
//! | API Gateway, S3 presigned URLs | [`http`]: axum |
//!
//! [`Stack`] puts them together under one data directory.

pub mod broker;
pub mod config;
pub mod db;
pub mod error;
pub mod gate;
pub mod http;
pub mod identity;
pub mod ingest;
pub mod meter;
pub mod objects;
pub mod repair;
pub mod sources;
pub mod stack;
pub mod stream;
pub mod table;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::StackConfig;
pub use error::LocalError;
pub use stack::Stack;

pub use alleycat_lambda::now_ms;
