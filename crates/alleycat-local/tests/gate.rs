//! The gate in front of the broker, end to end on a running stack: foreign clients can neither
//! publish where they should not nor listen to what they should not, browsers of other sites
//! are kept out, a silent connection holds nobody up, credentials are checked, and what gets
//! through reaches the stream stamped with who sent it.
//!
//! Most checks speak raw MQTT bytes over a socket, so that what the gate answers (or that it
//! closes the connection) is seen exactly, with no client library retrying in between.

use std::time::Duration;

use alleycat_local::Stack;
use alleycat_local::config::StackArgs;
use alleycat_local::identity::Identity;
use alleycat_local::testing::{free_port, identity_options, mqtt_options, operator_options};
use bytes::BytesMut;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{
    Connect, ConnectReturnCode, LastWill, Packet, Publish, SubAck, Subscribe, SubscribeFilter,
    SubscribeReasonCode,
};
use rumqttc::{AsyncClient, Event};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const WAIT: Duration = Duration::from_secs(10);

async fn start_stack(dir: &std::path::Path) -> Stack {
    let args = StackArgs {
        data_dir: dir.join("data"),
        http_port: free_port(),
        mqtt_port: free_port(),
        ws_port: free_port(),
        ..StackArgs::default()
    };
    Stack::start(args.config()).await.expect("the stack starts")
}

/// A raw MQTT 3.1.1 client: packets written and read as bytes.
struct Raw {
    stream: TcpStream,
    buffer: BytesMut,
}

impl Raw {
    async fn connect(
        stack: &Stack,
        connect: &Connect,
    ) -> Result<(Self, ConnectReturnCode), String> {
        let stream = TcpStream::connect(stack.mqtt_addr())
            .await
            .map_err(|e| e.to_string())?;
        let mut raw = Self {
            stream,
            buffer: BytesMut::new(),
        };
        raw.send(Packet::Connect(connect.clone())).await?;
        match raw.next().await? {
            Some(Packet::ConnAck(ack)) => Ok((raw, ack.code)),
            other => Err(format!("expected CONNACK, got {other:?}")),
        }
    }

    async fn send(&mut self, packet: Packet) -> Result<(), String> {
        let mut bytes = BytesMut::new();
        packet
            .write(&mut bytes, 1 << 20)
            .map_err(|e| e.to_string())?;
        self.stream
            .write_all(&bytes)
            .await
            .map_err(|e| e.to_string())
    }

    /// The next packet; `None` once the connection is closed (or reset).
    async fn next(&mut self) -> Result<Option<Packet>, String> {
        loop {
            match Packet::read(&mut self.buffer, 1 << 20) {
                Ok(packet) => return Ok(Some(packet)),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(error) => return Err(error.to_string()),
            }
            let read = tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buffer))
                .await
                .map_err(|_| "no answer in time".to_owned())?;
            match read {
                Ok(0) | Err(_) => return Ok(None),
                Ok(_) => {}
            }
        }
    }

    /// Asserts the gate closes the connection without answering anything else.
    async fn assert_closed(&mut self, what: &str) {
        match self.next().await {
            Ok(None) => {}
            other => panic!("{what}: the connection should be closed, got {other:?}"),
        }
    }

    /// Asserts the connection is still served: a PINGREQ gets its PINGRESP.
    async fn assert_open(&mut self, what: &str) {
        self.send(Packet::PingReq).await.expect("PINGREQ sent");
        assert_eq!(self.next().await, Ok(Some(Packet::PingResp)), "{what}");
    }
}

fn connect(client_id: &str, login: Option<(&str, &str)>) -> Connect {
    let mut connect = Connect::new(client_id);
    connect.keep_alive = 30;
    if let Some((username, password)) = login {
        connect.set_login(username, password);
    }
    connect
}

fn publish(topic: &str, qos: QoS, retain: bool, payload: Vec<u8>) -> Packet {
    let mut publish = Publish::new(topic, qos, payload);
    publish.retain = retain;
    if qos != QoS::AtMostOnce {
        publish.pkid = 1;
    }
    Packet::Publish(publish)
}

