//! The api Lambda function (HTTP API payload v2). Environment: see [`api::Config::from_lookup`]
//! (`TABLE_NAME`, `HISTORY_BUCKET`, `IOT_ENDPOINT`, and on AWS `AWS_REGION`, `IDENTITY_POOL_ID`).

use alleycat_aws::{DynamoTable, Fatal, S3Objects, env_var, init_logs, load_config, serve};
use api::{Api, Config};

#[tokio::main]
async fn main() -> Result<(), Fatal> {
    init_logs();
    let config = Config::from_lookup(env_var)?;
    let sdk = load_config().await;
    let api = Api {
        table: DynamoTable::from_conf(&sdk, &config.table_name),
        history: S3Objects::from_conf(&sdk, &config.history_bucket),
        config,
    };
    serve(api).await?;
    Ok(())
}
