//! The leaderboard-writer Lambda function. Environment: `TABLE_NAME` (required), and the optional
//! variables of [`leaderboard_writer::Config::from_lookup`].

use alleycat_aws::{DynamoTable, Fatal, env_var, init_logs, load_config, serve};
use alleycat_lambda::env::{Env, TABLE_NAME};
use leaderboard_writer::{Config, LeaderboardWriter};

#[tokio::main]
async fn main() -> Result<(), Fatal> {
    init_logs();
    let config = Config::from_lookup(env_var)?;
    let table = Env::new(env_var).required(TABLE_NAME)?;
    let sdk = load_config().await;
    let finals = DynamoTable::from_conf(&sdk, table);
    serve(LeaderboardWriter { finals, config }).await?;
    Ok(())
}
