//! Wire shapes shared by the functions, the embedded stack, the frontend and tests: the API
//! responses and the MQTT topics (the realtime message itself is [`crate::live`]).

use serde::{Deserialize, Serialize};

use crate::leaderboard::{LeaderboardEntry, RacerFinal};
use crate::output::Output;
use crate::race::RaceKey;
use crate::series::SecondSeries;
use crate::standings::Standings;

pub use crate::live::{RealtimeKind, RealtimeMessage};

/// Topic bikes publish their messages to.
pub const PUBLISH_TOPIC: &str = "alleycat-publish";
/// Prefix of the per-class topics live standings are pushed to.
pub const SUBSCRIBE_TOPIC_PREFIX: &str = "alleycat-subscribe/";

/// The topic a class's live standings are pushed to: `alleycat-subscribe/class-<c>`.
pub fn subscribe_topic(class_id: u8) -> String {
    format!("{SUBSCRIBE_TOPIC_PREFIX}class-{class_id}")
}

/// The history object key of a class: `class-<c>.json.gz`.
pub fn history_key(class_id: u8) -> String {
    format!("class-{class_id}.json.gz")
}

/// One race in a list of a class's latest races.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RaceSummary {
    /// The race.
    pub race_id: u64,
    /// Racers with data.
    pub racers: usize,
    /// The leading racer and their best, if any.
    pub leader: Option<RankedOutput>,
    /// Last change, epoch milliseconds.
    pub updated_at: u64,
    /// Whether the race can receive no more data.
    pub over: bool,
}

/// `GET /races?classId=&limit=`: a class's latest races, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RaceList {
    /// The class.
    pub class_id: u8,
    /// Newest first.
    pub races: Vec<RaceSummary>,
}

/// A racer's place in a ranking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RankedOutput {
    /// 1-based rank.
    pub rank: usize,
    /// The racer.
    pub racer_id: u32,
    /// Their best output.
    pub output: Output,
}

/// `GET /races/{raceId}`: one race's standings, ranked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RaceView {
    /// The class.
    pub class_id: u8,
    /// The race.
    pub race_id: u64,
    /// Last change, epoch milliseconds.
    pub updated_at: u64,
    /// Whether these are final results.
    pub over: bool,
    /// Best first.
    pub standings: Vec<RankedOutput>,
}

impl RaceView {
    /// Ranks `standings` (best first, ties by racer id).
    pub fn new(
        class_id: u8,
        race_id: u64,
        standings: &Standings,
        updated_at: u64,
        over: bool,
    ) -> Self {
        Self {
            class_id,
            race_id,
            updated_at,
            over,
            standings: rank(standings),
        }
    }
}

/// Ranks standings, best first, ties by racer id.
pub fn rank(standings: &Standings) -> Vec<RankedOutput> {
    standings
        .ranked()
        .into_iter()
        .enumerate()
        .map(|(i, (racer_id, output))| RankedOutput {
            rank: i + 1,
            racer_id,
            output,
        })
        .collect()
}

/// `GET /races/{raceId}/finals?classId=`: the racers who finished a race, best first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalsView {
    /// The class.
    pub class_id: u8,
    /// The race.
    pub race_id: u64,
    /// Whether the race can receive no more finals.
    pub over: bool,
    /// Best final output first, ties by racer id.
    pub results: Vec<RankedFinal>,
}

/// One racer's final result, ranked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RankedFinal {
    /// 1-based rank.
    pub rank: usize,
    /// The racer.
    pub racer_id: u32,
    /// The racer's name as the device sent it.
    pub name: String,
    /// Output of the final second.
    pub output: Output,
    /// Device time of the final second, epoch milliseconds.
    pub finished_at: u64,
}

impl FinalsView {
    /// Ranks a race's finals: best output first, ties by racer id (the standings' order).
    pub fn new(race: RaceKey, over: bool, mut finals: Vec<RacerFinal>) -> Self {
        finals.sort_unstable_by(|a, b| b.output.cmp(&a.output).then(a.racer_id.cmp(&b.racer_id)));
        Self {
            class_id: race.class_id,
            race_id: race.race_id,
            over,
            results: finals
                .into_iter()
                .enumerate()
                .map(|(i, f)| RankedFinal {
                    rank: i + 1,
                    racer_id: f.racer_id,
                    name: f.name,
                    output: f.output,
                    finished_at: f.finished_at,
                })
                .collect(),
        }
    }
}

