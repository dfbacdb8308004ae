//! The API end to end on an in-memory table and bucket: every route, every refusal, CORS.

use std::time::Duration;

use alleycat_domain::views::Platform;
use alleycat_domain::{
    LeaderboardEntry, Output, RaceClock, RaceKey, RacerFinal, SecondSeries, Standings,
};
use alleycat_ports::memory::{MemoryObjects, MemoryTable};
use alleycat_ports::{BestsKey, Finals, MergeStore, PortError, TraceKey};
use api::{Config, handle};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::http::HeaderValue;
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A request path, its query, and the expected error message.
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

const FIXTURE: &[u8] = include_bytes!("../../../fixtures/events/http-api.json");

/// Race 100 is over at this time, race 101 (which opened at 30,300,000) is still running.
const NOW: u64 = 30_700_000;

fn config() -> Config {
    Config {
        table_name: "alleycat-races".to_owned(),
        history_bucket: "alleycat-history".to_owned(),
        platform: Platform::Aws,
        region: "us-east-1".to_owned(),
        identity_pool_id: "us-east-1:1f0a6a4e-0000-4000-8000-123456789012".to_owned(),
        mqtt_endpoint: "a1b2c3-ats.iot.us-east-1.amazonaws.com".to_owned(),
        clock: RaceClock::default(),
        top_k: 100,
        cors_origin: HeaderValue::from_static("*"),
        history_url_ttl: Duration::from_secs(300),
        claim_ttl_seconds: 86_400,
    }
}

fn output(text: &str) -> Output {
    Output::from_f64(text.parse().unwrap()).unwrap()
}

fn race(class_id: u8, race_id: u64) -> RaceKey {
    RaceKey { class_id, race_id }
}

/// An HTTP API payload v2 request on the `$default` route and stage, as API Gateway sends it.
fn request(method: &str, path: &str, query: &[(&str, &str)]) -> ApiGatewayV2httpRequest {
    request_on_stage(method, path, query, "$default")
}

fn request_on_stage(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    stage: &str,
) -> ApiGatewayV2httpRequest {
    let raw_query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    // API Gateway joins a repeated parameter's values with commas.
    let mut parameters = serde_json::Map::new();
    for (name, value) in query {
        match parameters.get_mut(*name) {
            Some(Value::String(joined)) => {
                joined.push(',');
                joined.push_str(value);
            }
            _ => {
                parameters.insert((*name).to_owned(), json!(value));
            }
        }
    }
    let mut request = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query.join("&"),
        "headers": {"accept": "application/json", "host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "test"},
            "requestId": "BcNk5gWoIAMEJxw=",
            "routeKey": "$default",
            "stage": stage,
            "time": "21/Nov/2026:10:05:07 +0000",
            "timeEpoch": 1_795_255_507_123_u64
        },
        "isBase64Encoded": false
    });
    if !parameters.is_empty() {
        request["queryStringParameters"] = Value::Object(parameters);
    }
    serde_json::from_value(request).expect("a valid HTTP API request")
}

