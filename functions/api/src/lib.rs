//! The HTTP API the browser reads: a class's latest races, one race's standings and final results,
//! the class leaderboard, a racer's bests and traces, a link to a class history, and the client
//! configuration; and claims: which identity holds which racer.
//!
//! One handler serves an HTTP API (payload v2) whether it is wired to `$default` or to explicit
//! routes: it routes on the request's method and raw path itself, through the small table in
//! [`Route::parse`]. Every response is JSON with the configured CORS origin; errors are
//! `{"error": "…"}` with 400 for bad parameters (naming the parameter), 404 for unknown routes and
//! ids, 405 for other methods than GET and OPTIONS (and POST and DELETE on a claim), 503 when the
//! store asks to retry and 500 otherwise.
//!
//! **Claims.** `POST /racers/{racerId}/claim` takes a racer for the caller (first claim wins; the
//! holder renews it by claiming again), `DELETE` releases it, `GET` says who holds it. The caller
//! is the identity API Gateway's authorizer established: on AWS the `sub` claim of the JWT
//! authorizer, which checks the rider's Cognito OpenID token (guest credentials cannot call
//! API Gateway with SigV4); `authorizer.iam.cognitoIdentity.identityId` is read too, which the
//! embedded stack's HTTP layer fills. Without one, a claim is 401; a
//! racer another identity holds is 409.
//!
//! **Ranks.** `GET /leaderboard` pages through the whole class: `limit` rows (1–100, default
//! 20) in `rank_leaderboard` order, each with its `place` (1 + rows with a strictly higher best),
//! and `next`, the opaque cursor of the following page (`cursor=`; `null` on the last page; a
//! forged or foreign cursor is a 400). `GET /racers/{racerId}/rank?classId=` answers a racer's
//! place and the class size from the rank counts in three table requests, whatever the class
//! size (`alleycat_ports::ranks`). `GET /history/{classId}` answers `url: null` while the class
//! has no history object, rather than a signed URL to nothing.

mod config;
mod cursor;
pub mod metric;
mod params;
#[cfg(feature = "testing")]
pub mod testing;

use alleycat_domain::views::{
    ApiError, ClaimView, FinalsView, HistoryLink, LeaderboardView, RaceList, RaceSummary, RaceView,
    RacerBestsView, RacerRankView, RacerTraceView, RankedEntry, history_key, rank,
};
use alleycat_domain::{Claim, RaceKey};
use alleycat_lambda::env::EnvError;
use alleycat_ports::claims::{Released, claim_of, release_claim, take_claim};
use alleycat_ports::{
    BestsKey, Claims, LeaderboardPage, ObjectStore, PortError, Queries, Ranks, RetryPolicy,
    TraceKey,
};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ALLOW, CONTENT_TYPE, RETRY_AFTER, VARY,
};
use aws_lambda_events::http::{HeaderValue, Method};
use serde::Serialize;

pub use config::{
    AWS_REGION, CLAIM_TTL_SECONDS, CORS_ALLOW_ORIGIN, Config, DEFAULT_HISTORY_URL_TTL,
    HISTORY_BUCKET, HISTORY_TOP_K, HISTORY_URL_TTL_SECONDS, IDENTITY_POOL_ID, IOT_ENDPOINT,
    PLATFORM, TABLE_NAME,
};
pub use params::{DEFAULT_LIMIT, MAX_LIMIT};

use cursor::Cursor;
use params::Query;

/// Methods the API answers.
const ALLOWED_METHODS: &str = "GET, OPTIONS";
/// Methods a claim answers.
const CLAIM_METHODS: &str = "GET, POST, DELETE, OPTIONS";
/// Headers a claim's preflight allows: the identity's token travels in `Authorization`.
const CLAIM_HEADERS: &str = "content-type, authorization";

