//! The leaderboard-writer Lambda function. Environment: see
//! [`leaderboard_writer::Config::from_lookup`].

use alleycat_aws::{DynamoTable, Fatal, env_var, init_logs, load_config, serve};
use leaderboard_writer::{Config, LeaderboardWriter};

#[tokio::main]
async fn main() -> Result<(), Fatal> {
    init_logs();
    let config = Config::from_lookup(env_var)?;
    let sdk = load_config().await;
    let finals = DynamoTable::from_conf(&sdk, &config.table_name);
    serve(LeaderboardWriter { finals, config }).await?;
    Ok(())
}