/// Class 3 races 100 (over) and 101 (running), class 2 race 100; finals, leaderboard, bests and
/// a trace of racer 8.
async fn seeded_table() -> Result<MemoryTable, PortError> {
    let table = MemoryTable::new();
    let standings = |results: &[(u32, &str)]| -> Standings {
        results.iter().map(|(r, o)| (*r, output(o))).collect()
    };
    table
        .store(
            &race(3, 100),
            &standings(&[(8, "151.788"), (12, "140.25"), (31, "151.788")]),
            None,
        )
        .await?;
    table
        .store(&race(3, 101), &standings(&[(31, "98.5")]), None)
        .await?;
    table
        .store(&race(2, 100), &standings(&[(5, "120")]), None)
        .await?;
    for (racer_id, name, out) in [(12, "Bo", "140.25"), (8, "Adell", "151.788")] {
        table
            .put_final(&RacerFinal {
                class_id: 3,
                race_id: 100,
                racer_id,
                name: name.to_owned(),
                output: output(out),
                finished_at: 30_000_000 + u64::from(racer_id),
            })
            .await?;
    }
    // Rows with their rank counts, as the leaderboard writer writes them.
    let rows: Vec<LeaderboardEntry> = [
        (8, "Adell", "151.788"),
        (12, "Bo", "140.25"),
        (40, "Cy", "160"),
    ]
    .into_iter()
    .map(|(racer_id, name, best)| LeaderboardEntry {
        racer_id,
        name: name.to_owned(),
        best: output(best),
        race_id: 100,
        updated_at: 30_000_000,
    })
    .collect();
    api::testing::seed(&table, 3, &rows).await;
    let series: SecondSeries = [(1, output("100.5")), (3, output("120"))]
        .into_iter()
        .collect();
    table
        .store(
            &BestsKey {
                racer_id: 8,
                class_id: 3,
            },
            &series,
            None,
        )
        .await?;
    table
        .store(
            &TraceKey {
                racer_id: 8,
                race: race(3, 100),
            },
            &series,
            None,
        )
        .await?;
    Ok(table)
}

async fn get(table: &MemoryTable, path: &str, query: &[(&str, &str)]) -> ApiGatewayV2httpResponse {
    handle(
        request("GET", path, query),
        table,
        &MemoryObjects::new(),
        &config(),
        NOW,
    )
    .await
}

fn body(response: &ApiGatewayV2httpResponse) -> Value {
    match &response.body {
        Some(Body::Text(text)) => serde_json::from_str(text).expect("a JSON body"),
        other => panic!("expected a text body, got {other:?}"),
    }
}

fn header<'r>(response: &'r ApiGatewayV2httpResponse, name: &str) -> Option<&'r str> {
    response.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Status and body, checking the headers every JSON response carries.
fn json_of(response: &ApiGatewayV2httpResponse) -> (i64, Value) {
    assert_eq!(header(response, "content-type"), Some("application/json"));
    assert_eq!(header(response, "access-control-allow-origin"), Some("*"));
    (response.status_code, body(response))
}

#[tokio::test]
async fn fixture_leaderboard_request_end_to_end() -> TestResult {
    let request: ApiGatewayV2httpRequest = serde_json::from_slice(FIXTURE)?;
    let table = seeded_table().await?;
    let response = handle(request, &table, &MemoryObjects::new(), &config(), NOW).await;
    let (status, body) = json_of(&response);
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"classId": 3, "entries": [
            {"place": 1, "racerId": 40, "name": "Cy", "best": 160.0, "raceId": 100, "updatedAt": 30_000_000},
            {"place": 2, "racerId": 8, "name": "Adell", "best": 151.788, "raceId": 100, "updatedAt": 30_000_000},
            {"place": 3, "racerId": 12, "name": "Bo", "best": 140.25, "raceId": 100, "updatedAt": 30_000_000}
        ], "next": null})
    );
    // What API Gateway reads back.
    let wire = serde_json::to_value(&response)?;
    assert_eq!(wire["statusCode"], 200);
    assert_eq!(wire["isBase64Encoded"], false);
    Ok(())
}

#[tokio::test]
async fn leaderboard_honours_limit() -> TestResult {
    let table = seeded_table().await?;
    let (status, body) =
        json_of(&get(&table, "/leaderboard", &[("classId", "3"), ("limit", "2")]).await);
    assert_eq!(status, 200);
    assert_eq!(body["entries"].as_array().map(Vec::len), Some(2));
    let (_, empty) = json_of(&get(&table, "/leaderboard", &[("classId", "6")]).await);
    assert_eq!(empty, json!({"classId": 6, "entries": [], "next": null}));
    Ok(())
}