/// Why a request (or the API's start) failed; each variant is one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is missing or invalid (the message names the variable).
    #[error(transparent)]
    Config(#[from] EnvError),
    /// A parameter is missing or invalid (the message names it): 400.
    #[error("{0}")]
    BadRequest(String),
    /// No such route, race, racer or series: 404.
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not with this method: 405.
    #[error("method {0} is not allowed; use GET")]
    MethodNotAllowed(Method),
    /// Claiming a racer needs an identity, and the request carried none: 401.
    #[error("claiming a racer needs an identity: sign the request")]
    Unauthorized,
    /// Another identity holds the racer: 409.
    #[error("racer {0} is held by another rider")]
    Taken(u32),
    /// The store is throttling or briefly failing; the client may retry: 503.
    #[error("the race data is temporarily unavailable; retry shortly")]
    Unavailable(#[source] PortError),
    /// Any other store failure (details are logged, not returned): 500.
    #[error("internal error")]
    Internal(#[source] PortError),
}

impl From<PortError> for Error {
    fn from(error: PortError) -> Self {
        if error.is_retryable() {
            Self::Unavailable(error)
        } else {
            Self::Internal(error)
        }
    }
}

impl Error {
    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::NotFound(_) => 404,
            Self::MethodNotAllowed(_) => 405,
            Self::Unauthorized => 401,
            Self::Taken(_) => 409,
            Self::Unavailable(_) => 503,
            Self::Config(_) | Self::Internal(_) => 500,
        }
    }
}

