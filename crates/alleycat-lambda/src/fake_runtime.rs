//! A stand-in for the Lambda Runtime API, so tests can start a function's real `bootstrap`
//! binary, hand it one event and read its answer, exactly as Lambda would.
//!
//! Only what a runtime client uses: `GET /2018-06-01/runtime/invocation/next`, then
//! `POST …/invocation/{id}/response` or `…/error`, and `POST …/init/error`. Plain blocking
//! sockets, one thread per connection, keep-alive supported.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// What the function sent back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `POST /invocation/{id}/response`: the handler's result.
    Response(Vec<u8>),
    /// `POST /invocation/{id}/error`: the handler failed.
    Error(Vec<u8>),
    /// `POST /init/error`: the function failed before serving.
    InitError(Vec<u8>),
}

/// A fake Runtime API that serves queued events, one per `next` request, and blocks `next`
/// once they run out (as Lambda does between invocations).
pub struct FakeRuntime {
    address: SocketAddr,
    replies: Receiver<(Reply, Instant)>,
    first_next: Arc<Mutex<Option<Instant>>>,
}

impl FakeRuntime {
    /// Starts the server on a free loopback port, ready to serve `events` in order.
    pub fn start(events: Vec<Vec<u8>>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let (send, replies) = mpsc::channel();
        let queue = Arc::new(Mutex::new(
            events.into_iter().enumerate().collect::<Vec<_>>(),
        ));
        let first_next = Arc::new(Mutex::new(None));
        {
            let first_next = Arc::clone(&first_next);
            thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let queue = Arc::clone(&queue);
                    let send = send.clone();
                    let first_next = Arc::clone(&first_next);
                    thread::spawn(move || serve(stream, &queue, &send, &first_next));
                }
            });
        }
        Ok(Self {
            address,
            replies,
            first_next,
        })
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Waits for the function's next reply.
    pub fn reply(&self, timeout: Duration) -> Result<(Reply, Instant), RecvTimeoutError> {
        self.replies.recv_timeout(timeout)
    }

    /// When the function first asked for work: its start-up is over.
    pub fn first_request_at(&self) -> Option<Instant> {
        *self
            .first_next
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

type Queue = Mutex<Vec<(usize, Vec<u8>)>>;

fn serve(
    stream: TcpStream,
    queue: &Queue,
    send: &Sender<(Reply, Instant)>,
    first_next: &Mutex<Option<Instant>>,
) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut writer = write_half;
    let mut reader = BufReader::new(stream);
    loop {
        let Some((method, path, body)) = read_request(&mut reader) else {
            return;
        };
        let now = Instant::now();
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            first_next
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert(now);
            let next = {
                let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
                (!queue.is_empty()).then(|| queue.remove(0))
            };
            let Some((id, event)) = next else {
                // No more work: hold the request open, as Lambda freezes an idle function.
                thread::sleep(Duration::from_hours(1));
                return;
            };
            let deadline = crate::now_ms() + 60_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Lambda-Runtime-Aws-Request-Id: request-{id}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:alleycat\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Sampled=0\r\n\r\n",
                event.len()
            );
            if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&event).is_err() {
                return;
            }
        } else {
            let reply = if path.ends_with("/response") {
                Reply::Response(body)
            } else if path.ends_with("/init/error") {
                Reply::InitError(body)
            } else {
                Reply::Error(body)
            };
            let _ = send.send((reply, now));
            let head = "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}\n";
            if writer.write_all(head.as_bytes()).is_err() {
                return;
            }
        }
    }
}

fn read_request(reader: &mut impl BufRead) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, body))
}

/// What Lambda itself puts in every function's environment and the Rust runtime client requires
/// (it panics without them): set before the caller's variables, which may override them.
pub const LAMBDA_ENV: [(&str, &str); 3] = [
    ("AWS_LAMBDA_FUNCTION_NAME", "alleycat"),
    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
    ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
];

/// What one run of a `bootstrap` binary against the fake runtime produced.
#[derive(Debug)]
pub struct BootstrapRun {
    /// The function's reply to the event.
    pub reply: Reply,
    /// From `exec` to the function's first request for work: its cold start, minus Lambda's own.
    pub startup: Duration,
    /// What the function wrote to stdout (logs, EMF metrics).
    pub stdout: String,
}

