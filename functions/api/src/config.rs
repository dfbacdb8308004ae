//! What the API needs to run, read once at init.

use std::time::Duration;

use alleycat_domain::trust::DEFAULT_CLAIM_TTL_SECONDS;
use alleycat_domain::views::{ClientConfig, PUBLISH_TOPIC, Platform, SUBSCRIBE_TOPIC_PREFIX};
use alleycat_domain::{DEFAULT_TOP_K, RaceClock};
use alleycat_lambda::env::{Env, EnvError};
use aws_lambda_events::http::HeaderValue;

use crate::Error;

pub use alleycat_lambda::env::TABLE_NAME;
/// Environment variable of the bucket holding the class histories.
pub const HISTORY_BUCKET: &str = "HISTORY_BUCKET";
/// Environment variable of the platform the browser connects to: `aws` (default) or `local`.
pub const PLATFORM: &str = "PLATFORM";
/// Environment variable of the region, which Lambda sets; required on `aws`.
pub const AWS_REGION: &str = "AWS_REGION";
/// Environment variable of the Cognito identity pool of unauthenticated riders; required on `aws`.
pub const IDENTITY_POOL_ID: &str = "IDENTITY_POOL_ID";
/// Environment variable of the MQTT endpoint browsers connect to (the IoT endpoint host on AWS, a
/// `ws://` URL on the embedded stack).
pub const IOT_ENDPOINT: &str = "IOT_ENDPOINT";
/// Environment variable of the allowed CORS origin (default `*`).
pub const CORS_ALLOW_ORIGIN: &str = "CORS_ALLOW_ORIGIN";
/// Environment variable of how long a history URL works, in seconds (default 300).
pub const HISTORY_URL_TTL_SECONDS: &str = "HISTORY_URL_TTL_SECONDS";
/// Environment variable of K of the class histories, which the frontend shows (default 100).
pub const HISTORY_TOP_K: &str = "HISTORY_TOP_K";
/// How long a racer's claim lasts after its holder last claimed it, in seconds (default 86,400).
pub const CLAIM_TTL_SECONDS: &str = "CLAIM_TTL_SECONDS";

/// Default of [`HISTORY_URL_TTL_SECONDS`]: long enough to download a history, short enough that a
/// leaked URL soon stops working.
pub const DEFAULT_HISTORY_URL_TTL: Duration = Duration::from_secs(300);

/// The API's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The table, for the main's table adapter.
    pub table_name: String,
    /// The history bucket, for the main's bucket adapter.
    pub history_bucket: String,
    /// Where the browser connects: AWS IoT Core or the embedded stack's broker.
    pub platform: Platform,
    /// Region for signing (empty on the embedded stack).
    pub region: String,
    /// Cognito identity pool for unauthenticated credentials (empty on the embedded stack).
    pub identity_pool_id: String,
    /// MQTT over WebSocket endpoint.
    pub mqtt_endpoint: String,
    /// Decides whether a race is over, and tells the frontend the race length.
    pub clock: RaceClock,
    /// K of the class histories.
    pub top_k: u32,
    /// `Access-Control-Allow-Origin` of every response.
    pub cors_origin: HeaderValue,
    /// Lifetime of history URLs.
    pub history_url_ttl: Duration,
    /// How long a claim lasts unless renewed, in seconds.
    pub claim_ttl_seconds: u32,
}

impl Config {
    /// Reads the configuration through `lookup`, e.g.
    /// `Config::from_lookup(|name| std::env::var(name).ok())`.
    ///
    /// Required: `TABLE_NAME`, `HISTORY_BUCKET`, `IOT_ENDPOINT`, and on `PLATFORM=aws` (the
    /// default) `AWS_REGION` and `IDENTITY_POOL_ID`. Optional: `CORS_ALLOW_ORIGIN` (default `*`),
    /// `HISTORY_URL_TTL_SECONDS` (1–604,800, default 300), `HISTORY_TOP_K` (default 100),
    /// `RACE_SECONDS` and `WINDOW_SECONDS` (default 300), `CLAIM_TTL_SECONDS` (60–2,592,000,
    /// default 86,400). Errors name the variable at fault.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let env = Env::new(lookup);
        let platform = match env.optional(PLATFORM).as_deref().map(str::trim) {
            None | Some("aws") => Platform::Aws,
            Some("local") => Platform::Local,
            Some(other) => {
                return Err(EnvError::Invalid {
                    name: PLATFORM,
                    value: other.to_owned(),
                    reason: "must be aws or local".to_owned(),
                }
                .into());
            }
        };
        let on_aws = |name: &'static str| match platform {
            Platform::Aws => env.required(name),
            Platform::Local => Ok(env.optional(name).unwrap_or_default()),
        };
        let origin = env
            .optional(CORS_ALLOW_ORIGIN)
            .unwrap_or_else(|| "*".to_owned());
        let cors_origin =
            HeaderValue::from_str(origin.trim()).map_err(|error| EnvError::Invalid {
                name: CORS_ALLOW_ORIGIN,
                value: origin.clone(),
                reason: error.to_string(),
            })?;
        Ok(Self {
            table_name: env.required(TABLE_NAME)?,
            history_bucket: env.required(HISTORY_BUCKET)?,
            platform,
            region: on_aws(AWS_REGION)?,
            identity_pool_id: on_aws(IDENTITY_POOL_ID)?,
            mqtt_endpoint: env.required(IOT_ENDPOINT)?,
            clock: env.race_clock()?,
            top_k: env.number_or(HISTORY_TOP_K, DEFAULT_TOP_K, 0..=10_000)?,
            cors_origin,
            history_url_ttl: Duration::from_secs(env.number_or(
                HISTORY_URL_TTL_SECONDS,
                DEFAULT_HISTORY_URL_TTL.as_secs(),
                // S3 presigned URLs live at most 7 days.
                1..=604_800,
            )?),
            claim_ttl_seconds: env.number_or(
                CLAIM_TTL_SECONDS,
                DEFAULT_CLAIM_TTL_SECONDS,
                60..=2_592_000,
            )?,
        })
    }

    /// `GET /config`: everything the browser needs to connect and to draw races.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            platform: self.platform,
            region: self.region.clone(),
            identity_pool_id: self.identity_pool_id.clone(),
            mqtt_endpoint: self.mqtt_endpoint.clone(),
            publish_topic: PUBLISH_TOPIC.to_owned(),
            subscribe_topic_prefix: SUBSCRIBE_TOPIC_PREFIX.to_owned(),
            race_seconds: self.clock.race_seconds,
            window_seconds: self.clock.window_seconds,
            top_k: self.top_k,
        }
    }
}