#[tokio::test]
async fn leaderboard_pages_carry_places_and_a_cursor() -> TestResult {
    let table = seeded_table().await?;
    let (_, first) =
        json_of(&get(&table, "/leaderboard", &[("classId", "3"), ("limit", "2")]).await);
    let next = first["next"].as_str().ok_or("a cursor")?;
    let (status, second) = json_of(
        &get(
            &table,
            "/leaderboard",
            &[("classId", "3"), ("limit", "2"), ("cursor", next)],
        )
        .await,
    );
    assert_eq!(status, 200);
    assert_eq!(
        second,
        json!({"classId": 3, "entries": [
            {"place": 3, "racerId": 12, "name": "Bo", "best": 140.25, "raceId": 100, "updatedAt": 30_000_000}
        ], "next": null})
    );
    for (cursor, class) in [(next, "2"), ("forged", "3"), ("", "3")] {
        let (status, body) = json_of(
            &get(
                &table,
                "/leaderboard",
                &[("classId", class), ("cursor", cursor)],
            )
            .await,
        );
        assert_eq!(status, 400, "cursor {cursor:?} of class {class}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("cursor"))
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_racers_rank_is_its_place_among_the_class() -> TestResult {
    let table = seeded_table().await?;
    let (status, body) = json_of(&get(&table, "/racers/8/rank", &[("classId", "3")]).await);
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"classId": 3, "racerId": 8, "place": 2, "of": 3, "best": 151.788, "raceId": 100})
    );
    let (status, body) = json_of(&get(&table, "/racers/8/rank", &[("classId", "2")]).await);
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"error": "racer 8 has no leaderboard row in class 2"})
    );
    let (status, _) = json_of(&get(&table, "/racers/8/rank", &[]).await);
    assert_eq!(status, 400, "classId is required");
    Ok(())
}

#[tokio::test]
async fn a_class_without_history_gets_no_url() -> TestResult {
    let (status, body) = json_of(&get(&MemoryTable::new(), "/history/5", &[]).await);
    assert_eq!(status, 200);
    assert_eq!(body, json!({"classId": 5, "url": null, "expiresAt": null}));
    Ok(())
}

#[tokio::test]
async fn races_lists_a_class_newest_first_with_leaders_and_over_flags() -> TestResult {
    let table = seeded_table().await?;
    let (status, body) = json_of(&get(&table, "/races", &[("classId", "3")]).await);
    assert_eq!(status, 200);
    assert_eq!(body["classId"], 3);
    let races = body["races"].as_array().expect("races");
    assert_eq!(races.len(), 2);
    assert_eq!(races[0]["raceId"], 101);
    assert_eq!(races[0]["over"], false);
    assert_eq!(races[0]["racers"], 1);
    assert_eq!(races[1]["raceId"], 100);
    assert_eq!(races[1]["over"], true);
    // Racers 8 and 31 tie; the lower id leads.
    assert_eq!(
        races[1]["leader"],
        json!({"rank": 1, "racerId": 8, "output": 151.788})
    );
    assert!(races[1]["updatedAt"].is_u64());

    let (_, limited) = json_of(&get(&table, "/races", &[("classId", "3"), ("limit", "1")]).await);
    assert_eq!(limited["races"].as_array().map(Vec::len), Some(1));
    Ok(())
}

#[tokio::test]
async fn race_view_ranks_the_standings_of_one_class() -> TestResult {
    let table = seeded_table().await?;
    let (status, body) = json_of(&get(&table, "/races/100", &[("classId", "3")]).await);
    assert_eq!(status, 200);
    assert_eq!(body["classId"], 3);
    assert_eq!(body["raceId"], 100);
    assert_eq!(body["over"], true);
    assert_eq!(
        body["standings"],
        json!([
            {"rank": 1, "racerId": 8, "output": 151.788},
            {"rank": 2, "racerId": 31, "output": 151.788},
            {"rank": 3, "racerId": 12, "output": 140.25}
        ])
    );
    // Same race id, another class: another race.
    let (_, class2) = json_of(&get(&table, "/races/100", &[("classId", "2")]).await);
    assert_eq!(
        class2["standings"],
        json!([{"rank": 1, "racerId": 5, "output": 120.0}])
    );
    Ok(())
}

