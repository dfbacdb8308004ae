//! One bill: the main job (`cargo run -p simulator -- --racers 1000`, the embedded stack with its
//! defaults, which are the template's settings) counts for a race what `docs/cost.md`'s per-race
//! formula ([`RaceEstimate`]) says the deployment would be billed, within 5%.
//!
//! The race is short (20 s in real time) and Firehose's interval 25 s rather than the template's
//! 60 s (still one object, and 35 s less waiting for it) so the test stays bounded; the formula is the doc's own, also checked against the counted 5-minute race
//! (`crates/alleycat-cost/tests/doc.rs`). The two counts that depend on timing rather than on the
//! race, live messages and standings writes, are taken from the run and bounded on their own:
//! pacing allows at most one live message a second.

use alleycat_cost::{Bill, PriceTable, RaceEstimate};
use alleycat_local::testing::free_port;
use clap::Parser as _;
use simulator::app::execute;
use simulator::{Cli, Stop};

const RACERS: u64 = 1000;
const SECONDS: u64 = 20;
/// Longer than the race: one Firehose object, as the template's 60 s gives.
const FIREHOSE_INTERVAL_SECONDS: u64 = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_jobs_bill_is_the_docs_per_race_formula() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let (http, mqtt, ws) = (free_port(), free_port(), free_port());
    let args = [
        "simulator".to_owned(),
        format!("--racers={RACERS}"),
        format!("--seconds={SECONDS}"),
        format!("--data-dir={}", data_dir.display()),
        format!("--http-port={http}"),
        format!("--mqtt-port={mqtt}"),
        format!("--ws-port={ws}"),
        format!("--firehose-interval-seconds={FIREHOSE_INTERVAL_SECONDS}"),
        "--exit-when-done".to_owned(),
        "--quiet".to_owned(),
        "--cost-report=off".to_owned(),
    ];
    let cli = Cli::try_parse_from(args).expect("the main job's arguments");
    cli.check().expect("a plausible race");
    let run = execute(&cli, &Stop::default()).await;
    assert_eq!(run.summary.error, None);
    let stack = run.stack.expect("the embedded stack ran the race");
    let usage = stack.usage();
    let counted = stack.bill("us-east-1").unwrap();
    assert_eq!(usage.kinesis_records, RACERS * SECONDS);

    let estimate = RaceEstimate {
        publishes: usage.iot_messages_published,
        standings_writes: stack.invocations().counter("race-aggregator", "Writes"),
        run_seconds: usage.seconds,
        firehose_interval_seconds: FIREHOSE_INTERVAL_SECONDS,
        ..RaceEstimate::new(RACERS, SECONDS)
    };
    // The timing-dependent counts within what the template's settings allow: at most one live
    // message a second (and a race's last, after it), and one Firehose object per MiB.
    assert!(
        (1..=SECONDS + 2).contains(&estimate.publishes),
        "{} live messages",
        estimate.publishes
    );
    assert!(
        (1..=2 * SECONDS).contains(&estimate.standings_writes),
        "{} standings writes: the 1 s batching window (or a full batch of 1,000) makes about one \
         a second",
        estimate.standings_writes
    );
    let objects = stack.delivery().keys("raw/").len() as u64;
    assert!(
        objects.abs_diff(estimate.objects()) <= 1,
        "{objects} objects, the formula says {}",
        estimate.objects()
    );
    let formula = Bill::new(&estimate.usage(), PriceTable::builtin(), "us-east-1").unwrap();
    let gap = (formula.total - counted.total).abs() / counted.total;
    eprintln!(
        "{RACERS} racers x {SECONDS} s: counted ${:.5}, formula ${:.5} ({:.1}% apart)\n{}",
        counted.total,
        formula.total,
        gap * 100.0,
        counted.render()
    );
    assert!(gap <= 0.05, "{:.1}% apart", gap * 100.0);
    std::sync::Arc::try_unwrap(stack)
        .ok()
        .expect("the test holds the only handle")
        .shutdown()
        .await;
}
