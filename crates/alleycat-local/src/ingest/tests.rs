use super::*;

use serde_json::json;

#[test]
fn partition_keys_substitute_racer_ids_as_iot_core_does() {
    assert_eq!(partition_key(br#"{"racerId":8,"classId":3}"#), "8");
    assert_eq!(partition_key(br#"{"classId":3,"racerId":"42"}"#), "42");
    for bad in [
        &b"\xff\x00garbage"[..],
        b"[1,2]",
        br#"{"racerId":{"a":1}}"#,
        b"{}",
        br#"{"racerId":""}"#,
    ] {
        assert_eq!(
            partition_key(bad),
            FALLBACK_KEY,
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

fn enriched(payload: &[u8], identity: Option<&str>) -> Value {
    serde_json::from_slice(&enrich(payload, identity, 1_620_051_628_731)).unwrap()
}

#[test]
fn enrich_adds_the_rules_fields_to_an_object_keeping_the_rest() {
    let payload = br#"{"uuid":"u","racerId":8,"cadence":74.20,"future":[1,{"a":null}]}"#;
    assert_eq!(
        enrich(payload, Some("local:8"), 1_620_051_628_731),
        br#"{"uuid":"u","racerId":8,"cadence":74.20,"future":[1,{"a":null}],"identityId":"local:8","ingestTimestamp":1620051628731}"#
    );
    assert_eq!(
        enrich(payload, None, 7),
        br#"{"uuid":"u","racerId":8,"cadence":74.20,"future":[1,{"a":null}],"ingestTimestamp":7}"#
    );
}

#[test]
fn enrich_handles_whitespace_empty_objects_and_odd_identitys() {
    assert_eq!(
        enriched(b" {\"a\": 1 ,\n \"b\":\"}\" }\r\n", Some("local:8")),
        json!({"a": 1, "b": "}", "identityId": "local:8", "ingestTimestamp": 1_620_051_628_731_u64})
    );
    assert_eq!(enrich(b"{ \n}", None, 5), b"{ \n\"ingestTimestamp\":5}");
    assert_eq!(
        enriched(b"{}", Some(r#"a"quote\and"#)),
        json!({"identityId": r#"a"quote\and"#, "ingestTimestamp": 1_620_051_628_731_u64})
    );
}

#[test]
fn enrich_replaces_fields_the_device_sent() {
    assert_eq!(
        enriched(
            br#"{"identityId":"forged","ingestTimestamp":1,"n":2}"#,
            Some("local:8")
        ),
        json!({"identityId": "local:8", "ingestTimestamp": 1_620_051_628_731_u64, "n": 2})
    );
}

#[test]
fn enrich_leaves_anything_but_a_json_object_unchanged() {
    for payload in [
        b"not json".as_slice(),
        b"{\"unterminated\":1",
        b"{\"a\":1}}",
        b"{oops}",
        b"[{\"a\":1}]",
        b"\"{}\"",
        b"42",
        b"",
        &[0xff, b'{', b'}'],
    ] {
        assert_eq!(enrich(payload, Some("local:8"), 1), payload, "{payload:?}");
    }
}