#[tokio::test]
async fn finals_are_ranked_and_a_running_race_has_none_yet() -> TestResult {
    let table = seeded_table().await?;
    let (status, body) = json_of(&get(&table, "/races/100/finals", &[("classId", "3")]).await);
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"classId": 3, "raceId": 100, "over": true, "results": [
            {"rank": 1, "racerId": 8, "name": "Adell", "output": 151.788, "finishedAt": 30_000_008},
            {"rank": 2, "racerId": 12, "name": "Bo", "output": 140.25, "finishedAt": 30_000_012}
        ]})
    );
    let (status, running) = json_of(&get(&table, "/races/101/finals", &[("classId", "3")]).await);
    assert_eq!(status, 200);
    assert_eq!(running["results"], json!([]));
    assert_eq!(running["over"], false);
    Ok(())
}

#[tokio::test]
async fn racer_bests_and_trace_are_second_series() -> TestResult {
    let table = seeded_table().await?;
    let (status, bests) = json_of(&get(&table, "/racers/8/bests", &[("classId", "3")]).await);
    assert_eq!(status, 200);
    assert_eq!(
        bests,
        json!({"racerId": 8, "classId": 3, "seconds": [100.5, null, 120.0]})
    );
    let (status, trace) = json_of(&get(&table, "/racers/8/races/100", &[("classId", "3")]).await);
    assert_eq!(status, 200);
    assert_eq!(
        trace,
        json!({"racerId": 8, "classId": 3, "raceId": 100, "seconds": [100.5, null, 120.0]})
    );
    Ok(())
}

#[tokio::test]
async fn history_link_is_presigned_for_the_configured_ttl() -> TestResult {
    let table = MemoryTable::new();
    let bucket = MemoryObjects::new();
    bucket.insert("class-4.json.gz", b"history".to_vec());
    let mut config = config();
    config.history_url_ttl = Duration::from_secs(120);
    let response = handle(
        request("GET", "/history/4", &[]),
        &table,
        &bucket,
        &config,
        NOW,
    )
    .await;
    let (status, body) = json_of(&response);
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"classId": 4, "url": "memory://class-4.json.gz?expires-in=120", "expiresAt": NOW + 120_000})
    );
    Ok(())
}

#[tokio::test]
async fn config_tells_the_browser_everything() -> TestResult {
    let (status, body) = json_of(&get(&MemoryTable::new(), "/config", &[]).await);
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({
            "platform": "aws",
            "region": "us-east-1",
            "identityPoolId": "us-east-1:1f0a6a4e-0000-4000-8000-123456789012",
            "mqttEndpoint": "a1b2c3-ats.iot.us-east-1.amazonaws.com",
            "publishTopic": "alleycat-publish",
            "subscribeTopicPrefix": "alleycat-subscribe/",
            "raceSeconds": 300,
            "windowSeconds": 300,
            "topK": 100
        })
    );
    Ok(())
}

