//! The default target: the embedded stack, started in this process. The race goes through the
//! whole application (stream, functions, table, broker, Firehose, history); live standings are
//! read back over MQTT as a bike reads them, and the results from the table once the stack has
//! processed everything. Then the stack keeps serving the browser until Ctrl-C (or stops, with
//! `--exit-when-done`).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use alleycat_cost::Bill;
use alleycat_domain::views::{RealtimeMessage, subscribe_topic};
use alleycat_domain::{Output, RaceKey, Standings};
use alleycat_local::Stack;
use alleycat_ports::Queries;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cli::{Cli, CostReport};
use crate::names::racer_name;
use crate::progress::Progress;
use crate::race::Race;
use crate::run::{Stop, run};
use crate::sink::{Fatal, LocalSink};
use crate::stats::Stats;

/// How many racers the live and final standings show.
const SHOWN: usize = 5;

/// Starts the stack for `cli`'s race.
pub async fn start(cli: &Cli) -> Result<Arc<Stack>, Fatal> {
    let stack = Stack::start(cli.stack_config())
        .await
        .map_err(|error| Fatal(format!("starting the embedded stack: {error}")))?;
    Ok(Arc::new(stack))
}

/// The top of `standings` as one line: `#12 Adell 151.8, #8 Bo 140.3, …`.
pub fn top_line(standings: &Standings, n: usize) -> String {
    ranked_line(&standings.ranked(), n)
}

/// The first `n` of racers ranked best first, as one line: `#12 Adell 151.8, #8 Bo 140.3, …`.
pub fn ranked_line(ranked: &[(u32, Output)], n: usize) -> String {
    let mut line = String::new();
    for (i, &(racer, output)) in ranked.iter().take(n).enumerate() {
        let separator = if i == 0 { "" } else { ", " };
        let _ = write!(line, "{separator}#{racer} {} {output}", racer_name(racer));
    }
    line
}

/// Follows the class's realtime topic over MQTT, as a bike does, and prints the race's top every
/// few seconds from the compact live message (its exact top and its count of riders).
fn watch_live(stack: &Stack, race: RaceKey, progress: &Progress) -> JoinHandle<()> {
    let addr = stack.mqtt_addr();
    let mut options = MqttOptions::new(
        format!("alleycat-sim-watch-{:08x}", fastrand::u32(..)),
        addr.ip().to_string(),
        addr.port(),
    );
    options.set_max_packet_size(1 << 20, 1 << 20);
    let printer = progress.printer();
    tokio::spawn(async move {
        let (client, mut events) = AsyncClient::new(options, 16);
        if client
            .subscribe(subscribe_topic(race.class_id), QoS::AtMostOnce)
            .await
            .is_err()
        {
            return;
        }
        let (latest_tx, mut latest) = watch::channel(None::<RealtimeMessage>);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            every.tick().await;
            loop {
                every.tick().await;
                if latest.has_changed().unwrap_or(false)
                    && let Some(live) = latest.borrow_and_update().clone()
                {
                    printer(format!(
                        "live: {} racers; {}",
                        live.riders,
                        ranked_line(&live.top, SHOWN)
                    ));
                }
            }
        });
        while let Ok(event) = events.poll().await {
            if let Event::Incoming(Packet::Publish(publish)) = event
                && let Ok(message) = serde_json::from_slice::<RealtimeMessage>(&publish.payload)
                && message.race_id == race.race_id
            {
                let _ = latest_tx.send(Some(message));
            }
        }
    })
}

/// Rides `race` through a running `stack`, then waits until the stack has processed it and
/// prints the results.
pub async fn ride(
    cli: &Cli,
    stack: &Arc<Stack>,
    race: &mut Race,
    stats: &Arc<Stats>,
    stop: &Stop,
    progress: &Progress,
) -> Result<(), Fatal> {
    let key = RaceKey {
        class_id: race.plan().class_id,
        race_id: race.race_id(),
    };
    progress.println(format!(
        "Alleycat is running: open {} (class {}, race {})",
        stack.url(),
        key.class_id,
        key.race_id
    ));
    let watcher = watch_live(stack, key, progress);
    let keys = (0..race.plan().racers)
        .map(|racer| Arc::clone(race.partition_key(racer)))
        .collect();
    let sink = LocalSink::new(Arc::clone(stack), keys, Arc::clone(stats));
    let result = run(race, sink, stats, cli.speed, stop).await;
    watcher.abort();
    result
}

/// After the race: waits for the stack to catch up, prints the results and what the race would
/// have cost on AWS, and returns that bill.
pub async fn settle(cli: &Cli, stack: &Stack, race: RaceKey) -> Option<Bill> {
    let wait = Duration::from_secs(cli.local.firehose_interval_seconds + 60);
    if !cli.quiet {
        eprintln!(
            "race sent; waiting for the stack to process it (up to {} s)",
            wait.as_secs()
        );
    }
    if !stack.wait_idle(wait).await {
        eprintln!(
            "warning: the stack has not caught up after {} s",
            wait.as_secs()
        );
    }
    if !cli.quiet {
        eprintln!("{}", results(stack, race).await);
    }
    let bill = stack.bill(&cli.local.cost_region).ok()?;
    match cli.local.cost_report {
        CostReport::Text if !cli.quiet => eprintln!("{}", bill.render()),
        CostReport::Json => println!(
            "{}",
            serde_json::to_string_pretty(&bill).unwrap_or_default()
        ),
        _ => {}
    }
    Some(bill)
}

/// Serves the browser until Ctrl-C (unless `--exit-when-done` or a stop came already), then
/// stops the stack gracefully.
pub async fn linger(cli: &Cli, stack: Arc<Stack>, stop: &Stop) {
    if !cli.local.exit_when_done && !stop.is_stopped() {
        println!(
            "Alleycat keeps serving at {} (API {}); Ctrl-C to stop.",
            stack.url(),
            stack.api_url()
        );
        stop.wait().await;
    }
    match Arc::try_unwrap(stack) {
        Ok(stack) => stack.shutdown().await,
        Err(_) => eprintln!("warning: the stack is still in use; not waiting for it"),
    }
}

/// The race's results, the class leaderboard and the history object, as the API serves them.
pub async fn results(stack: &Stack, race: RaceKey) -> String {
    let table = stack.table();
    let mut text = String::new();
    match table.standings(race).await {
        Ok(Some(stored)) => {
            let _ = write!(
                text,
                "results of race {} (class {}): {} racers; {}",
                race.race_id,
                race.class_id,
                stored.standings.len(),
                top_line(&stored.standings, SHOWN)
            );
        }
        Ok(None) => text.push_str("no standings were stored for the race"),
        Err(error) => {
            let _ = write!(text, "reading the standings: {error}");
        }
    }
    if let Ok(finals) = table.finals(race).await {
        let _ = write!(text, "\nfinals: {} racers finished", finals.len());
    }
    if let Ok(rows) = table.leaderboard(race.class_id, SHOWN).await {
        let _ = write!(text, "\nleaderboard of class {}:", race.class_id);
        for (i, row) in rows.iter().enumerate() {
            let _ = write!(
                text,
                " {}. #{} {} {}",
                i + 1,
                row.racer_id,
                row.name,
                row.best
            );
        }
    }
    let key = alleycat_domain::views::history_key(race.class_id);
    match stack.history().read(&key) {
        Ok(Some(object)) => {
            let _ = write!(text, "\nhistory: {key}, {} bytes", object.bytes.len());
        }
        _ => {
            let _ = write!(text, "\nhistory: {key} not written yet");
        }
    }
    text
}