/// A route of the API, with its raw path parameters (validated by the route's answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'p> {
    /// `GET /races?classId=&limit=`
    Races,
    /// `GET /races/{raceId}?classId=`
    Race(&'p str),
    /// `GET /races/{raceId}/finals?classId=`
    RaceFinals(&'p str),
    /// `GET /leaderboard?classId=&limit=&cursor=`
    Leaderboard,
    /// `GET /racers/{racerId}/rank?classId=`
    RacerRank(&'p str),
    /// `GET /racers/{racerId}/bests?classId=`
    RacerBests(&'p str),
    /// `GET /racers/{racerId}/races/{raceId}?classId=`
    RacerTrace(&'p str, &'p str),
    /// `GET /history/{classId}`
    History(&'p str),
    /// `GET /config`
    Config,
    /// `GET`, `POST`, `DELETE /racers/{racerId}/claim`
    Claim(&'p str),
}

impl<'p> Route<'p> {
    /// The route of a path (without stage prefix); `None` for unknown paths. Empty segments are
    /// ignored, so a trailing slash does not matter.
    pub fn parse(path: &'p str) -> Option<Self> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        Some(match segments.as_slice() {
            ["races"] => Self::Races,
            ["races", race] => Self::Race(race),
            ["races", race, "finals"] => Self::RaceFinals(race),
            ["leaderboard"] => Self::Leaderboard,
            ["racers", racer, "bests"] => Self::RacerBests(racer),
            ["racers", racer, "rank"] => Self::RacerRank(racer),
            ["racers", racer, "races", race] => Self::RacerTrace(racer, race),
            ["history", class] => Self::History(class),
            ["config"] => Self::Config,
            ["racers", racer, "claim"] => Self::Claim(racer),
            _ => return None,
        })
    }
}

/// Milliseconds since the epoch, for [`handle`]'s `now_ms` (tests pass a fixed time instead).
pub use alleycat_lambda::now_ms;

/// Answers one HTTP API (payload v2) request. Never fails: every error is an HTTP response.
///
/// `now_ms` decides which races are over and when history links expire; pass [`now_ms`]`()`.
#[tracing::instrument(skip_all, fields(method = %request.request_context.http.method, path = request.raw_path.as_deref()))]
pub async fn handle<Q: Queries + Ranks + Claims, O: ObjectStore>(
    request: ApiGatewayV2httpRequest,
    table: &Q,
    history: &O,
    config: &Config,
    now_ms: u64,
) -> ApiGatewayV2httpResponse {
    let path = request_path(&request);
    let Some(route) = Route::parse(path) else {
        return error_response(&Error::NotFound(format!("no route {path}")), config);
    };
    let method = &request.request_context.http.method;
    if method == Method::OPTIONS {
        return preflight(route, config);
    }
    if let Route::Claim(racer) = route
        && method != Method::GET
    {
        let identity = caller_identity(&request);
        return match claim(method, racer, identity, table, config, now_ms).await {
            Ok(Some(body)) => response(200, Some(body), config),
            Ok(None) => response(204, None, config),
            Err(error) => error_response(&error, config),
        };
    }
    if method != Method::GET {
        let mut response = error_response(&Error::MethodNotAllowed(method.clone()), config);
        response
            .headers
            .insert(ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
        return response;
    }
    let query = Query(&request.query_string_parameters);
    let identity = caller_identity(&request);
    match answer(route, &query, identity, table, history, config, now_ms).await {
        Ok(body) => response(200, Some(body), config),
        Err(error) => error_response(&error, config),
    }
}

/// The identity API Gateway's authorizer established for the request, if any: a Cognito
/// identity (AWS_IAM authorizer), or a JWT's subject (JWT authorizer).
pub fn caller_identity(request: &ApiGatewayV2httpRequest) -> Option<&str> {
    let authorizer = request.request_context.authorizer.as_ref()?;
    let cognito = authorizer
        .iam
        .as_ref()
        .and_then(|iam| iam.cognito_identity.as_ref())
        .and_then(|cognito| cognito.identity_id.as_deref());
    let jwt = || {
        authorizer
            .jwt
            .as_ref()
            .and_then(|jwt| jwt.claims.get("sub"))
            .map(String::as_str)
    };
    cognito.or_else(jwt).filter(|id| !id.is_empty())
}

/// `POST` (take or renew) or `DELETE` (release) a racer's claim: the body to answer, if any.
async fn claim<C: Claims>(
    method: &Method,
    racer: &str,
    identity: Option<&str>,
    claims: &C,
    config: &Config,
    now_ms: u64,
) -> Result<Option<String>, Error> {
    let racer_id = params::racer_id(racer)?;
    if *method != Method::POST && *method != Method::DELETE {
        return Err(Error::MethodNotAllowed(method.clone()));
    }
    let identity = identity.ok_or(Error::Unauthorized)?;
    let policy = RetryPolicy::default();
    if *method == Method::POST {
        let ttl = config.claim_ttl_seconds;
        let claim = take_claim(claims, racer_id, identity, now_ms, ttl, &policy)
            .await
            .map_err(|error| Error::from(error.last))?
            .map_err(|taken| Error::Taken(taken.racer_id))?;
        return Ok(Some(json(&claim_view(
            racer_id,
            Some(&claim),
            Some(identity),
            now_ms,
        ))));
    }
    match release_claim(claims, racer_id, identity, now_ms, &policy)
        .await
        .map_err(|error| Error::from(error.last))?
    {
        Released::Released | Released::NotHeld => Ok(None),
        Released::HeldByAnother(taken) => Err(Error::Taken(taken.racer_id)),
    }
}

/// How `caller` sees `racer_id`'s stored claim at `now_ms`.
fn claim_view(
    racer_id: u32,
    claim: Option<&Claim>,
    caller: Option<&str>,
    now_ms: u64,
) -> ClaimView {
    let live = claim.filter(|claim| claim.is_live_at(now_ms));
    let mine = live.is_some_and(|claim| Some(claim.identity_id.as_str()) == caller);
    ClaimView {
        racer_id,
        held: live.is_some(),
        mine,
        identity_id: live.filter(|_| mine).map(|claim| claim.identity_id.clone()),
        expires_at: live.map(|claim| claim.expires_at),
    }
}

/// The path to route: the raw path, less the stage name that HTTP APIs put in front of it on
/// named stages (`/prod/races` on stage `prod`).
fn request_path(request: &ApiGatewayV2httpRequest) -> &str {
    let path = request
        .raw_path
        .as_deref()
        .or(request.request_context.http.path.as_deref())
        .unwrap_or("/");
    match request.request_context.stage.as_deref() {
        Some(stage) if stage != "$default" => path
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(stage))
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
            .unwrap_or(path),
        _ => path,
    }
}

/// The JSON body of a GET on `route`.
async fn answer<Q: Queries + Ranks + Claims, O: ObjectStore>(
    route: Route<'_>,
    query: &Query<'_>,
    caller: Option<&str>,
    table: &Q,
    history: &O,
    config: &Config,
    now_ms: u64,
) -> Result<String, Error> {
    let over = |race_id| config.clock.is_over(race_id, now_ms);
    match route {
        Route::Races => {
            let class_id = query.class_id()?;
            let races = table.latest_races(class_id, query.limit()?).await?;
            let races = races
                .into_iter()
                .map(|stored| RaceSummary {
                    race_id: stored.race.race_id,
                    racers: stored.standings.len(),
                    leader: rank(&stored.standings).into_iter().next(),
                    updated_at: stored.updated_at,
                    over: over(stored.race.race_id),
                })
                .collect();
            Ok(json(&RaceList { class_id, races }))
        }
        Route::Race(race) => {
            let race = query.race(race)?;
            let stored = table
                .standings(race)
                .await?
                .ok_or_else(|| race_not_found(race))?;
            Ok(json(&RaceView::new(
                race.class_id,
                race.race_id,
                &stored.standings,
                stored.updated_at,
                over(race.race_id),
            )))
        }
        Route::RaceFinals(race) => {
            let race = query.race(race)?;
            let finals = table.finals(race).await?;
            // No finals yet is normal while a race runs; only a race that never was is unknown.
            if finals.is_empty() && table.standings(race).await?.is_none() {
                return Err(race_not_found(race));
            }
            Ok(json(&FinalsView::new(race, over(race.race_id), finals)))
        }
        Route::Leaderboard => leaderboard(query, table).await,
        Route::RacerRank(racer) => racer_rank(racer, query, table).await,
        Route::RacerBests(racer) => {
            let key = BestsKey {
                racer_id: params::racer_id(racer)?,
                class_id: query.class_id()?,
            };
            let seconds = table.bests(key).await?.ok_or_else(|| {
                Error::NotFound(format!(
                    "no bests of racer {} in class {}",
                    key.racer_id, key.class_id
                ))
            })?;
            Ok(json(&RacerBestsView {
                racer_id: key.racer_id,
                class_id: key.class_id,
                seconds,
            }))
        }
        Route::RacerTrace(racer, race) => {
            let key = TraceKey {
                racer_id: params::racer_id(racer)?,
                race: query.race(race)?,
            };
            let seconds = table.trace(key).await?.ok_or_else(|| {
                Error::NotFound(format!(
                    "no trace of racer {} in race {} of class {}",
                    key.racer_id, key.race.race_id, key.race.class_id
                ))
            })?;
            Ok(json(&RacerTraceView {
                racer_id: key.racer_id,
                class_id: key.race.class_id,
                race_id: key.race.race_id,
                seconds,
            }))
        }
        Route::History(class) => history_link(class, history, config, now_ms).await,
        Route::Config => Ok(json(&config.client_config())),
        Route::Claim(racer) => {
            let racer_id = params::racer_id(racer)?;
            let stored = claim_of(table, racer_id).await?;
            Ok(json(&claim_view(racer_id, stored.as_ref(), caller, now_ms)))
        }
    }
}

/// `GET /history/{classId}`: a presigned URL of the class history, or none while the class
/// has no history object (no race merged into it yet): the browser would fetch a signed URL to
/// nothing only to get a 404.
async fn history_link<O: ObjectStore>(
    class: &str,
    history: &O,
    config: &Config,
    now_ms: u64,
) -> Result<String, Error> {
    let class_id = params::class_id(class)?;
    let key = history_key(class_id);
    if !history.exists(&key).await? {
        return Ok(json(&HistoryLink {
            class_id,
            url: None,
            expires_at: None,
        }));
    }
    let ttl = config.history_url_ttl;
    let url = history.presign_get(&key, ttl).await?;
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    Ok(json(&HistoryLink {
        class_id,
        url: Some(url),
        expires_at: Some(now_ms.saturating_add(ttl_ms)),
    }))
}

/// `GET /leaderboard`: one page after the cursor, if any.
async fn leaderboard<R: Ranks>(query: &Query<'_>, table: &R) -> Result<String, Error> {
    let class_id = query.class_id()?;
    let limit = query.limit()?;
    let cursor = query
        .cursor()?
        .map(|text| Cursor::decode(text, class_id))
        .transpose()?;
    let page = table
        .leaderboard_page(class_id, cursor.as_ref().map(|c| &c.after), limit)
        .await?;
    Ok(json(&leaderboard_view(class_id, cursor.as_ref(), page)))
}

/// `GET /racers/{racerId}/rank`: the racer's place and the class size.
async fn racer_rank<R: Ranks>(racer: &str, query: &Query<'_>, table: &R) -> Result<String, Error> {
    let racer_id = params::racer_id(racer)?;
    let class_id = query.class_id()?;
    let rank = table.rank(class_id, racer_id).await?.ok_or_else(|| {
        Error::NotFound(format!(
            "racer {racer_id} has no leaderboard row in class {class_id}"
        ))
    })?;
    Ok(json(&RacerRankView {
        class_id,
        racer_id,
        place: rank.place,
        of: rank.of,
        best: rank.entry.best,
        race_id: rank.entry.race_id,
    }))
}

/// A page with places (continuing the previous page's, which `cursor` carries) and the cursor
/// of the next page.
fn leaderboard_view(
    class_id: u8,
    cursor: Option<&Cursor>,
    page: LeaderboardPage,
) -> LeaderboardView {
    let mut rows = cursor.map_or(0, |c| c.rows);
    let mut last = cursor.map(|c| (c.after.best, c.place));
    let entries: Vec<RankedEntry> = page
        .entries
        .into_iter()
        .map(|entry| {
            rows += 1;
            let place = match last {
                Some((best, place)) if best == entry.best => place,
                _ => rows,
            };
            last = Some((entry.best, place));
            RankedEntry { place, entry }
        })
        .collect();
    let next = match (page.more, entries.last()) {
        (true, Some(last)) => Some(
            Cursor {
                after: last.entry.clone(),
                rows,
                place: last.place,
            }
            .encode(class_id),
        ),
        _ => None,
    };
    LeaderboardView {
        class_id,
        entries,
        next,
    }
}

fn race_not_found(race: RaceKey) -> Error {
    Error::NotFound(format!(
        "no race {} in class {}",
        race.race_id, race.class_id
    ))
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("API views always serialize")
}

/// A response with the CORS origin, and the JSON body if any.
fn response(status: u16, body: Option<String>, config: &Config) -> ApiGatewayV2httpResponse {
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status);
    response
        .headers
        .insert(ACCESS_CONTROL_ALLOW_ORIGIN, config.cors_origin.clone());
    if config.cors_origin != "*" {
        // Caches must not serve one origin's answer to another.
        response
            .headers
            .insert(VARY, HeaderValue::from_static("Origin"));
    }
    if let Some(body) = body {
        response
            .headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response.body = Some(Body::Text(body));
    }
    response
}

fn error_response(error: &Error, config: &Config) -> ApiGatewayV2httpResponse {
    let status = error.status();
    if status >= 500 {
        let source = std::error::Error::source(error).map(ToString::to_string);
        tracing::error!(status, %error, source, "request failed");
    } else {
        tracing::info!(status, %error, "request refused");
    }
    let body = serde_json::to_string(&ApiError {
        error: error.to_string(),
    })
    .expect("an error body always serializes");
    let mut response = response(status, Some(body), config);
    if status == 503 {
        response
            .headers
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// The answer to a CORS preflight: 204 with what the browser may send (a claim also takes POST
/// and DELETE, signed).
fn preflight(route: Route<'_>, config: &Config) -> ApiGatewayV2httpResponse {
    let (methods, allowed_headers) = match route {
        Route::Claim(_) => (CLAIM_METHODS, CLAIM_HEADERS),
        _ => (ALLOWED_METHODS, "content-type"),
    };
    let mut response = response(204, None, config);
    let headers = &mut response.headers;
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    headers.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(allowed_headers),
    );
    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    response
}

/// The API with its table and history bucket bound: what the Lambda main serves and the embedded
/// stack calls.
pub struct Api<Q, O> {
    /// The table's read side, and its claims.
    pub table: Q,
    /// The history bucket, for presigned URLs.
    pub history: O,
    /// Names, CORS origin, client configuration.
    pub config: Config,
}

impl<Q: Queries + Ranks + Claims, O: ObjectStore> alleycat_lambda::Function for Api<Q, O> {
    const NAME: &'static str = "api";
    type Event = ApiGatewayV2httpRequest;
    type Response = ApiGatewayV2httpResponse;
    type Error = std::convert::Infallible;

    /// Counts `Requests`, `ClientErrors` (4xx) and `ServerErrors` (5xx), so the dashboard and
    /// alarms see the API's health without parsing access logs.
    async fn handle(
        &self,
        request: ApiGatewayV2httpRequest,
        metrics: &mut alleycat_lambda::Metrics,
    ) -> Result<ApiGatewayV2httpResponse, Self::Error> {
        let response = handle(request, &self.table, &self.history, &self.config, now_ms()).await;
        let status = response.status_code;
        metrics.incr(metric::REQUESTS);
        metrics.add(
            metric::CLIENT_ERRORS,
            u64::from((400..500).contains(&status)),
        );
        metrics.add(metric::SERVER_ERRORS, u64::from(status >= 500));
        Ok(response)
    }
}