#[tokio::test]
async fn bad_parameters_are_refused_naming_the_parameter() -> TestResult {
    let table = seeded_table().await?;
    let cases: &[Case] = &[
        ("/races", &[], "classId is required"),
        (
            "/races",
            &[("classId", "0")],
            "classId must be an integer from 1 to 6",
        ),
        (
            "/races",
            &[("classId", "7")],
            "classId must be an integer from 1 to 6",
        ),
        (
            "/races",
            &[("classId", "three")],
            "classId must be an integer from 1 to 6",
        ),
        (
            "/races",
            &[("classId", "+3")],
            "classId must be an integer from 1 to 6",
        ),
        (
            "/races",
            &[("classId", "3"), ("classId", "4")],
            "classId must be given once",
        ),
        (
            "/races",
            &[("classId", "3"), ("limit", "0")],
            "limit must be an integer from 1 to 100",
        ),
        (
            "/leaderboard",
            &[("classId", "3"), ("limit", "101")],
            "limit must be an integer from 1 to 100",
        ),
        (
            "/leaderboard",
            &[("classId", "3"), ("limit", "ten")],
            "limit must be an integer from 1 to 100",
        ),
        ("/races/100", &[], "classId is required"),
        (
            "/races/abc",
            &[("classId", "3")],
            "raceId must be a positive integer",
        ),
        (
            "/races/0/finals",
            &[("classId", "3")],
            "raceId must be a positive integer",
        ),
        (
            "/racers/-1/bests",
            &[("classId", "3")],
            "racerId must be an integer from 0 to 1000000",
        ),
        (
            "/racers/1000001/bests",
            &[("classId", "3")],
            "racerId must be an integer from 0 to 1000000",
        ),
        (
            "/racers/8/races/1e3",
            &[("classId", "3")],
            "raceId must be a positive integer",
        ),
        ("/racers/8/races/100", &[], "classId is required"),
        ("/history/9", &[], "classId must be an integer from 1 to 6"),
    ];
    for (path, query, message) in cases {
        let (status, body) = json_of(&get(&table, path, query).await);
        assert_eq!(status, 400, "{path} {query:?}");
        assert_eq!(body, json!({"error": message}), "{path} {query:?}");
    }
    Ok(())
}

#[tokio::test]
async fn unknown_ids_are_not_found() -> TestResult {
    let table = seeded_table().await?;
    let cases: &[Case] = &[
        ("/races/999", &[("classId", "3")], "no race 999 in class 3"),
        ("/races/101", &[("classId", "5")], "no race 101 in class 5"),
        (
            "/races/999/finals",
            &[("classId", "3")],
            "no race 999 in class 3",
        ),
        (
            "/racers/9/bests",
            &[("classId", "3")],
            "no bests of racer 9 in class 3",
        ),
        (
            "/racers/8/bests",
            &[("classId", "2")],
            "no bests of racer 8 in class 2",
        ),
        (
            "/racers/8/races/101",
            &[("classId", "3")],
            "no trace of racer 8 in race 101 of class 3",
        ),
    ];
    for (path, query, message) in cases {
        let (status, body) = json_of(&get(&table, path, query).await);
        assert_eq!(status, 404, "{path}");
        assert_eq!(body, json!({"error": message}), "{path}");
    }
    Ok(())
}

#[tokio::test]
async fn unknown_routes_are_not_found() {
    let table = MemoryTable::new();
    for path in [
        "/",
        "/race",
        "/races/1/2/3",
        "/racers/8",
        "/history",
        "/config/x",
    ] {
        let (status, body) = json_of(&get(&table, path, &[]).await);
        assert_eq!(status, 404, "{path}");
        assert_eq!(body, json!({"error": format!("no route {path}")}));
    }
}

#[tokio::test]
async fn other_methods_are_not_allowed() {
    let table = MemoryTable::new();
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let response = handle(
            request(method, "/races", &[]),
            &table,
            &MemoryObjects::new(),
            &config(),
            NOW,
        )
        .await;
        let (status, body) = json_of(&response);
        assert_eq!(status, 405, "{method}");
        assert_eq!(
            body,
            json!({"error": format!("method {method} is not allowed; use GET")})
        );
        assert_eq!(header(&response, "allow"), Some("GET, OPTIONS"));
    }
}

