//! The transformer Lambda function (Firehose data transformation). Environment: only the optional
//! variables of [`transformer::Config::from_lookup`]; it calls no AWS service.

use alleycat_aws::{Fatal, env_var, init_logs, serve};
use transformer::{Config, Transformer};

#[tokio::main]
async fn main() -> Result<(), Fatal> {
    init_logs();
    let config = Config::from_lookup(env_var)?;
    serve(Transformer { config }).await?;
    Ok(())
}
