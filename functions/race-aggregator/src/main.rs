//! The race-aggregator Lambda function. Environment: `TABLE_NAME` (required), and the optional
//! variables of [`race_aggregator::Config::from_lookup`].

use alleycat_aws::{DynamoTable, Fatal, env_var, init_logs, load_config, serve};
use alleycat_lambda::env::{Env, TABLE_NAME};
use race_aggregator::{Config, RaceAggregator};

#[tokio::main]
async fn main() -> Result<(), Fatal> {
    init_logs();
    let config = Config::from_lookup(env_var)?;
    let table = Env::new(env_var).required(TABLE_NAME)?;
    let sdk = load_config().await;
    let store = DynamoTable::from_conf(&sdk, table);
    serve(RaceAggregator { store, config }).await?;
    Ok(())
}