#[tokio::test]
async fn preflight_allows_gets_from_the_configured_origin() {
    let mut config = config();
    config.cors_origin = HeaderValue::from_static("https://alleycat.example.com");
    let table = MemoryTable::new();
    let objects = MemoryObjects::new();
    let response = handle(
        request("OPTIONS", "/leaderboard", &[]),
        &table,
        &objects,
        &config,
        NOW,
    )
    .await;
    assert_eq!(response.status_code, 204);
    assert!(response.body.is_none());
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some("https://alleycat.example.com")
    );
    assert_eq!(
        header(&response, "access-control-allow-methods"),
        Some("GET, OPTIONS")
    );
    assert_eq!(
        header(&response, "access-control-allow-headers"),
        Some("content-type")
    );
    assert_eq!(header(&response, "access-control-max-age"), Some("86400"));
    assert_eq!(header(&response, "vary"), Some("Origin"));

    let response = handle(
        request("GET", "/config", &[]),
        &table,
        &objects,
        &config,
        NOW,
    )
    .await;
    assert_eq!(response.status_code, 200);
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some("https://alleycat.example.com")
    );
    assert_eq!(header(&response, "vary"), Some("Origin"));
}

#[tokio::test]
async fn store_failures_are_503_when_retryable_and_500_otherwise() -> TestResult {
    let table = seeded_table().await?;
    table.faults.fail(
        "leaderboard_page",
        PortError::Throttled("ProvisionedThroughputExceeded".into()),
        1,
    );
    let response = get(&table, "/leaderboard", &[("classId", "3")]).await;
    let (status, body) = json_of(&response);
    assert_eq!(status, 503);
    assert_eq!(
        body,
        json!({"error": "the race data is temporarily unavailable; retry shortly"})
    );
    assert_eq!(header(&response, "retry-after"), Some("1"));

    table.faults.fail(
        "standings",
        PortError::Permanent("AccessDeniedException: secret details".into()),
        1,
    );
    let (status, body) = json_of(&get(&table, "/races/100", &[("classId", "3")]).await);
    assert_eq!(status, 500);
    assert_eq!(
        body,
        json!({"error": "internal error"}),
        "no internals leak"
    );

    let bucket = MemoryObjects::new();
    bucket.insert("class-3.json.gz", b"history".to_vec());
    bucket
        .faults
        .fail("presign_get", PortError::Transient("timeout".into()), 1);
    let response = handle(
        request("GET", "/history/3", &[]),
        &table,
        &bucket,
        &config(),
        NOW,
    )
    .await;
    assert_eq!(response.status_code, 503);
    Ok(())
}

#[tokio::test]
async fn named_stages_and_trailing_slashes_route_the_same() -> TestResult {
    let table = seeded_table().await?;
    let objects = MemoryObjects::new();
    let response = handle(
        request_on_stage("GET", "/prod/config", &[], "prod"),
        &table,
        &objects,
        &config(),
        NOW,
    )
    .await;
    assert_eq!(response.status_code, 200);
    let response = handle(
        request_on_stage("GET", "/prod/races/100/", &[("classId", "3")], "prod"),
        &table,
        &objects,
        &config(),
        NOW,
    )
    .await;
    assert_eq!(json_of(&response).1["raceId"], 100);
    Ok(())
}

/// An environment of the given variables only.
fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

#[test]
fn config_requires_aws_settings_only_on_aws() {
    let aws = [
        ("TABLE_NAME", "t"),
        ("HISTORY_BUCKET", "h"),
        ("IOT_ENDPOINT", "x-ats.iot.us-east-1.amazonaws.com"),
        ("AWS_REGION", "us-east-1"),
    ];
    let error = Config::from_lookup(lookup(&aws)).unwrap_err();
    assert!(error.to_string().contains("IDENTITY_POOL_ID"), "{error}");
}

