//! The `alleycat-local` command line: `--help` documents every knob, and the usual mistakes (a
//! port in use, a data directory another stack holds) end the start with a message saying what
//! to do.

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use alleycat_local::testing::{free_port, http_get};

fn alleycat_local(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alleycat-local"))
        .args(args)
        .args(["--log", "error,rumqttd=off"])
        .output()
        .expect("alleycat-local runs")
}

#[test]
fn help_documents_every_knob() {
    let output = alleycat_local(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for knob in [
        "--data-dir",
        "--reset",
        "--retention-hours",
        "--host",
        "--http-port",
        "--mqtt-port",
        "--ws-port",
        "--shards",
        "--race-seconds",
        "--window-seconds",
        "--top-k",
        "--aggregator-batch-size",
        "--aggregator-batching-window-ms",
        "--leaderboard-batch-size",
        "--leaderboard-batching-window-ms",
        "--publisher-batch-size",
        "--stream-retry-attempts",
        "--publisher-retry-attempts",
        "--merger-retry-attempts",
        "--firehose-interval-seconds",
        "--firehose-size-mb",
        "--firehose-processor-mb",
        "--frontend-dir",
        "Ctrl-C",
    ] {
        assert!(help.contains(knob), "--help does not mention {knob}");
    }
}

#[test]
fn a_port_in_use_is_named() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let output = alleycat_local(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--http-port",
        &free_port().to_string(),
        "--mqtt-port",
        &port,
        "--ws-port",
        &free_port().to_string(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&port), "{stderr}");
}

#[test]
fn one_data_directory_serves_one_stack() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let http_port = free_port();
    let mut first = Command::new(env!("CARGO_BIN_EXE_alleycat-local"))
        .args(["--data-dir", data, "--http-port", &http_port.to_string()])
        .args(["--mqtt-port", &free_port().to_string()])
        .args(["--ws-port", &free_port().to_string()])
        .args(["--log", "error,rumqttd=off"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..600 {
        if http_get(&format!("http://127.0.0.1:{http_port}/_local/status")).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = alleycat_local(&[
        "--data-dir",
        data,
        "--http-port",
        &free_port().to_string(),
        "--mqtt-port",
        &free_port().to_string(),
        "--ws-port",
        &free_port().to_string(),
    ]);
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("is in use by another alleycat-local"),
        "{stderr}"
    );
}

#[test]
fn reset_deletes_only_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("thesis.tex"), "years of work").unwrap();
    let output = alleycat_local(&[
        "--reset",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--http-port",
        &free_port().to_string(),
        "--mqtt-port",
        &free_port().to_string(),
        "--ws-port",
        &free_port().to_string(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("does not look like an alleycat-local data directory"),
        "{stderr}"
    );
    assert!(dir.path().join("thesis.tex").exists());
}

#[test]
fn reset_starts_a_data_directory_over() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("buckets")).unwrap();
    std::fs::write(data.join("stream.db"), "").unwrap();
    std::fs::write(data.join("buckets").join("stale"), "old race").unwrap();
    let http_port = free_port();
    let mut stack = Command::new(env!("CARGO_BIN_EXE_alleycat-local"))
        .args(["--reset", "--data-dir", data.to_str().unwrap()])
        .args(["--http-port", &http_port.to_string()])
        .args(["--mqtt-port", &free_port().to_string()])
        .args(["--ws-port", &free_port().to_string()])
        .args(["--log", "error,rumqttd=off", "--cost-report", "off"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..600 {
        if http_get(&format!("http://127.0.0.1:{http_port}/_local/status")).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stack.kill().unwrap();
    stack.wait().unwrap();
    assert!(up, "the stack did not start after --reset");
    assert!(!data.join("buckets").join("stale").exists());
    assert!(
        data.join("stream.db").metadata().unwrap().len() > 0,
        "a fresh stream.db"
    );
}