fn login(identity: &Identity) -> (&str, &str) {
    (identity.identity_id.as_str(), identity.token.as_str())
}

/// A device message of racer 8, with `extra` fields.
fn message(extra: &str) -> Vec<u8> {
    format!(r#"{{"racerId":8,"classId":1,"cadence":80.5{extra}}}"#).into_bytes()
}

/// Every record in the stream, parsed.
async fn stream_records(stack: &Stack, expected: usize) -> Vec<Value> {
    for _ in 0..100 {
        if stack.status().stream_records >= expected as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stream = stack.stream();
    let mut records = Vec::new();
    for shard in 0..stream.shards() {
        for record in stream.read(shard, None, 1000).expect("the stream reads") {
            records.push(serde_json::from_slice(&record.data).expect("JSON records"));
        }
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_clients_cannot_publish_to_the_standings_and_nothing_is_delivered() -> TestResult {
    let dir = tempfile::tempdir()?;
    let stack = start_stack(dir.path()).await;
    let mut listener = Raw::connect(&stack, &connect("listener", None)).await?.0;
    listener
        .send(Packet::Subscribe(Subscribe::new(
            "alleycat-subscribe/class-1",
            QoS::AtMostOnce,
        )))
        .await?;
    let Some(Packet::SubAck(granted)) = listener.next().await? else {
        panic!("no SUBACK");
    };
    assert_eq!(
        granted.return_codes,
        [SubscribeReasonCode::Success(QoS::AtMostOnce)]
    );

    let identity = stack.identities().issue()?;
    let forged = br#"{"msg":"results","raceId":1,"results":{"8":999.9}}"#.to_vec();
    for (who, login) in [
        ("anonymous", None),
        ("identity", Some(login(&identity))),
        ("operator", Some(("operator", stack.operator_secret()))),
    ] {
        let id = login.map_or("foreign", |(username, _)| username);
        let (mut client, code) = Raw::connect(&stack, &connect(id, login)).await?;
        assert_eq!(code, ConnectReturnCode::Success, "{who}");
        client
            .send(publish(
                "alleycat-subscribe/class-1",
                QoS::AtLeastOnce,
                false,
                forged.clone(),
            ))
            .await?;
        client.assert_closed(who).await;
    }
    // An anonymous client may not publish even to alleycat-publish.
    let (mut anonymous, _) = Raw::connect(&stack, &connect("bike", None)).await?;
    anonymous
        .send(publish(
            "alleycat-publish",
            QoS::AtMostOnce,
            false,
            message(""),
        ))
        .await?;
    anonymous
        .assert_closed("anonymous to alleycat-publish")
        .await;

    // The subscription stands, and nothing reached it.
    let nothing = tokio::time::timeout(Duration::from_millis(500), listener.next()).await;
    assert!(nothing.is_err(), "delivered: {nothing:?}");
    listener.assert_open("the listener").await;
    assert_eq!(stream_records(&stack, 0).await.len(), 0);
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_qos_2_oversized_and_other_topics_close_the_connection() -> TestResult {
    let dir = tempfile::tempdir()?;
    let stack = start_stack(dir.path()).await;
    let operator = Some(("operator", stack.operator_secret()));
    let refused = [
        (
            "retained",
            publish("alleycat-publish", QoS::AtLeastOnce, true, message("")),
        ),
        (
            "QoS 2",
            publish("alleycat-publish", QoS::ExactlyOnce, false, message("")),
        ),
        (
            "200 KB",
            publish(
                "alleycat-publish",
                QoS::AtLeastOnce,
                false,
                vec![b' '; 200_000],
            ),
        ),
        (
            "a sub-topic",
            publish(
                "alleycat-publish/local:x",
                QoS::AtMostOnce,
                false,
                message(""),
            ),
        ),
        (
            "a wildcard",
            publish("alleycat-publish/#", QoS::AtMostOnce, false, message("")),
        ),
    ];
    for (what, packet) in refused {
        let (mut client, _) = Raw::connect(&stack, &connect("producer", operator)).await?;
        // The gate may close the connection before a large packet is even written.
        let _ = client.send(packet).await;
        client.assert_closed(what).await;
    }
    // Up to 128 KB goes through, acknowledged.
    let (mut client, _) = Raw::connect(&stack, &connect("producer", operator)).await?;
    let padding = " ".repeat(128 * 1024 - message("").len());
    let mut largest = message("");
    largest.splice(1..1, padding.bytes());
    assert_eq!(largest.len(), 128 * 1024);
    client
        .send(publish(
            "alleycat-publish",
            QoS::AtLeastOnce,
            false,
            largest,
        ))
        .await?;
    assert!(matches!(client.next().await?, Some(Packet::PubAck(ack)) if ack.pkid == 1));
    assert_eq!(stream_records(&stack, 1).await.len(), 1, "only the last");
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_beyond_the_standings_are_refused_one_by_one() -> TestResult {
    let dir = tempfile::tempdir()?;
    let stack = start_stack(dir.path()).await;
    let (mut client, _) = Raw::connect(&stack, &connect("curious", None)).await?;
    let filters = [
        ("#", false),
        ("alleycat-subscribe/class-2", true),
        ("alleycat-publish", false),
        ("alleycat-subscribe/+", true),
        ("alleycat-subscribe/class-7", false),
        ("alleycat-subscribe/#", false),
        ("alleycat-subscribe/class-6", true),
        // Not even valid filters: refused in the SUBACK too, as IoT Core does.
        ("a/#/b", false),
        ("#/a", false),
        ("", false),
    ];
    let mut subscribe = Subscribe::new_many(
        filters
            .iter()
            .map(|(path, _)| SubscribeFilter::new((*path).to_owned(), QoS::AtMostOnce)),
    );
    subscribe.pkid = 7;
    client.send(Packet::Subscribe(subscribe)).await?;
    let expected: Vec<_> = filters
        .iter()
        .map(|(_, ok)| {
            if *ok {
                SubscribeReasonCode::Success(QoS::AtMostOnce)
            } else {
                SubscribeReasonCode::Failure
            }
        })
        .collect();
    assert_eq!(
        client.next().await?,
        Some(Packet::SubAck(SubAck::new(7, expected)))
    );
    // Nothing allowed at all: answered by the gate itself, and the connection goes on.
    let mut everything = Subscribe::new("#", QoS::AtLeastOnce);
    everything.pkid = 8;
    client.send(Packet::Subscribe(everything)).await?;
    assert_eq!(
        client.next().await?,
        Some(Packet::SubAck(SubAck::new(
            8,
            vec![SubscribeReasonCode::Failure]
        )))
    );
    client.assert_open("after refused subscriptions").await;
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_refused_with_their_connack_codes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let stack = start_stack(dir.path()).await;
    let alice = stack.identities().issue()?;
    let bob = stack.identities().issue()?;
    let mut tampered = alice.token.clone();
    tampered.replace_range(0..1, if tampered.starts_with('0') { "1" } else { "0" });
    let mut with_will = connect(&alice.identity_id, Some(login(&alice)));
    with_will.last_will = Some(LastWill::new(
        "alleycat-subscribe/class-1",
        "gone",
        QoS::AtMostOnce,
        true,
    ));
    let cases = [
        (
            "wrong operator secret",
            connect("sim", Some(("operator", "not-the-secret"))),
            ConnectReturnCode::BadUserNamePassword,
        ),
        (
            "tampered token",
            connect(&alice.identity_id, Some((&alice.identity_id, &tampered))),
            ConnectReturnCode::BadUserNamePassword,
        ),
        (
            "another identity's token",
            connect(&alice.identity_id, Some((&alice.identity_id, &bob.token))),
            ConnectReturnCode::BadUserNamePassword,
        ),
        (
            "unknown user",
            connect("x", Some(("admin", "admin"))),
            ConnectReturnCode::BadUserNamePassword,
        ),
        (
            "client id is not the identity",
            connect("bike-8", Some(login(&alice))),
            ConnectReturnCode::NotAuthorized,
        ),
        (
            "client id is another identity",
            connect(&bob.identity_id, Some(login(&alice))),
            ConnectReturnCode::NotAuthorized,
        ),
        (
            "a will message",
            with_will,
            ConnectReturnCode::NotAuthorized,
        ),
    ];
    for (what, packet, code) in cases {
        let (mut client, got) = Raw::connect(&stack, &packet).await?;
        assert_eq!(got, code, "{what}");
        client.assert_closed(what).await;
    }
    // The right ones get in.
    for packet in [
        connect(&alice.identity_id, Some(login(&alice))),
        connect("sim", Some(("operator", stack.operator_secret()))),
        connect("browser", None),
    ] {
        let (mut client, got) = Raw::connect(&stack, &packet).await?;
        assert_eq!(got, ConnectReturnCode::Success, "{packet:?}");
        client.assert_open("accepted").await;
    }
    stack.shutdown().await;
    Ok(())
}

/// Publishes `payload` to `alleycat-publish` with rumqttc and waits for the PUBACK.
async fn publish_acknowledged(options: rumqttc::MqttOptions, payload: Vec<u8>) -> TestResult {
    let (client, mut events) = AsyncClient::new(options, 10);
    client
        .publish(
            "alleycat-publish",
            rumqttc::QoS::AtLeastOnce,
            false,
            payload,
        )
        .await?;
    tokio::time::timeout(WAIT, async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(rumqttc::Packet::PubAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(error) => return Err(error),
            }
        }
    })
    .await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identitys_messages_are_stamped_and_the_operators_are_not() -> TestResult {
    let dir = tempfile::tempdir()?;
    let stack = start_stack(dir.path()).await;
    let identity = stack.identities().issue()?;
    publish_acknowledged(
        identity_options(&stack, &identity),
        message(r#","n":1,"identityId":"local:forged""#),
    )
    .await?;
    publish_acknowledged(operator_options(&stack, "simulator"), message(r#","n":2"#)).await?;
    // Anonymous clients are turned away before anything reaches the stream.
    let refused = publish_acknowledged(mqtt_options(&stack, "stranger"), message(r#","n":3"#));
    assert!(
        refused.await.is_err(),
        "an anonymous publish was acknowledged"
    );

    let mut records = stream_records(&stack, 2).await;
    records.sort_by_key(|record| record["n"].as_u64());
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["identityId"], identity.identity_id.as_str());
    assert!(records[0]["ingestTimestamp"].is_u64());
    assert_eq!(records[0]["cadence"], 80.5);
    assert!(records[1].get("identityId").is_none(), "{}", records[1]);
    assert!(records[1]["ingestTimestamp"].is_u64());
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_is_an_error_naming_it() -> TestResult {
    for websocket_taken in [false, true] {
        let dir = tempfile::tempdir()?;
        let squatter = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = squatter.local_addr()?.port();
        let mut args = StackArgs {
            data_dir: dir.path().join("data"),
            http_port: free_port(),
            mqtt_port: free_port(),
            ws_port: free_port(),
            ..StackArgs::default()
        };
        if websocket_taken {
            args.ws_port = port;
        } else {
            args.mqtt_port = port;
        }
        let Err(error) = Stack::start(args.config()).await else {
            panic!("the stack started on a taken port");
        };
        assert!(error.to_string().contains(&format!(":{port}")), "{error}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_private_files_and_identities_survive_a_restart() -> TestResult {
    let dir = tempfile::tempdir()?;
    let stack = start_stack(dir.path()).await;
    let identity = stack.identities().issue()?;
    let operator = stack.operator_secret().to_owned();
    assert_eq!(operator.len(), 64);
    stack.shutdown().await;
    #[cfg(unix)]
    for file in ["operator-secret", "stack-secret"] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("data").join(file))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let stack = start_stack(dir.path()).await;
    assert_eq!(stack.operator_secret(), operator);
    assert!(
        stack
            .identities()
            .verify(&identity.identity_id, &identity.token)
    );
    stack.shutdown().await;
    Ok(())
}