#[test]
fn config_on_the_embedded_stack_needs_no_aws_settings() {
    let local = [
        ("TABLE_NAME", "t"),
        ("HISTORY_BUCKET", "h"),
        ("IOT_ENDPOINT", "ws://localhost:8083/mqtt"),
        ("PLATFORM", "local"),
        ("CORS_ALLOW_ORIGIN", "http://localhost:8080"),
        ("HISTORY_URL_TTL_SECONDS", "60"),
        ("RACE_SECONDS", "20"),
        ("WINDOW_SECONDS", "30"),
    ];
    let config = Config::from_lookup(lookup(&local)).expect("local needs no AWS settings");
    assert_eq!(config.platform, Platform::Local);
    assert_eq!(config.region, "");
    assert_eq!(config.cors_origin, "http://localhost:8080");
    assert_eq!(config.history_url_ttl, Duration::from_secs(60));
    assert_eq!(config.clock, RaceClock::new(20, 30));
    assert_eq!(config.top_k, 100);
    let client = config.client_config();
    assert_eq!((client.race_seconds, client.window_seconds), (20, 30));
}

#[test]
fn config_names_invalid_variables() {
    let error = Config::from_lookup(lookup(&[("PLATFORM", "azure")])).unwrap_err();
    assert!(error.to_string().contains("PLATFORM"), "{error}");
    let bad_ttl = [
        ("TABLE_NAME", "t"),
        ("HISTORY_BUCKET", "h"),
        ("IOT_ENDPOINT", "x"),
        ("PLATFORM", "local"),
        ("HISTORY_URL_TTL_SECONDS", "0"),
    ];
    let error = Config::from_lookup(lookup(&bad_ttl)).unwrap_err();
    assert!(
        error.to_string().contains("HISTORY_URL_TTL_SECONDS"),
        "{error}"
    );
    let bad_origin = [
        ("TABLE_NAME", "t"),
        ("HISTORY_BUCKET", "h"),
        ("IOT_ENDPOINT", "x"),
        ("PLATFORM", "local"),
        ("CORS_ALLOW_ORIGIN", "https://a.example\nx"),
    ];
    let error = Config::from_lookup(lookup(&bad_origin)).unwrap_err();
    assert!(error.to_string().contains("CORS_ALLOW_ORIGIN"), "{error}");
}

#[test]
fn the_handler_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let (table, objects, config) = (MemoryTable::new(), MemoryObjects::new(), config());
    assert_send(&handle(
        request("GET", "/config", &[]),
        &table,
        &objects,
        &config,
        NOW,
    ));
}

// ---------------------------------------------------------------- claims

/// A request whose caller API Gateway's AWS_IAM authorizer identified as `identity`.
fn signed(method: &str, path: &str, identity: Option<&str>) -> ApiGatewayV2httpRequest {
    let mut request = serde_json::to_value(request(method, path, &[])).unwrap();
    if let Some(identity) = identity {
        request["requestContext"]["authorizer"] = json!({"iam": {
            "accessKey": "ASIAEXAMPLE", "accountId": "123456789012",
            "callerId": "AROAEXAMPLE:CognitoIdentityCredentials",
            "cognitoIdentity": {"amr": ["unauthenticated"], "identityId": identity,
                                "identityPoolId": "us-east-1:1f0a6a4e-0000-4000-8000-123456789012"},
            "principalOrgId": null, "userArn": "arn:aws:sts::123456789012:assumed-role/guest/x",
            "userId": "AROAEXAMPLE:CognitoIdentityCredentials"
        }});
    }
    serde_json::from_value(request).unwrap()
}

async fn call(table: &MemoryTable, request: ApiGatewayV2httpRequest, now: u64) -> (i64, Value) {
    let response = handle(request, table, &MemoryObjects::new(), &config(), now).await;
    json_of(&response)
}

const ALICE: &str = "us-east-1:0000aaaa-0000-4000-8000-000000000001";
const MALLORY: &str = "us-east-1:0000bbbb-0000-4000-8000-000000000002";
const DAY: u64 = 86_400_000;