/// `GET /leaderboard?classId=&limit=&cursor=`: one page of the class leaderboard, best first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderboardView {
    /// The class.
    pub class_id: u8,
    /// Best first, in [`crate::leaderboard::rank_leaderboard`] order.
    pub entries: Vec<RankedEntry>,
    /// The cursor of the next page; `null` on the last.
    pub next: Option<String>,
}

/// A leaderboard row with its place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RankedEntry {
    /// 1 + the number of rows with a strictly higher best (equal bests share a place).
    pub place: u64,
    /// The row.
    #[serde(flatten)]
    pub entry: LeaderboardEntry,
}

/// `GET /racers/{racerId}/rank?classId=`: a racer's place on the class leaderboard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RacerRankView {
    /// The class.
    pub class_id: u8,
    /// The racer.
    pub racer_id: u32,
    /// 1 + the number of rows with a strictly higher best.
    pub place: u64,
    /// Rows on the class leaderboard.
    pub of: u64,
    /// The racer's best.
    pub best: Output,
    /// The race that set it.
    pub race_id: u64,
}

/// `GET /racers/{racerId}/bests?classId=`: the racer's personal-record curve in a class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RacerBestsView {
    /// The racer.
    pub racer_id: u32,
    /// The class.
    pub class_id: u8,
    /// Best output at each second, from second 1; `null` where never ridden.
    pub seconds: SecondSeries,
}

/// `GET /racers/{racerId}/races/{raceId}`: the racer's output at each second of one race.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RacerTraceView {
    /// The racer.
    pub racer_id: u32,
    /// The class.
    pub class_id: u8,
    /// The race.
    pub race_id: u64,
    /// Output at each second, from second 1.
    pub seconds: SecondSeries,
}

/// `GET /history/{classId}`: where to fetch the class history object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryLink {
    /// The class.
    pub class_id: u8,
    /// A short-lived URL of the gzip object; `null` while the class has no history.
    pub url: Option<String>,
    /// When the URL stops working, epoch milliseconds; `null` without a URL.
    pub expires_at: Option<u64>,
}

/// Where the deployment runs, which decides how the browser connects to MQTT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// AWS IoT Core over SigV4-signed WSS with Cognito credentials.
    Aws,
    /// The embedded stack's plain WebSocket broker.
    Local,
}

/// `GET /config`: everything the browser needs, so the frontend is configured by one API URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientConfig {
    /// AWS or the embedded stack.
    pub platform: Platform,
    /// AWS region (for signing); empty on the embedded stack.
    pub region: String,
    /// Cognito identity pool for unauthenticated credentials; empty on the embedded stack.
    pub identity_pool_id: String,
    /// MQTT over WebSocket endpoint: the IoT endpoint host on AWS, a `ws://` URL locally.
    pub mqtt_endpoint: String,
    /// Topic bikes publish to.
    pub publish_topic: String,
    /// Prefix of the per-class standings topics.
    pub subscribe_topic_prefix: String,
    /// Race length, seconds.
    pub race_seconds: u16,
    /// Race start window, seconds.
    pub window_seconds: u32,
    /// K of the class histories.
    pub top_k: u32,
}

/// A racer's claim as the API shows it (`GET`/`POST /racers/{racerId}/claim`): whether someone
/// holds the racer, whether it is the caller, and until when. The holder's identity is shown
/// only to the holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimView {
    /// The racer.
    pub racer_id: u32,
    /// Whether an identity holds it now.
    pub held: bool,
    /// Whether the caller holds it.
    pub mine: bool,
    /// The caller's identity, when the caller holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_id: Option<String>,
    /// When the claim lapses unless renewed, epoch milliseconds; `null` when nobody holds it.
    pub expires_at: Option<u64>,
}

/// Body of every API error: `{"error": "…"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What was wrong, for humans.
    pub error: String,
}
