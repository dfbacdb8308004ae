//! `IotPublisher` against moto's IoT data plane.

use alleycat_domain::views::subscribe_topic;
use alleycat_ports::{PortError, Publisher};

use crate::support;

#[tokio::test]
async fn standings_publish_to_a_class_topic() -> Result<(), PortError> {
    let publisher = support::publisher().await;
    publisher
        .publish(&subscribe_topic(3), br#"{"msg":"results"}"#.to_vec())
        .await
}
