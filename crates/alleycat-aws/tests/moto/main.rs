//! The AWS adapters against a real moto server: conditional writes, concurrent merges, queries,
//! S3 conditions and presigning, IoT publishing.

mod objects;
mod realtime;
mod repair;
/// The shared moto support, under the name these tests use.
mod support {
    pub use alleycat_aws::moto::*;
}
mod table;