#[tokio::test]
async fn the_first_claim_wins_and_the_holder_renews_and_releases() {
    let table = MemoryTable::new();
    let path = "/racers/42/claim";
    assert_eq!(
        call(&table, signed("GET", path, None), NOW).await,
        (
            200,
            json!({"racerId": 42, "held": false, "mine": false, "expiresAt": null})
        )
    );
    let (status, body) = call(&table, signed("POST", path, None), NOW).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("identity"),
        "{body}"
    );

    assert_eq!(
        call(&table, signed("POST", path, Some(ALICE)), NOW).await,
        (
            200,
            json!({"racerId": 42, "held": true, "mine": true, "identityId": ALICE,
                     "expiresAt": NOW + DAY})
        )
    );
    assert_eq!(
        call(&table, signed("POST", path, Some(MALLORY)), NOW + 1).await,
        (409, json!({"error": "racer 42 is held by another rider"}))
    );
    assert_eq!(
        call(&table, signed("GET", path, Some(MALLORY)), NOW + 1).await,
        (
            200,
            json!({"racerId": 42, "held": true, "mine": false, "expiresAt": NOW + DAY})
        )
    );
    assert_eq!(
        call(&table, signed("DELETE", path, Some(MALLORY)), NOW + 2)
            .await
            .0,
        409
    );
    // Renewal keeps the tenure and moves the expiry.
    let (status, body) = call(&table, signed("POST", path, Some(ALICE)), NOW + 1_000).await;
    assert_eq!(
        (status, &body["expiresAt"]),
        (200, &json!(NOW + 1_000 + DAY))
    );
    let response = handle(
        signed("DELETE", path, Some(ALICE)),
        &table,
        &MemoryObjects::new(),
        &config(),
        NOW + 2_000,
    )
    .await;
    assert_eq!((response.status_code, response.body.is_none()), (204, true));
    assert_eq!(
        call(&table, signed("POST", path, Some(MALLORY)), NOW + 3_000)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn a_lapsed_claim_frees_the_racer() {
    let table = MemoryTable::new();
    let path = "/racers/7/claim";
    assert_eq!(
        call(&table, signed("POST", path, Some(ALICE)), NOW).await.0,
        200
    );
    assert_eq!(
        call(&table, signed("POST", path, Some(MALLORY)), NOW + DAY - 1)
            .await
            .0,
        409
    );
    let (status, body) = call(&table, signed("POST", path, Some(MALLORY)), NOW + DAY).await;
    assert_eq!((status, &body["identityId"]), (200, &json!(MALLORY)));
}

#[tokio::test]
async fn a_jwt_subject_is_an_identity_too_and_claims_refuse_bad_racers() {
    let table = MemoryTable::new();
    let mut request = serde_json::to_value(request("POST", "/racers/9/claim", &[])).unwrap();
    request["requestContext"]["authorizer"] =
        json!({"jwt": {"claims": {"sub": ALICE, "aud": "pool"}, "scopes": null}});
    let request = serde_json::from_value(request).unwrap();
    let (status, body) = call(&table, request, NOW).await;
    assert_eq!((status, &body["identityId"]), (200, &json!(ALICE)));
    let (status, body) = call(
        &table,
        signed("POST", "/racers/1000001/claim", Some(ALICE)),
        NOW,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        call(&table, signed("PUT", "/racers/9/claim", Some(ALICE)), NOW)
            .await
            .0,
        405
    );
}

#[tokio::test]
async fn a_claims_preflight_allows_posts_and_deletes_with_a_token() {
    let table = MemoryTable::new();
    let response = handle(
        request("OPTIONS", "/racers/9/claim", &[]),
        &table,
        &MemoryObjects::new(),
        &config(),
        NOW,
    )
    .await;
    assert_eq!(response.status_code, 204);
    assert_eq!(
        header(&response, "access-control-allow-methods"),
        Some("GET, POST, DELETE, OPTIONS")
    );
    let allowed = header(&response, "access-control-allow-headers").unwrap_or_default();
    assert_eq!(allowed, "content-type, authorization");
}
