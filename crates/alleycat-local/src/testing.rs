//! Test support for end-to-end tests of the stack (feature `testing`): an oracle recomputing
//! every view from the device messages with plain, independent code, the comparison of the API's
//! views with it, a minimal HTTP client (and the raw exchange under it), and MQTT client options for each role the gate knows.

use std::collections::BTreeMap;
use std::io::{Read, Write as _};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

use rumqttc::MqttOptions;
use serde_json::Value;

use crate::Stack;
use crate::identity::{Identity, OPERATOR_USERNAME};

/// A loopback port free right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One HTTP/1.0 request to `http://host:port/path`: the status and body.
pub fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| invalid("not an http:// URL"))?;
    let (host, path) = rest
        .find('/')
        .map_or((rest, "/"), |slash| rest.split_at(slash));
    let mut request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Length: {}\r\n",
        body.len()
    )
    .into_bytes();
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(body);
    let response = exchange(host, &request, Duration::from_secs(60))?;
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

/// The raw client under [`http`], for tests that need to send what a well-behaved client would
/// not (unfinished headers, `HEAD`): writes `request` as it is on a fresh connection to `addr`,
/// and reads everything answered until the server closes the connection. A read that waits
/// longer than `wait` fails (`WouldBlock` or `TimedOut`).
pub fn exchange(
    addr: impl ToSocketAddrs,
    request: &[u8],
    wait: Duration,
) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(wait))?;
    stream.write_all(request)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    Ok(response)
}

/// `GET url`: the status and body.
pub fn http_get(url: &str) -> std::io::Result<(u16, Vec<u8>)> {
    http("GET", url, &[], &[])
}

/// rumqttc options for `client_id` on the stack's public MQTT port, anonymous (which may only
/// subscribe to the standings), with packets up to 1 MiB.
pub fn mqtt_options(stack: &Stack, client_id: &str) -> MqttOptions {
    let addr = stack.mqtt_addr();
    let mut options = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    options.set_max_packet_size(1 << 20, 1 << 20);
    options
}

/// [`mqtt_options`] as the operator: the trusted producer, whose messages reach the stream
/// without an `identityId`.
pub fn operator_options(stack: &Stack, client_id: &str) -> MqttOptions {
    let mut options = mqtt_options(stack, client_id);
    options.set_credentials(OPERATOR_USERNAME, stack.operator_secret());
    options
}

/// [`mqtt_options`] as `identity` (its id is its client id, as the gate requires).
pub fn identity_options(stack: &Stack, identity: &Identity) -> MqttOptions {
    let mut options = mqtt_options(stack, &identity.identity_id);
    options.set_credentials(identity.identity_id.as_str(), identity.token.as_str());
    options
}

/// Everything the stack should compute from a race, recomputed with plain code from the device
/// messages alone: the test oracle of the end-to-end and crash tests.
#[derive(Clone, Debug, Default)]
pub struct Oracle {
    /// The class.
    pub class_id: u8,
    /// The race.
    pub race_id: u64,
    /// Race length.
    pub seconds_per_race: usize,
    /// K of the class history.
    pub top_k: usize,
    /// Racer → best output of the race.
    pub standings: BTreeMap<u64, f64>,
    /// Racer → (name, final output, finishedAt).
    pub finals: BTreeMap<u64, (String, f64, u64)>,
    /// Racer → output at each second (index second - 1).
    pub seconds: BTreeMap<u64, Vec<Option<f64>>>,
}

/// DESIGN section 2's output, rounded to 4 decimals, computed here independently of the domain.
pub fn output(message: &Value) -> f64 {
    let cadence = message["cadence"].as_f64().unwrap();
    let resistance = message["resistance"].as_f64().unwrap();
    ((cadence + 35.0) * (resistance + 65.0) / 100.0 * 10_000.0).round() / 10_000.0
}

impl Oracle {
    /// The oracle of one race of one class: `lines` are its device messages (every one valid).
    pub fn of<L: AsRef<[u8]>>(lines: &[L], seconds_per_race: u16, top_k: usize) -> Self {
        let first: Value = serde_json::from_slice(lines[0].as_ref()).expect("JSON messages");
        let mut oracle = Self {
            class_id: u8::try_from(first["classId"].as_u64().unwrap()).unwrap(),
            race_id: first["raceId"].as_u64().unwrap(),
            seconds_per_race: usize::from(seconds_per_race),
            top_k,
            ..Self::default()
        };
        for line in lines {
            let message: Value = serde_json::from_slice(line.as_ref()).unwrap();
            assert_eq!(message["raceId"].as_u64(), Some(oracle.race_id), "one race");
            let racer = message["racerId"].as_u64().unwrap();
            let second = usize::try_from(message["second"].as_u64().unwrap()).unwrap();
            let out = output(&message);
            let best = oracle.standings.entry(racer).or_insert(0.0);
            *best = best.max(out);
            let seconds = oracle
                .seconds
                .entry(racer)
                .or_insert_with(|| vec![None; usize::from(seconds_per_race)]);
            seconds[second - 1] = Some(seconds[second - 1].map_or(out, |o: f64| o.max(out)));
            if message["event"] == "final" {
                oracle.finals.insert(
                    racer,
                    (
                        message["name"].as_str().unwrap().to_owned(),
                        out,
                        message["deviceTimestamp"].as_u64().unwrap(),
                    ),
                );
            }
        }
        oracle
    }

