//! Per-invocation counts as CloudWatch Embedded Metric Format (EMF) log lines: CloudWatch turns
//! them into metrics from the log stream, with no PutMetricData calls and no added latency.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::json;

/// CloudWatch namespace of every Alleycat metric.
pub const NAMESPACE: &str = "Alleycat";

/// The unit CloudWatch is told a metric is in: it labels graphs and lets alarms and metric math
/// convert (bytes to kilobytes, say).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    /// A number of things: records, writes, retries.
    Count,
    /// A size in bytes.
    Bytes,
}

impl Unit {
    /// The unit's name in an EMF declaration.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Bytes => "Bytes",
        }
    }
}

/// A metric: its CloudWatch name (CamelCase, the name alarms and dashboards use) and its unit.
/// Each is a constant declared once, by the crate that counts it, so a misspelt name or a
/// byte count declared as a count does not compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Metric {
    name: &'static str,
    unit: Unit,
}

impl Metric {
    /// A metric counting things.
    pub const fn count(name: &'static str) -> Self {
        Self {
            name,
            unit: Unit::Count,
        }
    }

    /// A metric summing sizes in bytes.
    pub const fn bytes(name: &'static str) -> Self {
        Self {
            name,
            unit: Unit::Bytes,
        }
    }

    /// The CloudWatch name.
    pub const fn name(self) -> &'static str {
        self.name
    }

    /// The unit.
    pub const fn unit(self) -> Unit {
        self.unit
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Records an invocation received: Kinesis, DynamoDB stream or Firehose records.
pub const RECORDS_IN: Metric = Metric::count("RecordsIn");
/// Bytes received: the records' data, or the delivery objects read.
pub const BYTES_IN: Metric = Metric::bytes("BytesIn");
/// Records rejected, every rule together (each rule also has its own, see
/// [`crate::rejection_metrics`]).
pub const REJECTED: Metric = Metric::count("Rejected");
/// Reads of racer claims from the table.
pub const CLAIM_LOOKUPS: Metric = Metric::count("ClaimLookups");
/// Retried requests to AWS (throttling, conflicts, transient errors), beyond each first try.
pub const RETRIES: Metric = Metric::count("Retries");

/// Counters of one invocation of one function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metrics {
    function: &'static str,
    stack: Option<String>,
    counts: BTreeMap<Metric, u64>,
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

    /// Adds `n` to `metric` (declaring it, at zero if `n` is).
    pub fn add(&mut self, metric: Metric, n: u64) {
        *self.counts.entry(metric).or_default() += n;
    }

    /// Adds one to `metric`.
    pub fn incr(&mut self, metric: Metric) {
        self.add(metric, 1);
    }

    /// The value of the metric called `name` (0 if never touched): read by its CloudWatch name,
    /// as a dashboard or a test reads it.
    pub fn get(&self, name: &str) -> u64 {
        self.counts
            .iter()
            .find(|(metric, _)| metric.name == name)
            .map_or(0, |(_, n)| *n)
    }

    /// Every metric touched, ordered by name.
    pub fn counts(&self) -> &BTreeMap<Metric, u64> {
        &self.counts
    }

    /// The EMF document: one JSON object whose `_aws` member declares the metrics.
    pub fn to_emf(&self, timestamp_ms: u64) -> serde_json::Value {
        let definitions: Vec<_> = self
            .counts
            .keys()
            .map(|metric| json!({"Name": metric.name, "Unit": metric.unit.as_str()}))
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
        for (metric, value) in &self.counts {
            document[metric.name] = json!(value);
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
        metrics.add(RECORDS_IN, 3);
        metrics.incr(REJECTED);
        metrics.add(BYTES_IN, 190);
        let mut line = Vec::new();
        metrics.write_emf(&mut line, 1_700_000_000_000).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(doc["Function"], "race-aggregator");
        assert_eq!(doc["RecordsIn"], 3);
        assert_eq!(doc["Rejected"], 1);
        assert_eq!(doc["BytesIn"], 190);
        let declared = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], NAMESPACE);
        assert_eq!(declared["Dimensions"], json!([["Function"]]));
        assert_eq!(
            declared["Metrics"],
            json!([
                {"Name": "BytesIn", "Unit": "Bytes"},
                {"Name": "RecordsIn", "Unit": "Count"},
                {"Name": "Rejected", "Unit": "Count"},
            ])
        );
        assert_eq!(line.last(), Some(&b'\n'));
    }

    #[test]
    fn emf_with_a_stack_declares_the_function_and_stack_dimensions() {
        let mut metrics = Metrics::new("publisher").with_stack("alleycat-prod");
        metrics.incr(Metric::count("PublishFailed"));
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
