//! Measures a `bootstrap` binary's cold start: from `exec` to its first request for work on the
//! Lambda Runtime API (the part of a cold start the function controls), over several runs.
//!
//! `cargo run --release -p alleycat-lambda --features fake-runtime --example startup -- \
//!     <binary> <event.json> [NAME=VALUE ...]`

use std::time::Duration;

use alleycat_lambda::fake_runtime::{Reply, run_bootstrap};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let binary = args
        .next()
        .ok_or("usage: startup <binary> <event.json> [NAME=VALUE ...]")?;
    let event =
        std::fs::read(args.next().ok_or("missing event file")?).map_err(|e| e.to_string())?;
    let vars: Vec<(String, String)> = args
        .filter_map(|a| a.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut startups: Vec<Duration> = Vec::new();
    for _ in 0..11 {
        let run = run_bootstrap(&binary, &env, &event)?;
        if !matches!(run.reply, Reply::Response(_)) {
            return Err(format!("the function did not answer: {:?}", run.reply));
        }
        startups.push(run.startup);
    }
    startups.sort();
    println!(
        "{binary}: exec to first request, median {:?} (min {:?}, max {:?}, 11 runs)",
        startups[startups.len() / 2],
        startups[0],
        startups[startups.len() - 1]
    );
    Ok(())
}
