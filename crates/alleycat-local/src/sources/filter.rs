//! Event filtering of event source mappings (`FilterCriteria`), for the patterns the template
//! uses: nested objects whose leaves are lists of allowed values.
//!
//! A record matches a pattern when every field the pattern names is present in the record with
//! one of the listed values, recursively; matching several patterns is an "or". This is the
//! subset of Lambda's filter syntax made of equality matches (no `prefix`, `numeric`,
//! `exists` or `anything-but` operators): a pattern using anything else is refused when the stack
//! starts rather than silently misread.

use serde_json::Value;

/// One `FilterCriteria.Filters[].Pattern`, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Pattern(Value);

impl Pattern {
    /// Parses a pattern as the template spells it; errors name what is not supported.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        fn check(value: &Value, path: &str) -> Result<(), String> {
            match value {
                Value::Object(fields) if !fields.is_empty() => fields
                    .iter()
                    .try_for_each(|(name, value)| check(value, &format!("{path}.{name}"))),
                Value::Array(values)
                    if !values.is_empty()
                        && values.iter().all(|v| !v.is_object() && !v.is_array()) =>
                {
                    Ok(())
                }
                _ => Err(format!(
                    "filter pattern at {path}: only lists of values are supported"
                )),
            }
        }
        let value: Value =
            serde_json::from_str(pattern).map_err(|e| format!("filter pattern: {e}"))?;
        check(&value, "$")?;
        Ok(Self(value))
    }

    /// Whether `record` (the record as the filter sees it: for Kinesis, `data` decoded as JSON)
    /// matches.
    pub fn matches(&self, record: &Value) -> bool {
        fn matches(pattern: &Value, value: &Value) -> bool {
            match pattern {
                Value::Object(fields) => fields.iter().all(|(name, pattern)| {
                    value.get(name).is_some_and(|value| matches(pattern, value))
                }),
                Value::Array(allowed) => allowed.contains(value),
                _ => false,
            }
        }
        matches(&self.0, record)
    }
}

/// Whether `record` passes `patterns` (no patterns: everything passes).
pub fn passes(patterns: &[Pattern], record: &Value) -> bool {
    patterns.is_empty() || patterns.iter().any(|pattern| pattern.matches(record))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn equality_lists_match_nested_fields() {
        let finals = Pattern::parse(r#"{"data": {"event": ["final"]}}"#).unwrap();
        assert!(finals.matches(&json!({"data": {"event": "final", "second": 300}})));
        assert!(!finals.matches(&json!({"data": {"event": "update"}})));
        assert!(!finals.matches(&json!({"data": "not json"})));
        assert!(!finals.matches(&json!({})));
        let standings = Pattern::parse(
            r#"{"eventName": ["INSERT", "MODIFY"], "dynamodb": {"Keys": {"sk": {"S": ["standings"]}}}}"#,
        )
        .unwrap();
        let change = |name: &str, sk: &str| json!({"eventName": name, "dynamodb": {"Keys": {"pk": {"S": "race#1#2"}, "sk": {"S": sk}}}});
        assert!(standings.matches(&change("MODIFY", "standings")));
        assert!(!standings.matches(&change("REMOVE", "standings")));
        assert!(!standings.matches(&change("INSERT", "racer#8")));
        assert!(passes(&[], &json!(null)));
        assert!(passes(
            &[finals.clone(), standings],
            &json!({"data": {"event": "final"}})
        ));
    }

    #[test]
    fn unsupported_operators_are_refused() {
        for pattern in [
            r#"{"data": {"second": [{"numeric": [">", 10]}]}}"#,
            r#"{"data": {"event": "final"}}"#,
            r#"{"data": {}}"#,
            "not json",
        ] {
            assert!(Pattern::parse(pattern).is_err(), "{pattern}");
        }
    }
}