    /// The class history's top K at each second: best first, ties by racer id.
    pub fn top_k(&self, second: usize) -> Vec<(u64, f64)> {
        let mut ranked: Vec<(u64, f64)> = self
            .seconds
            .iter()
            .filter_map(|(racer, seconds)| seconds[second - 1].map(|o| (*racer, o)))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(self.top_k);
        ranked
    }

    /// The leaderboard after one race: racers by final output, best first; equal bests in
    /// record order (who finished first, by device time), then by name and racer id.
    pub fn leaderboard(&self) -> Vec<(u64, f64)> {
        let mut rows: Vec<(&u64, &(String, f64, u64))> = self.finals.iter().collect();
        rows.sort_by(|(ra, a), (rb, b)| {
            b.1.total_cmp(&a.1)
                .then(a.2.cmp(&b.2))
                .then(a.0.cmp(&b.0))
                .then(ra.cmp(rb))
        });
        rows.into_iter().take(100).map(|(r, f)| (*r, f.1)).collect()
    }
}

/// GETs `url` and parses its JSON body, asserting a 200.
pub fn get(url: &str) -> Value {
    let (status, body) = http_get(url).unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(status, 200, "GET {url}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn series(value: &Value) -> Vec<Option<f64>> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(Value::as_f64)
        .collect()
}

/// Compares every view the API at `api` serves (race standings, finals, leaderboard, every
/// racer's bests and trace, the history object through its presigned URL) with `oracle`.
/// Blocking: call it from a blocking thread.
pub fn assert_views(api: &str, oracle: &Oracle) {
    let (race_id, class) = (oracle.race_id, oracle.class_id);
    // Race standings.
    let view = get(&format!("{api}/races/{race_id}?classId={class}"));
    let standings: BTreeMap<u64, f64> = view["standings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["racerId"].as_u64().unwrap(),
                row["output"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(standings, oracle.standings, "race standings");
    // Finals.
    let view = get(&format!("{api}/races/{race_id}/finals?classId={class}"));
    let finals: BTreeMap<u64, (String, f64, u64)> = view["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["racerId"].as_u64().unwrap(),
                (
                    row["name"].as_str().unwrap().to_owned(),
                    row["output"].as_f64().unwrap(),
                    row["finishedAt"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(finals, oracle.finals, "finals");
    // Leaderboard, best first.
    let view = get(&format!("{api}/leaderboard?classId={class}&limit=100"));
    let rows: Vec<(u64, f64)> = view["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            assert_eq!(row["raceId"].as_u64(), Some(race_id));
            (
                row["racerId"].as_u64().unwrap(),
                row["best"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, oracle.leaderboard(), "leaderboard");
    // Every racer's bests and trace.
    for (racer, seconds) in &oracle.seconds {
        let bests = get(&format!("{api}/racers/{racer}/bests?classId={class}"));
        assert_eq!(
            series(&bests["seconds"]),
            *seconds,
            "bests of racer {racer}"
        );
        let trace = get(&format!(
            "{api}/racers/{racer}/races/{race_id}?classId={class}"
        ));
        assert_eq!(
            series(&trace["seconds"]),
            *seconds,
            "trace of racer {racer}"
        );
    }
    // The history object, through its presigned URL.
    let link = get(&format!("{api}/history/{class}"));
    let url = link["url"].as_str().unwrap();
    let (status, gzip) = http_get(url).unwrap();
    assert_eq!(status, 200, "GET {url}");
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&gzip[..])
        .read_to_end(&mut json)
        .unwrap();
    let history: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(history["classId"], class);
    assert_eq!(history["topK"], oracle.top_k);
    for second in 1..=oracle.seconds_per_race {
        let mut got: Vec<(u64, f64)> = history["seconds"][second.to_string()]
            .as_object()
            .unwrap_or_else(|| panic!("second {second} is missing"))
            .iter()
            .map(|(racer, output)| (racer.parse().unwrap(), output.as_f64().unwrap()))
            .collect();
        got.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        assert_eq!(
            got,
            oracle.top_k(second),
            "top {} at second {second}",
            oracle.top_k
        );
    }
}
