//! The history-merger Lambda function. Environment: `DELIVERY_BUCKET`, `HISTORY_BUCKET`,
//! `TABLE_NAME` (required), and the optional variables of
//! [`history_merger::Config::from_lookup`].

use alleycat_aws::{DynamoTable, Fatal, S3Objects, env_var, init_logs, load_config, serve};
use history_merger::{Config, HistoryMerger, QueuedHistoryMerger};

#[tokio::main]
async fn main() -> Result<(), Fatal> {
    init_logs();
    let config = Config::from_lookup(env_var)?;
    let sdk = load_config().await;
    let merger = HistoryMerger {
        delivery: S3Objects::from_conf(&sdk, &config.delivery_bucket),
        histories: config.histories(S3Objects::from_conf(&sdk, &config.history_bucket)),
        table: DynamoTable::from_conf(&sdk, &config.table_name),
        config,
    };
    // Batches of the merge queue's S3 announcements (template.yaml, MergeQueue).
    serve(QueuedHistoryMerger(merger)).await?;
    Ok(())
}
