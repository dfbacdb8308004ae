//! Per-invocation counts as CloudWatch Embedded Metric Format (EMF) log lines: CloudWatch turns
//! them into metrics from the log stream, with no PutMetricData calls and no added latency.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::json;

/// CloudWatch namespace of every Alleycat metric.
pub const NAMESPACE: &str = "Alleycat";

/// Counters of one invocation of one function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metrics {
    function: &'static str,
    stack: Option<String>,
    counts: BTreeMap<&'static str, u64>,
}

impl Metrics {
    /// Counters for `function` (the metric's `Function` dimension), all at zero.
    pub fn new(function: &'static str) -> Self {
        Self {
            function,
            stack: None,
            counts: BTreeMap::new(),
        }
    }

    /// The same counters also under the deployment's name (dimensions `Function` and `Stack`),
    /// so that two stacks in one account and region keep their metrics apart.
    #[must_use]
    pub fn with_stack(mut self, stack: impl Into<String>) -> Self {
        self.stack = Some(stack.into());
        self
    }

    /// Adds `n` to counter `name` (metric names are CamelCase: `RecordsIn`, `Rejected`, …).
    pub fn add(&mut self, name: &'static str, n: u64) {
        *self.counts.entry(name).or_default() += n;
    }

    /// Adds one to counter `name`.
    pub fn incr(&mut self, name: &'static str) {
        self.add(name, 1);
    }

    /// A counter's value (0 if never touched).
    pub fn get(&self, name: &str) -> u64 {
        self.counts.get(name).copied().unwrap_or(0)
    }

    /// Every counter, by name.
    pub fn counts(&self) -> &BTreeMap<&'static str, u64> {
        &self.counts
    }

    /// The EMF document: one JSON object whose `_aws` member declares the metrics.
    pub fn to_emf(&self, timestamp_ms: u64) -> serde_json::Value {
        let definitions: Vec<_> = self
            .counts
            .keys()
            .map(|name| json!({"Name": name, "Unit": "Count"}))
            .collect();
        let dimensions = if self.stack.is_some() {
            json!([["Function", "Stack"]])
        } else {
            json!([["Function"]])
        };
        let mut document = json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": dimensions,
                    "Metrics": definitions,
                }],
            },
            "Function": self.function,
        });
        if let Some(stack) = &self.stack {
            document["Stack"] = json!(stack);
        }
        for (name, value) in &self.counts {
            document[*name] = json!(value);
        }
        document
    }

    /// Writes the EMF document as one line.
    pub fn write_emf(&self, out: &mut impl Write, timestamp_ms: u64) -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, &self.to_emf(timestamp_ms))?;
        out.write_all(b"\n")
    }

    /// Prints the EMF line to stdout, where Lambda's log agent picks it up. It bypasses the
    /// tracing subscriber on purpose: EMF must be the whole log event, not a field inside one.
    pub fn emit(&self) {
        let now = crate::now_ms();
        let mut stdout = std::io::stdout().lock();
        if let Err(error) = self.write_emf(&mut stdout, now) {
            tracing::warn!(%error, "could not write metrics");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_declares_every_counter_under_the_function_dimension() {
        let mut metrics = Metrics::new("race-aggregator");
        metrics.add("RecordsIn", 3);
        metrics.incr("Rejected");
        let mut line = Vec::new();
        metrics.write_emf(&mut line, 1_700_000_000_000).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(doc["Function"], "race-aggregator");
        assert_eq!(doc["RecordsIn"], 3);
        assert_eq!(doc["Rejected"], 1);
        let declared = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], NAMESPACE);
        assert_eq!(declared["Dimensions"], json!([["Function"]]));
        assert_eq!(
            declared["Metrics"],
            json!([{"Name": "RecordsIn", "Unit": "Count"}, {"Name": "Rejected", "Unit": "Count"}])
        );
        assert_eq!(line.last(), Some(&b'\n'));
    }

    #[test]
    fn emf_with_a_stack_declares_the_function_and_stack_dimensions() {
        let mut metrics = Metrics::new("publisher").with_stack("alleycat-prod");
        metrics.incr("PublishFailed");
        let doc = metrics.to_emf(1_700_000_000_000);
        assert_eq!(doc["Function"], "publisher");
        assert_eq!(doc["Stack"], "alleycat-prod");
        assert_eq!(doc["PublishFailed"], 1);
        let declared = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Dimensions"], json!([["Function", "Stack"]]));
        assert_eq!(
            declared["Metrics"],
            json!([{"Name": "PublishFailed", "Unit": "Count"}])
        );
    }
}
