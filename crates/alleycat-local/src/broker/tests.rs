//! The broker and its in-process links, on rumqttd's loopback listener (the gate has its own
//! tests, in `tests/gate.rs`).

use super::*;

use rumqttc::{Client, Event, MqttOptions, Packet as ClientPacket, QoS};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);

/// Two distinct free loopback ports.
fn free_config() -> BrokerConfig {
    let mqtt = TcpListener::bind("127.0.0.1:0").unwrap();
    let websocket = TcpListener::bind("127.0.0.1:0").unwrap();
    BrokerConfig {
        mqtt: mqtt.local_addr().unwrap(),
        websocket: websocket.local_addr().unwrap(),
        ..BrokerConfig::default()
    }
}

/// A rumqttc client on the broker's TCP port, its event loop driven by a thread that
/// forwards incoming publishes and tells when the first SUBACK arrives.
fn client(
    broker: &LocalBroker,
    id: &str,
) -> (Client, mpsc::Receiver<rumqttc::Publish>, mpsc::Receiver<()>) {
    let addr = broker.internal_addr();
    let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut connection) = Client::new(options, 100);
    let (publishes_tx, publishes) = mpsc::channel();
    let (subacks_tx, subacks) = mpsc::channel();
    thread::spawn(move || {
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(ClientPacket::Publish(publish))) => {
                    if publishes_tx.send(publish).is_err() {
                        return;
                    }
                }
                Ok(Event::Incoming(ClientPacket::SubAck(_))) => {
                    subacks_tx.send(()).ok();
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    (client, publishes, subacks)
}

#[test]
fn the_publisher_reaches_subscribed_browsers() -> TestResult {
    let broker = LocalBroker::start(&free_config())?;
    let (browser, publishes, subacks) = client(&broker, "browser");
    browser.subscribe("alleycat-subscribe/class-3", QoS::AtMostOnce)?;
    subacks.recv_timeout(WAIT)?;

    let publisher = broker.publisher()?;
    let other = broker.publisher()?;
    for n in 0..50 {
        let message = format!(r#"{{"msg":"results","n":{n}}}"#);
        futures::executor::block_on(
            publisher.publish("alleycat-subscribe/class-3", message.into_bytes()),
        )?;
    }
    futures::executor::block_on(other.publish("alleycat-subscribe/class-4", b"{}".to_vec()))?;
    drop(other);
    futures::executor::block_on(publisher.publish("alleycat-subscribe/class-3", b"{}".to_vec()))?;

    for n in 0..50 {
        let publish = publishes.recv_timeout(WAIT)?;
        assert_eq!(publish.topic, "alleycat-subscribe/class-3");
        assert_eq!(publish.qos, QoS::AtMostOnce);
        assert_eq!(
            publish.payload,
            format!(r#"{{"msg":"results","n":{n}}}"#).as_bytes()
        );
    }
    assert_eq!(publishes.recv_timeout(WAIT)?.payload, b"{}".as_slice());
    assert!(publishes.recv_timeout(Duration::from_millis(200)).is_err());
    Ok(())
}

#[test]
fn links_count_against_the_limit_until_dropped() -> TestResult {
    let broker = LocalBroker::start(&BrokerConfig {
        max_connections: 1,
        ..free_config()
    })?;
    let slots = 1 + IN_PROCESS_LINKS;
    let held = (0..slots)
        .map(|_| broker.publisher())
        .collect::<Result<Vec<_>, _>>()?;
    let refused = broker.publisher().unwrap_err();
    assert!(
        refused.to_string().contains("connection limit"),
        "{refused}"
    );

    drop(held);
    for _ in 0..3 * slots {
        drop(broker.publisher()?);
    }
    let publisher = broker.publisher()?;
    futures::executor::block_on(publisher.publish("alleycat-subscribe/class-1", vec![]))?;
    Ok(())
}

#[test]
fn settings_that_cannot_work_are_refused() {
    let config = free_config();
    for bad in [
        BrokerConfig {
            websocket: config.mqtt,
            ..config.clone()
        },
        BrokerConfig {
            mqtt: "127.0.0.1:0".parse().unwrap(),
            ..config.clone()
        },
        BrokerConfig {
            max_connections: 0,
            ..config.clone()
        },
    ] {
        let error = LocalBroker::start(&bad).unwrap_err();
        assert!(matches!(error, LocalError::Config(_)), "{error:?}");
    }
}

#[test]
fn the_websocket_url_is_reachable_from_this_machine() {
    assert_eq!(
        websocket_url("0.0.0.0:9001".parse().unwrap()),
        "ws://127.0.0.1:9001/mqtt"
    );
    assert_eq!(
        websocket_url("[::]:9001".parse().unwrap()),
        "ws://[::1]:9001/mqtt"
    );
    assert_eq!(
        websocket_url("10.0.0.2:9001".parse().unwrap()),
        "ws://10.0.0.2:9001/mqtt"
    );
}
