//! MQTT over WebSocket through the gate, as a browser speaks it: pages of other sites are
//! refused at the handshake, a connection that never finishes its handshake holds nobody up,
//! and a page of the stack's own gets MQTT 3.1.1 at `/mqtt`.

use std::time::{Duration, Instant};

use alleycat_local::Stack;
use alleycat_local::config::StackArgs;
use alleycat_local::testing::free_port;
use bytes::BytesMut;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, Packet, Publish, SubAck, Subscribe, SubscribeReasonCode,
};
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

/// `host:port` of the stack's WebSocket listener.
fn ws_host(stack: &Stack) -> String {
    let url = stack.websocket_url();
    url.trim_start_matches("ws://")
        .trim_end_matches("/mqtt")
        .to_owned()
}

/// The HTTP server's port (the origin of the stack's own pages).
fn http_port(stack: &Stack) -> &str {
    stack.url().rsplit(':').next().unwrap_or_default()
}

/// Sends a browser's upgrade request (with `origin`, if any) and reads the response head.
async fn handshake(stack: &Stack, origin: Option<&str>) -> std::io::Result<(TcpStream, String)> {
    let host = ws_host(stack);
    let mut stream = TcpStream::connect(&host).await?;
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    let request = format!(
        "GET /mqtt HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: mqtt\r\n{origin}\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        let read = tokio::time::timeout(WAIT, stream.read(&mut byte)).await??;
        if read == 0 {
            break;
        }
        head.push(byte[0]);
    }
    Ok((stream, String::from_utf8_lossy(&head).to_ascii_lowercase()))
}

/// One client-to-server WebSocket frame: binary, final, masked as clients must.
fn ws_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x82];
    match u16::try_from(payload.len()) {
        Ok(n) if n < 126 => frame.push(0x80 | u8::try_from(n).unwrap_or(0)),
        Ok(n) => {
            frame.push(0xfe); // masked, 16-bit length
            frame.extend_from_slice(&n.to_be_bytes());
        }
        Err(_) => {
            frame.push(0xff); // masked, 64-bit length
            frame.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    frame
}

/// MQTT over a WebSocket: packets sent one per frame, frames read back into one byte stream.
struct WsMqtt {
    stream: TcpStream,
    mqtt: BytesMut,
}

impl WsMqtt {
    async fn send(&mut self, packet: Packet) -> TestResult {
        let mut bytes = BytesMut::new();
        packet.write(&mut bytes, 1 << 20)?;
        self.stream.write_all(&ws_frame(&bytes)).await?;
        Ok(())
    }

    async fn next(&mut self) -> Result<Packet, Box<dyn std::error::Error + Send + Sync>> {
        loop {
            match Packet::read(&mut self.mqtt, 1 << 20) {
                Ok(packet) => return Ok(packet),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(error) => return Err(error.into()),
            }
            // One unmasked server frame.
            let mut header = [0; 2];
            tokio::time::timeout(WAIT, self.stream.read_exact(&mut header)).await??;
            match header[0] & 0x0f {
                0x2 => {}
                0x8 => return Err("the server closed the WebSocket".into()),
                opcode => return Err(format!("unexpected frame opcode {opcode}").into()),
            }
            let len = match header[1] & 0x7f {
                126 => usize::from(self.stream.read_u16().await?),
                127 => usize::try_from(self.stream.read_u64().await?)?,
                n => usize::from(n),
            };
            let mut payload = vec![0; len];
            self.stream.read_exact(&mut payload).await?;
            self.mqtt.extend_from_slice(&payload);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_other_sites_are_refused_and_the_stacks_own_are_let_in() -> TestResult {
    let dir = tempfile::tempdir()?;
    let stack = start_stack(dir.path()).await;
    let port = http_port(&stack).to_owned();
    for foreign in [
        "http://evil.example".to_owned(),
        "null".to_owned(),
        format!("http://localhost:{}", free_port()),
        format!("https://localhost:{port}"),
    ] {
        let (_, head) = handshake(&stack, Some(&foreign)).await?;
        assert!(head.starts_with("http/1.1 403"), "{foreign}: {head}");
    }
    for own in [
        None,
        Some(format!("http://localhost:{port}")),
        Some(format!("http://127.0.0.1:{port}")),
    ] {
        let (_, head) = handshake(&stack, own.as_deref()).await?;
        assert!(head.starts_with("http/1.1 101"), "{own:?}: {head}");
        assert!(head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="));
        assert!(head.contains("sec-websocket-protocol: mqtt"), "{head}");
    }
    stack.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_holds_up_no_browser_and_is_dropped_after_the_deadline() -> TestResult {
    let dir = tempfile::tempdir()?;
    let stack = start_stack(dir.path()).await;
    let opened = Instant::now();
    let mut silent = TcpStream::connect(ws_host(&stack)).await?;
    let mut half_way = TcpStream::connect(ws_host(&stack)).await?;
    half_way
        .write_all(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n")
        .await?;

    // A browser-shaped client gets through at once: handshake, CONNECT, SUBSCRIBE.
    let started = Instant::now();
    let origin = format!("http://localhost:{}", http_port(&stack));
    let (stream, head) = handshake(&stack, Some(&origin)).await?;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    let mut browser = WsMqtt {
        stream,
        mqtt: BytesMut::new(),
    };
    let mut connect = Connect::new("browser-1");
    connect.keep_alive = 60;
    browser.send(Packet::Connect(connect)).await?;
    assert_eq!(
        browser.next().await?,
        Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, false))
    );
    let mut subscribe = Subscribe::new("alleycat-subscribe/class-3", QoS::AtMostOnce);
    subscribe.pkid = 1;
    browser.send(Packet::Subscribe(subscribe)).await?;
    assert_eq!(
        browser.next().await?,
        Packet::SubAck(SubAck::new(
            1,
            vec![SubscribeReasonCode::Success(QoS::AtMostOnce)]
        ))
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the browser waited {:?}",
        started.elapsed()
    );
    // Anonymous over WebSocket too: a publish ends its connection.
    let mut publish = Publish::new(
        "alleycat-subscribe/class-3",
        QoS::AtLeastOnce,
        b"{}".to_vec(),
    );
    publish.pkid = 2;
    browser.send(Packet::Publish(publish)).await?;
    assert!(
        browser.next().await.is_err(),
        "the connection should be closed"
    );

    // The handshake deadline (5 s) closes both stalled connections.
    for stalled in [&mut silent, &mut half_way] {
        let mut byte = [0; 64];
        let read = tokio::time::timeout(WAIT, stalled.read(&mut byte)).await?;
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    let held = opened.elapsed();
    assert!(
        held >= Duration::from_millis(4500) && held < Duration::from_secs(9),
        "closed after {held:?}"
    );
    stack.shutdown().await;
    Ok(())
}
