//! `alleycat-local`: the whole application in one process. See `alleycat-local --help`.

use std::process::ExitCode;

use alleycat_local::Stack;
use alleycat_local::config::StackArgs;
use clap::Parser;

const ABOUT: &str = "Runs the whole Alleycat application in one process, with no AWS account: \
                     an MQTT broker, the stream, the table, the buckets and the six functions, \
                     with the frontend and the API on one HTTP port.";

const AFTER_HELP: &str = "\
Ride a race through it from another terminal (the operator's MQTT password is in
<data-dir>/operator-secret, which the simulator reads):
  cargo run -p simulator -- --target mqtt --url mqtt://127.0.0.1:1883 --mqtt-username operator \
    --racers 100
  AWS_ENDPOINT_URL=http://127.0.0.1:8080 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \\
    AWS_REGION=local cargo run -p simulator -- --target kinesis --stream-name alleycat
Or let the simulator start the stack itself: cargo run -p simulator -- --racers 1000

MQTT: anonymous clients may only subscribe to alleycat-subscribe/class-<1..6>; the operator (user
`operator`) and identities from POST /_local/identity (user = client id = identityId, password =
token) may also publish to alleycat-publish. Browsers may connect over WebSocket only from this
stack's own pages.

Logs go to stderr (RUST_LOG overrides --log). Ctrl-C stops gracefully: pollers finish and
checkpoint, Firehose delivers its buffer, and the cost report says what the run would have cost
on AWS. Exit status: 0 stopped; 1 could not start or failed; 2 bad arguments.";

/// How the cost report is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum CostReport {
    /// A table on stderr.
    Text,
    /// The bill as JSON on stdout, for machines.
    Json,
    /// No report.
    Off,
}

/// The command line.
#[derive(Parser)]
#[command(name = "alleycat-local", version, about = ABOUT, after_help = AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    stack: StackArgs,

    /// At exit, print what the run would have cost on AWS (text, json, or off): every billable
    /// operation counted in AWS's units, priced from the checked-in price table.
    #[arg(long, value_enum, default_value_t = CostReport::Text, help_heading = "Output")]
    cost_report: CostReport,

    /// Region whose list prices the cost report uses.
    #[arg(long, default_value = "us-east-1", help_heading = "Output")]
    cost_region: String,

    /// Log filter (tracing's env-filter syntax), e.g. `info` or `alleycat_local=debug`.
    #[arg(long, default_value = "info,rumqttd=off", help_heading = "Output")]
    log: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let config = cli.stack.config();
    if let Err(error) = alleycat_cost::PriceTable::builtin().region(&cli.cost_region) {
        eprintln!("error: --cost-region: {error}");
        return ExitCode::from(2);
    }
    runtime.block_on(async move {
        let mut stack = match Stack::start(config.clone()).await {
            Ok(stack) => stack,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        };
        println!("Alleycat is running: open {}", stack.url());
        println!("  API        {}", stack.api_url());
        println!("  MQTT       mqtt://{}", stack.mqtt_addr());
        println!("  WebSocket  {}", stack.websocket_url());
        println!("  Kinesis    {} (stream alleycat)", stack.url());
        println!("  data       {}", config.data_dir.display());
        if config.frontend.is_none() {
            println!("  (frontend not built: npm ci && npm run build in frontend/)");
        }
        println!("Ctrl-C to stop.");
        let code = tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                eprintln!("stopping: finishing invocations, delivering the Firehose buffer");
                ExitCode::SUCCESS
            }
            error = stack.failed() => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        };
        match stack.bill(&cli.cost_region) {
            Ok(bill) if cli.cost_report == CostReport::Text => eprintln!("{}", bill.render()),
            Ok(bill) if cli.cost_report == CostReport::Json => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&bill).unwrap_or_default()
                );
            }
            Ok(_) => {}
            Err(error) => eprintln!("error: {error}"),
        }
        stack.shutdown().await;
        code
    })
}
