//! Test support (feature `moto`), public so every crate's tests share it: one moto server (the
//! AWS emulator) per test process, and adapters pointed at it.
//!
//! The server is `$ALLEYCAT_MOTO_SERVER`, or moto_server of the venv `scripts/moto-venv` makes
//! (`${ALLEYCAT_TOOLS_DIR:-$HOME/.cache/alleycat-tools}/venv/bin/moto_server`). A missing server
//! fails the tests: they are never skipped.
//!
//! moto's server answers each request on its own thread and checks a condition (DynamoDB's
//! `ConditionExpression`, S3's `If-Match`) in one step and writes in another, so two concurrent
//! conditional writes can both succeed: a lost update the real services never allow. The server is
//! therefore started through its own Python with a few lines that let one request at a time into
//! moto (the threads still accept connections), which makes conditional writes atomic as they are
//! on AWS.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::{DynamoTable, IotPublisher, S3Objects};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

/// Runs moto's server with one request at a time inside moto (see the module docs).
const SERIALIZED_MOTO: &str = r"
import sys, threading
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
_lock = threading.Lock()
_call = DomainDispatcherApplication.__call__
def _one_at_a_time(self, environ, start_response):
    with _lock:
        return _call(self, environ, start_response)
DomainDispatcherApplication.__call__ = _one_at_a_time
from moto.server import main
main(sys.argv[1:])
";

/// Kills the server when the test binary exits, however it exits: the shell waits for the end of
/// its standard input, which the kernel closes with the test process.
const KILL_ON_EOF: &str = r#""$@" & pid=$!; read -r _line; kill "$pid" 2>/dev/null; wait "$pid""#;

/// The running server.
pub struct Moto {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    _child: Child,
    _stdin: ChildStdin,
}

/// The server of this test binary, started on first use.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(start)
}

fn server_path() -> PathBuf {
    if let Some(path) = std::env::var_os("ALLEYCAT_MOTO_SERVER").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let tools = std::env::var_os("ALLEYCAT_TOOLS_DIR")
        .filter(|p| !p.is_empty())
        .map_or_else(
            || {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                    .join(".cache/alleycat-tools")
            },
            PathBuf::from,
        );
    tools.join("venv/bin/moto_server")
}

/// The Python interpreter of a `moto_server` console script (its `#!` line), to run the server
/// serialized; `None` if it is not a Python script.
fn interpreter_of(script: &Path) -> Option<Vec<String>> {
    let mut head = [0u8; 512];
    let read = File::open(script).ok()?.read(&mut head).ok()?;
    let first_line = std::str::from_utf8(&head[..read]).ok()?.lines().next()?;
    let words: Vec<String> = first_line
        .strip_prefix("#!")?
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    words.iter().any(|w| w.contains("python")).then_some(words)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port()
}

fn start() -> Moto {
    let server = server_path();
    assert!(
        server.is_file(),
        "moto_server not found at {}: run `bash scripts/test` (it installs moto with \
         scripts/moto-venv), or set ALLEYCAT_MOTO_SERVER to a moto_server binary",
        server.display()
    );
    let port = free_port();
    let log_path = std::env::temp_dir().join(format!("alleycat-moto-{}.log", std::process::id()));
    let log = File::create(&log_path).expect("moto log file");

    let mut command = Command::new("sh");
    command.arg("-c").arg(KILL_ON_EOF).arg("moto");
    if let Some(python) = interpreter_of(&server) {
        command.args(&python).arg("-c").arg(SERIALIZED_MOTO);
    } else {
        eprintln!(
            "warning: {} is not a Python script; running it as is (conditional writes are \
             not atomic in moto without serialization)",
            server.display()
        );
        command.arg(&server);
    }
    command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(log.try_clone().expect("moto log file"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", server.display()));
    let stdin = child.stdin.take().expect("piped stdin");

    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        if http_get(&format!("{endpoint}/moto-api/")).is_ok() {
            break;
        }
        let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "moto_server exited ({status}) before answering; its log:\n{}",
                log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "moto_server did not answer on {endpoint} within 60 s; its log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto {
        endpoint,
        _child: child,
        _stdin: stdin,
    }
}

impl Moto {
    /// The environment a function's `bootstrap` needs to reach this server instead of AWS.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        self.env_with(&[])
            .into_iter()
            .map(|(name, value)| (name, value.to_owned()))
            .collect()
    }

    /// [`Moto::env`] followed by a function's own `vars`, borrowed, in the form
    /// `alleycat_lambda::fake_runtime::run_bootstrap` takes.
    pub fn env_with<'a>(
        &'a self,
        vars: &[(&'static str, &'a str)],
    ) -> Vec<(&'static str, &'a str)> {
        let mut env = vec![
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ];
        env.extend_from_slice(vars);
        env
    }
}

/// SDK configuration for moto: its endpoint, dummy credentials, us-east-1. Set explicitly rather
/// than through `AWS_ENDPOINT_URL` (changing the environment of a running test process is
/// `unsafe`); the adapters see the same configuration either way.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto().endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .load()
        .await
}

/// A name no other test of this binary uses, so tests run in parallel on one server.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A new, empty table with the production schema.
pub async fn table() -> DynamoTable {
    let config = sdk_config().await;
    let table = DynamoTable::from_conf(&config, unique("alleycat"));
    crate::create_table(&table.client, &table.table, Duration::from_secs(30))
        .await
        .expect("create table");
    table
}

/// A new, empty bucket, addressed by path (the adapter's choice for a custom endpoint).
pub async fn bucket() -> S3Objects {
    let config = sdk_config().await;
    let objects = S3Objects::from_conf(&config, unique("alleycat-bucket"));
    objects
        .client
        .create_bucket()
        .bucket(&objects.bucket)
        .send()
        .await
        .expect("create bucket");
    objects
}

/// A publisher on moto's IoT data plane.
pub async fn publisher() -> IotPublisher {
    IotPublisher::from_conf(&sdk_config().await, None)
}

/// A plain HTTP/1.0 GET (no client library needed for a presigned URL on a local server).
/// Returns the status and the body.
pub fn http_get(url: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| invalid("not an http:// URL"))?;
    let (host, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of headers"))?;
    let head = std::str::from_utf8(&response[..end]).map_err(|_| invalid("headers not UTF-8"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("no status"))?;
    Ok((status, response[end + 4..].to_vec()))
}
