//! The publisher Lambda function. Environment: `IOT_ENDPOINT` (required: the account's IoT data
//! endpoint), and the optional variables of [`publisher::Config::from_lookup`].

use alleycat_aws::{Fatal, IotPublisher, env_var, init_logs, load_config, serve};
use publisher::{Config, StandingsPublisher};

#[tokio::main]
async fn main() -> Result<(), Fatal> {
    init_logs();
    let config = Config::from_lookup(env_var)?;
    let sdk = load_config().await;
    let publisher = IotPublisher::from_conf(&sdk, Some(&config.iot_endpoint));
    serve(StandingsPublisher::new(publisher, config)).await?;
    Ok(())
}