impl BootstrapRun {
    /// The reply parsed as JSON if it is a response; an error showing the reply otherwise.
    pub fn response_json(&self) -> Result<serde_json::Value, String> {
        match &self.reply {
            Reply::Response(body) => serde_json::from_slice(body).map_err(|e| {
                format!(
                    "response is not JSON ({e}): {}",
                    String::from_utf8_lossy(body)
                )
            }),
            Reply::Error(body) => Err(format!("error reply: {}", String::from_utf8_lossy(body))),
            Reply::InitError(body) => Err(format!("init error: {}", String::from_utf8_lossy(body))),
        }
    }

    /// The one CloudWatch EMF document among the stdout lines (a JSON object with an `_aws`
    /// member) that a run of one invocation should print; an error showing stdout if there is
    /// none or more than one.
    pub fn emf(&self) -> Result<serde_json::Value, String> {
        let mut documents = self
            .stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|document| document.get("_aws").is_some());
        match (documents.next(), documents.next()) {
            (Some(document), None) => Ok(document),
            _ => Err(format!("expected one EMF line on stdout:\n{}", self.stdout)),
        }
    }
}

/// Starts `binary` with exactly `env` (plus [`LAMBDA_ENV`] and `AWS_LAMBDA_RUNTIME_API`), hands
/// it `event`, waits for its reply, and stops it. A binary that exits without replying fails the
/// run at once, with its exit status.
pub fn run_bootstrap(
    binary: &str,
    env: &[(&str, &str)],
    event: &[u8],
) -> Result<BootstrapRun, String> {
    let runtime = FakeRuntime::start(vec![event.to_vec()]).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut child = std::process::Command::new(binary)
        .env_clear()
        .envs(LAMBDA_ENV)
        .envs(env.iter().copied())
        .env("AWS_LAMBDA_RUNTIME_API", runtime.address())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {binary}: {e}"))?;
    let deadline = started + Duration::from_mins(1);
    let reply = loop {
        match runtime.reply(Duration::from_millis(50)) {
            Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                    // Its reply may have come in just before it exited.
                    break runtime
                        .reply(Duration::ZERO)
                        .map_err(|_| format!("{binary} exited ({status}) without replying"));
                }
            }
            reply => break reply.map_err(|e| format!("{binary} did not reply: {e}")),
        }
    };
    let _ = child.kill();
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    let (reply, _) = reply?;
    let startup = runtime
        .first_request_at()
        .map(|at| at.duration_since(started))
        .ok_or("the function never asked for work")?;
    Ok(BootstrapRun {
        reply,
        startup,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    })
}

/// Starts `binary` with exactly `env` (plus [`LAMBDA_ENV`] and `AWS_LAMBDA_RUNTIME_API`) and
/// expects it to fail before serving: returns everything it wrote (stdout and stderr, and any
/// init error it posted), which should name what was missing.
pub fn init_failure(binary: &str, env: &[(&str, &str)]) -> Result<String, String> {
    let runtime = FakeRuntime::start(Vec::new()).map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(binary)
        .env_clear()
        .envs(LAMBDA_ENV)
        .envs(env.iter().copied())
        .env("AWS_LAMBDA_RUNTIME_API", runtime.address())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {binary}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("{binary} kept running without its configuration"));
        }
        thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if output.status.success() {
        return Err(format!(
            "{binary} exited successfully without its configuration"
        ));
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    while let Ok((Reply::InitError(body), _)) = runtime.reply(Duration::ZERO) {
        text.push_str(&String::from_utf8_lossy(&body));
    }
    Ok(text)
}

/// Starts `binary` with `env` minus the variable `name` and expects it to fail its init naming
/// `name` ([`init_failure`]): returns the output, or an error quoting it when it does not say
/// which variable is missing.
pub fn init_fails_naming(binary: &str, env: &[(&str, &str)], name: &str) -> Result<String, String> {
    let without: Vec<(&str, &str)> = env.iter().copied().filter(|(k, _)| *k != name).collect();
    let output = init_failure(binary, &without)?;
    if output.contains(name) {
        Ok(output)
    } else {
        Err(format!(
            "{binary} failed without {name} but did not name it:\n{output}"
        ))
    }
}

/// The committed fixture event `fixtures/events/<name>` of the workspace, with each `(from, to)`
/// of `substitutions` replaced throughout (e.g. the fixture's bucket name by a test's own); an
/// error if a `from` does not occur, so a stale substitution cannot pass silently.
pub fn fixture_event(name: &str, substitutions: &[(&str, &str)]) -> Result<Vec<u8>, String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/events")
        .join(name);
    let mut text =
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    for (from, to) in substitutions {
        if !text.contains(from) {
            return Err(format!("{from:?} does not occur in {name}"));
        }
        text = text.replace(from, to);
    }
    Ok(text.into_bytes())
}
