//! `simulator`: see `simulator --help` and `simulator/README.md`.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use simulator::cli::Cli;
use simulator::stats::{EXIT_FATAL, EXIT_USAGE};
use simulator::{Stop, app};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = cli.check() {
        eprintln!("error: {error}\n\nFor more information, try '--help'.");
        return ExitCode::from(EXIT_USAGE);
    }
    for warning in cli.warnings() {
        eprintln!("warning: {warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return ExitCode::from(EXIT_FATAL);
        }
    };
    let stop = Arc::new(Stop::default());
    let run = runtime.block_on(async {
        // First Ctrl-C: stop riding, deliver what was generated, sum up. Second: quit at once.
        let on_signal = Arc::clone(&stop);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_signal.stop();
                eprintln!("\nstopping: delivering what was sent so far (Ctrl-C again to quit)");
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        app::execute(&cli, &stop).await
    });
    let summary = run.summary;
    if cli.quiet {
        if let Some(error) = &summary.error {
            eprintln!("error: {error}");
        }
    } else {
        eprintln!("{}", summary.render());
    }
    if let Some(path) = &cli.summary_json
        && let Err(error) = app::write_summary_json(&summary, path)
    {
        eprintln!("error: writing {}: {error}", path.display());
        return ExitCode::from(EXIT_FATAL);
    }
    if let Some(stack) = run.stack {
        runtime.block_on(simulator::local::linger(&cli, stack, &stop));
    }
    // Leave the runtime without waiting for tasks still parked (a stalled connection).
    runtime.shutdown_background();
    ExitCode::from(summary.exit_code())
}
