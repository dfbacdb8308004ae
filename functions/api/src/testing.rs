//! Test support (feature `testing`): a class of many racers with many ties, and a check that
//! the API pages through it and ranks every racer exactly as a brute-force oracle does, on
//! whatever store the caller binds (memory, moto, the embedded table).

use alleycat_domain::leaderboard::rank_leaderboard;
use alleycat_domain::{LeaderboardEntry, Output};
use alleycat_ports::{Claims, ObjectStore, Queries, RankedRecords, Ranks, RetryPolicy};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
use serde_json::Value;

use crate::{Config, handle};

/// `racers` leaderboard rows with deterministic bests from few distinct values (so bests tie
/// often, across rank-count buckets and within them), races and final times that tie too.
pub fn tied_rows(racers: u32) -> Vec<LeaderboardEntry> {
    (1..=racers)
        .map(|racer| {
            let mix = u64::from(racer).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            let units = 600_000 + u32::try_from(mix % 900).unwrap_or(0) * 1_250;
            LeaderboardEntry {
                racer_id: racer,
                name: format!("R{}", mix % 7),
                best: Output::from_ten_thousandths(units),
                race_id: 5_400_000 + mix % 3,
                updated_at: 1_620_000_000_000 + mix % 2,
            }
        })
        .collect()
}

/// Writes `rows` to `class_id` as the leaderboard writer does (rows with their counts).
pub async fn seed<T: RankedRecords>(table: &T, class_id: u8, rows: &[LeaderboardEntry]) {
    let outcome =
        alleycat_ports::offer_records(table, class_id, rows, &RetryPolicy::default()).await;
    assert!(
        outcome.failed.is_empty(),
        "seeding failed: {:?}",
        outcome.failed
    );
}

fn get(path: &str, query: &[(&str, &str)]) -> ApiGatewayV2httpRequest {
    let query: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
        .collect();
    serde_json::from_value(serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {},
        "queryStringParameters": query,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "example.com",
            "domainPrefix": "example", "requestId": "id", "routeKey": "$default",
            "stage": "$default", "time": "12/Mar/2020:19:03:58 +0000", "timeEpoch": 0,
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "test"}
        },
        "isBase64Encoded": false
    }))
    .expect("a valid HTTP API request")
}

async fn call<Q, O>(table: &Q, objects: &O, path: &str, query: &[(&str, &str)]) -> (i64, Value)
where
    Q: Queries + Ranks + Claims,
    O: ObjectStore,
{
    let config = Config::from_lookup(|name| {
        match name {
            "TABLE_NAME" => Some("alleycat"),
            "HISTORY_BUCKET" => Some("alleycat-history"),
            "PLATFORM" => Some("local"),
            "IOT_ENDPOINT" => Some("ws://127.0.0.1:9001/mqtt"),
            _ => None,
        }
        .map(str::to_owned)
    })
    .expect("a valid configuration");
    let response = handle(get(path, query), table, objects, &config, 0).await;
    let body = match &response.body {
        Some(Body::Text(text)) => serde_json::from_str(text).expect("a JSON body"),
        other => panic!("expected a text body, got {other:?}"),
    };
    (response.status_code, body)
}

/// Pages through `class_id`'s leaderboard `limit` rows at a time, and asks every racer's rank:
/// every row exactly once, in [`rank_leaderboard`] order, each with its competition place, and
/// every rank equal to the oracle's (1 + rows with a strictly higher best; the class size).
pub async fn check_pages_and_ranks<Q, O>(
    table: &Q,
    objects: &O,
    class_id: u8,
    rows: &[LeaderboardEntry],
    limit: usize,
) where
    Q: Queries + Ranks + Claims,
    O: ObjectStore,
{
    let mut expected = rows.to_vec();
    rank_leaderboard(&mut expected);
    let place = |best: Output| 1 + rows.iter().filter(|r| r.best > best).count() as u64;
    let class = class_id.to_string();
    let limit_text = limit.to_string();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("classId", class.as_str()), ("limit", limit_text.as_str())];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.as_str()));
        }
        let (status, body) = call(table, objects, "/leaderboard", &query).await;
        assert_eq!(status, 200, "{body}");
        let entries = body["entries"].as_array().expect("entries");
        assert!(entries.len() <= limit);
        for entry in entries {
            let row: LeaderboardEntry =
                serde_json::from_value(entry.clone()).expect("an entry is a row");
            assert_eq!(
                entry["place"].as_u64(),
                Some(place(row.best)),
                "place of {row:?}"
            );
            seen.push(row);
        }
        match body["next"].as_str() {
            Some(next) => {
                assert_eq!(entries.len(), limit, "only the last page is short");
                cursor = Some(next.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), expected.len(), "every row once");
    assert!(seen == expected, "pages follow rank_leaderboard's order");

    for row in rows {
        let path = format!("/racers/{}/rank", row.racer_id);
        let (status, body) = call(table, objects, &path, &[("classId", class.as_str())]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (body["place"].as_u64(), body["of"].as_u64()),
            (Some(place(row.best)), Some(rows.len() as u64)),
            "rank of racer {}",
            row.racer_id
        );
        assert_eq!(body["raceId"].as_u64(), Some(row.race_id));
        assert_eq!(
            serde_json::from_value::<Output>(body["best"].clone()).ok(),
            Some(row.best)
        );
    }
}
