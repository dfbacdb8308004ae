//! The race-aggregator Lambda function. Environment: see
//! [`race_aggregator::Config::from_lookup`].

use alleycat_aws::{DynamoTable, Fatal, env_var, init_logs, load_config, serve};
use race_aggregator::{Config, RaceAggregator};

#[tokio::main]
async fn main() -> Result<(), Fatal> {
    init_logs();
    let config = Config::from_lookup(env_var)?;
    let sdk = load_config().await;
    let store = DynamoTable::from_conf(&sdk, &config.table_name);
    serve(RaceAggregator { store, config }).await?;
    Ok(())
}
