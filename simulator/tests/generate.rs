//! The generator and the command line: determinism, validity of every message, the done
//! criterion (300,000 valid messages), pacing in time, the summary, and argument errors.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{assert_valid_race, oracle};
use simulator::RacePlan;

const START_MS: &str = "1700000123456";

fn simulator(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simulator"))
        .args(args)
        .output()
        .expect("run the simulator")
}

/// Runs the simulator with arguments it must refuse at once: a run that starts instead (a real
/// time race) is killed after 20 s rather than left to ride for minutes.
fn refused(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_simulator"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the simulator");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("{args:?} was not refused: the simulator started riding");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_same_seed_gives_byte_identical_output() {
    let args = [
        "--target",
        "stdout",
        "--racers",
        "200",
        "--seconds",
        "30",
        "--speed",
        "0",
        "--seed",
        "77",
        "--start-offset-spread",
        "20",
        "--start-ms",
        START_MS,
        "--quiet",
    ];
    let first = simulator(&args);
    let second = simulator(&args);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(first.stdout.len(), second.stdout.len());
    assert!(first.stdout == second.stdout, "two runs differ");

    // The library gives the same bytes as the binary.
    let plan = RacePlan {
        seed: 77,
        racers: 200,
        seconds: 30,
        start_offset_spread: 20,
        start_ms: START_MS.parse().unwrap(),
        ..RacePlan::default()
    };
    assert!(oracle(&plan).concat() == common::lines(&first.stdout).concat());

    // Another seed is another race of the same racers.
    let mut other_args = args;
    other_args[9] = "78";
    let other = simulator(&other_args);
    assert!(other.status.success());
    assert!(other.stdout != first.stdout);
    let names = |out: &[u8]| {
        let mut names: Vec<(u64, String)> = common::lines(out)
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_slice(l).unwrap();
                (
                    v["racerId"].as_u64().unwrap(),
                    v["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        names.sort();
        names.dedup();
        names
    };
    assert_eq!(
        names(&first.stdout),
        names(&other.stdout),
        "same racers, same names"
    );
}

#[test]
fn every_message_passes_the_domain_validator() {
    for plan in [
        RacePlan {
            racers: 1000,
            seconds: 60,
            class_id: 6,
            start_offset_spread: 45,
            ..RacePlan::default()
        },
        RacePlan {
            racers: 1,
            seconds: 1,
            first_racer_id: 0,
            ..RacePlan::default()
        },
        RacePlan {
            racers: 10,
            seconds: 20,
            first_racer_id: 999_991,
            window_seconds: 30,
            // 5 s before the window closes: the 60 s spread is shortened to 5 s.
            start_ms: 56_666_666 * 30_000 - 5_000,
            start_offset_spread: 60,
            ..RacePlan::default()
        },
    ] {
        assert_valid_race(&oracle(&plan).join(&b'\n'), &plan);
    }
}

/// The done criterion of the simulator issue, through the binary.
#[test]
fn a_thousand_racers_for_300_seconds_give_300000_valid_messages() {
    let output = simulator(&[
        "--racers",
        "1000",
        "--target",
        "stdout",
        "--seconds",
        "300",
        "--speed",
        "0",
        "--start-ms",
        START_MS,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let plan = RacePlan {
        racers: 1000,
        seconds: 300,
        start_ms: START_MS.parse().unwrap(),
        ..RacePlan::default()
    };
    assert_valid_race(&output.stdout, &plan);
    // The summary goes to stderr, never into the messages.
    let summary = stderr(&output);
    assert!(
        summary.contains("sent 300000 of 300000 records"),
        "{summary}"
    );
}

#[test]
fn speed_compresses_time() {
    // 4 simulated seconds at speed 8: about half a second, not instantly and not 4 s.
    let started = Instant::now();
    let output = simulator(&[
        "--target",
        "stdout",
        "--racers",
        "5",
        "--seconds",
        "4",
        "--speed",
        "8",
        "--quiet",
    ]);
    let elapsed = started.elapsed();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(common::lines(&output.stdout).len(), 20);
    assert!(elapsed >= Duration::from_millis(350), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[test]
fn the_summary_json_is_machine_readable() {
    let path = std::env::temp_dir().join(format!("simulator-summary-{}.json", std::process::id()));
    let output = simulator(&[
        "--target",
        "stdout",
        "--racers",
        "7",
        "--seconds",
        "3",
        "--speed",
        "0",
        "--class-id",
        "4",
        "--start-ms",
        START_MS,
        "--quiet",
        "--summary-json",
        path.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        output.stderr.is_empty(),
        "--quiet prints nothing: {}",
        stderr(&output)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(summary["target"], "stdout");
    assert_eq!(summary["classId"], 4);
    assert_eq!(summary["raceId"], 1_700_000_123_456u64 / 300_000);
    assert_eq!(summary["generated"], 21);
    assert_eq!(summary["sent"], 21);
    assert_eq!(summary["lost"], 0);
    assert_eq!(summary["latency"], serde_json::Value::Null);
    assert_eq!(summary["error"], serde_json::Value::Null);
}

#[test]
fn argument_errors_are_clear() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--target", "stdout", "--racers", "0"],
            "0 is not in 1..=1000",
        ),
        (
            &["--target", "stdout", "--racers", "1001"],
            "1001 is not in 1..=1000",
        ),
        (
            &["--target", "stdout", "--class-id", "7"],
            "7 is not in 1..=6",
        ),
        (
            &[
                "--target",
                "kinesis",
                "--stream-name",
                "s",
                "--batch-size",
                "501",
            ],
            "501 is not in 1..=500",
        ),
        (&["--target", "kinesis"], "--stream-name"),
        (&["--target", "stdout", "--speed=-2"], "not a speed"),
        (&["--target", "stdout", "--seconds", "0"], "--seconds"),
        (
            &["--target", "carrier-pigeon"],
            "possible values: local, stdout, kinesis, mqtt",
        ),
        (
            &["--target", "stdout", "--summary-json", "-"],
            "would mix the summary into the messages",
        ),
        (
            &[
                "--target",
                "stdout",
                "--first-racer-id",
                "999999",
                "--racers",
                "5",
            ],
            "past the largest valid racer id 1000000",
        ),
        (
            &["--target", "stdout", "--first-racer-id", "1000001"],
            "1000001 is not in 0..=1000000",
        ),
        (
            &["--target", "stdout", "--start-ms", "4102444500000"],
            "--start-ms 4102444500000 is too late",
        ),
        (
            &["--target", "stdout", "--start-ms", "1620051628"],
            "--start-ms",
        ),
        (
            &["--target", "local", "--start-ms", "1620051600000"],
            "is a race that closed before now",
        ),
        (
            &["--target", "local", "--start-ms", "4000000000000"],
            "in the future",
        ),
        (
            &[
                "--target",
                "mqtt",
                "--speed",
                "10",
                "--start-offset-spread",
                "200",
            ],
            "would start rides further ahead of their first message",
        ),
    ];
    for (args, message) in cases {
        let output = refused(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(output.stdout.is_empty(), "{args:?}");
        let text = stderr(&output);
        assert!(text.contains(message), "{args:?}: {text}");
    }
}

#[test]
fn help_explains_every_flag() {
    let output = simulator(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--target",
        "--stream-name",
        "--shards",
        "--batch-size",
        "--max-attempts",
        "--retry-base-ms",
        "--retry-max-ms",
        "--create-stream",
        "--url",
        "--drain-timeout",
        "--mqtt-username",
        "--mqtt-password",
        "--racers",
        "--first-racer-id",
        "--class-id",
        "--seconds",
        "--window-seconds",
        "--start-offset-spread",
        "--seed",
        "--start-ms",
        "--speed",
        "--data-dir",
        "--http-port",
        "--mqtt-port",
        "--ws-port",
        "--exit-when-done",
        "--quiet",
        "--summary-json",
        "Exit status",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
    // In the long help, every option is followed by its explanation.
    let lines: Vec<&str> = help.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("--") {
            let next = lines.get(i + 1).map_or("", |l| l.trim());
            assert!(!next.is_empty(), "no explanation after {line:?}");
        }
    }
}
