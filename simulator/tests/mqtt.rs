//! The MQTT target against a real broker: rumqttd, embedded, on a free loopback port. Every
//! message arrives on `alleycat-publish` (QoS 1), as the stdout oracle has it, in order per
//! racer; a missing broker is a clear error. And against the embedded stack, whose gate takes
//! publishes only from the operator or an identity: the credentials flags are what gets in.

mod common;

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use alleycat_domain::views::PUBLISH_TOPIC;
use alleycat_ports::RetryPolicy;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use simulator::sink::{MqttSink, MqttSinkConfig};
use simulator::{Race, RacePlan, Stats, run_to_end};
use tokio::sync::mpsc;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// Starts a broker on a free port (in its own threads, for the rest of the test process).
fn start_broker() -> u16 {
    let port = free_port();
    let server = ServerSettings {
        name: "v4".to_owned(),
        listen: ([127, 0, 0, 1], port).into(),
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            // Caps whole packets, not only payloads.
            max_payload_size: 1 << 20,
            max_inflight_count: 1000,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            // The default, 0, admits no connection at all.
            max_connections: 100,
            max_outgoing_packet_count: 200,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("v4".to_owned(), server)])),
        ..Config::default()
    };
    std::thread::spawn(move || {
        Broker::new(config).start().expect("the broker runs");
    });
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return port;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("the broker did not listen on {port}");
}

/// Subscribes to `alleycat-publish` and forwards every payload; returns once subscribed.
async fn subscribe(port: u16) -> mpsc::UnboundedReceiver<Vec<u8>> {
    let mut options = MqttOptions::new("test-subscriber", "127.0.0.1", port);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut events) = AsyncClient::new(options, 100);
    client
        .subscribe(PUBLISH_TOPIC, QoS::AtLeastOnce)
        .await
        .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _client = client;
        let mut subscribed_tx = Some(subscribed_tx);
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = subscribed_tx.take() {
                        tx.send(()).ok();
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    assert_eq!(publish.topic, PUBLISH_TOPIC);
                    assert_eq!(publish.qos, QoS::AtLeastOnce);
                    if tx.send(publish.payload.to_vec()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("subscriber: {e}"),
            }
        }
    });
    subscribed.await.expect("subscribed");
    rx
}

fn config(port: u16) -> MqttSinkConfig {
    MqttSinkConfig {
        url: format!("mqtt://127.0.0.1:{port}"),
        client_id: "simulator-under-test".to_owned(),
        credentials: None,
        drain_timeout: Duration::from_secs(10),
        policy: RetryPolicy::immediate(3),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_published_once_in_order() {
    let port = start_broker();
    let mut received = subscribe(port).await;
    let plan = RacePlan {
        racers: 40,
        seconds: 5,
        start_offset_spread: 2,
        ..RacePlan::default()
    };
    let stats = Arc::new(Stats::default());
    let sink = MqttSink::connect(config(port), Arc::clone(&stats))
        .await
        .expect("connected");
    let mut race = Race::new(&plan);
    run_to_end(&mut race, sink, Arc::clone(&stats))
        .await
        .expect("the race is published");
    assert_eq!(Stats::get(&stats.sent), 200, "every PUBACK counted");
    assert_eq!(Stats::get(&stats.lost), 0);
    assert_eq!(stats.latency().count(), 200);

    let mut messages = Vec::new();
    while messages.len() < 200 {
        match tokio::time::timeout(Duration::from_secs(10), received.recv()).await {
            Ok(Some(message)) => messages.push(message),
            _ => panic!("only {} of 200 messages arrived", messages.len()),
        }
    }
    common::assert_in_order_per_racer(&messages, &plan);
    common::assert_same_messages(messages, common::oracle(&plan));
}

#[tokio::test]
async fn a_missing_broker_is_a_clear_error() {
    let port = free_port();
    let Err(error) = MqttSink::connect(config(port), Arc::new(Stats::default())).await else {
        panic!("connected to nothing");
    };
    assert!(
        error.0.contains(&format!(
            "connecting to the MQTT broker at mqtt://127.0.0.1:{port}"
        )),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_publishes_to_a_broker() {
    let port = start_broker();
    let mut received = subscribe(port).await;
    let url = format!("mqtt://127.0.0.1:{port}");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_simulator"))
        .args([
            "--target",
            "mqtt",
            "--url",
            &url,
            "--racers",
            "10",
            "--seconds",
            "3",
            "--speed",
            "0",
            "--quiet",
            "--summary-json",
            "-",
        ])
        .output()
        .await
        .expect("run the simulator");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["target"], "mqtt");
    assert_eq!(summary["sent"], 30);
    assert_eq!(summary["lost"], 0);
    assert_eq!(summary["latency"]["requests"], 30);
    for _ in 0..30 {
        tokio::time::timeout(Duration::from_secs(10), received.recv())
            .await
            .expect("a message")
            .expect("a message");
    }

    // No broker: exit status 1 and a clear message.
    let url = format!("mqtt://127.0.0.1:{}", free_port());
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_simulator"))
        .args([
            "--target",
            "mqtt",
            "--url",
            &url,
            "--racers",
            "2",
            "--seconds",
            "2",
        ])
        .output()
        .await
        .expect("run the simulator");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("connecting to the MQTT broker at"),
        "{stderr}"
    );
}

/// Runs the simulator binary's MQTT target against `url` with `extra` arguments.
async fn ride_mqtt(url: &str, extra: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_simulator"))
        .args(["--target", "mqtt", "--url", url, "--racers", "5"])
        .args([
            "--seconds",
            "2",
            "--speed",
            "0",
            "--quiet",
            "--max-attempts",
            "1",
        ])
        .args(["--drain-timeout", "3", "--summary-json", "-"])
        .args(extra)
        .output()
        .await
        .expect("run the simulator")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_stack_takes_the_operators_publishes_only() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let args = alleycat_local::config::StackArgs {
        data_dir: data_dir.clone(),
        http_port: free_port(),
        mqtt_port: free_port(),
        ws_port: free_port(),
        ..alleycat_local::config::StackArgs::default()
    };
    let stack = alleycat_local::Stack::start(args.config()).await.unwrap();
    let url = format!("mqtt://{}", stack.mqtt_addr());

    // Anonymous: the gate closes the connection at the first publish; nothing is delivered.
    let output = ride_mqtt(&url, &[]).await;
    assert!(!output.status.success(), "anonymous publishes were taken");
    // A wrong password: refused at CONNECT.
    let output = ride_mqtt(
        &url,
        &["--mqtt-username", "operator", "--mqtt-password", "guess"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stack.status().stream_records, 0);

    // The operator, its secret read from the data directory: every record arrives, unstamped.
    let data = data_dir.to_string_lossy().into_owned();
    let output = ride_mqtt(&url, &["--mqtt-username", "operator", "--data-dir", &data]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (summary["sent"].as_u64(), summary["lost"].as_u64()),
        (Some(10), Some(0))
    );
    for _ in 0..100 {
        if stack.status().stream_records == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stack.status().stream_records, 10);
    let records = stack.stream().read(0, None, 100).unwrap();
    assert!(
        records
            .iter()
            .all(|r| !String::from_utf8_lossy(&r.data).contains("identityId"))
    );
    stack.shutdown().await;
}
