//! Live standings to bikes through IoT Core's data plane (HTTPS publish, QoS 0).

use alleycat_ports::{PortError, Publisher};
use aws_config::SdkConfig;
use aws_sdk_iotdataplane::Client;
use aws_sdk_iotdataplane::primitives::Blob;

use crate::error::classify;

/// Publishes to MQTT topics of the account's IoT endpoint.
#[derive(Clone, Debug)]
pub struct IotPublisher {
    /// The SDK client.
    pub client: Client,
}

impl IotPublisher {
    /// A publisher through `client`, as configured.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// A publisher with a client of `config`. `endpoint` is the account's data endpoint
    /// (`aws iot describe-endpoint --endpoint-type iot:Data-ATS`, with or without `https://`):
    /// publishing through the SDK's regional default endpoint is not guaranteed to reach the
    /// account's devices. `None` keeps the endpoint of `config` (e.g. `AWS_ENDPOINT_URL` locally).
    pub fn from_conf(config: &SdkConfig, endpoint: Option<&str>) -> Self {
        let mut builder = aws_sdk_iotdataplane::config::Builder::from(config);
        if let Some(endpoint) = endpoint.map(str::trim).filter(|e| !e.is_empty()) {
            builder = builder.endpoint_url(endpoint_url(endpoint));
        }
        Self::new(Client::from_conf(builder.build()))
    }
}

fn endpoint_url(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("https://{endpoint}")
    }
}

impl Publisher for IotPublisher {
    async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), PortError> {
        self.client
            .publish()
            .topic(topic)
            .qos(0)
            .payload(Blob::new(payload))
            .send()
            .await
            .map(drop)
            .map_err(|e| classify(&format!("IoT Publish {topic}"), &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_endpoints_get_https() {
        assert_eq!(
            endpoint_url("abc-ats.iot.eu-west-1.amazonaws.com"),
            "https://abc-ats.iot.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            endpoint_url("http://127.0.0.1:5000"),
            "http://127.0.0.1:5000"
        );
    }
}
