//! Logging rejected records without letting a batch of garbage flood the logs.

use std::collections::BTreeMap;
use std::fmt::Display;

use alleycat_domain::Rejection;

use crate::metrics::{Metric, Metrics, REJECTED};

/// The counter of each rule: `Rejected.<rule>` for every [`Rejection::rule`], then the
/// envelope's own failure (a record that is not even a Kinesis or Firehose record).
const RULE_METRICS: [(&str, Metric); 18] = [
    ("not_utf8", Metric::count("Rejected.not_utf8")),
    ("not_json", Metric::count("Rejected.not_json")),
    ("schema", Metric::count("Rejected.schema")),
    ("class_id", Metric::count("Rejected.class_id")),
    ("second", Metric::count("Rejected.second")),
    ("racer_id", Metric::count("Rejected.racer_id")),
    ("race_id", Metric::count("Rejected.race_id")),
    ("cadence", Metric::count("Rejected.cadence")),
    ("resistance", Metric::count("Rejected.resistance")),
    ("name", Metric::count("Rejected.name")),
    (
        "device_timestamp",
        Metric::count("Rejected.device_timestamp"),
    ),
    ("identity_id", Metric::count("Rejected.identity_id")),
    ("race_mismatch", Metric::count("Rejected.race_mismatch")),
    ("future", Metric::count("Rejected.future")),
    ("closed", Metric::count("Rejected.closed")),
    ("not_holder", Metric::count("Rejected.not_holder")),
    ("over_cap", Metric::count("Rejected.over_cap")),
    (ENVELOPE, Metric::count("Rejected.envelope")),
];

/// The rule name of a record that could not be decoded from its event at all.
pub const ENVELOPE: &str = "envelope";

/// Every counter [`RejectionLog::count_into`] adds: `Rejected`, then one per rule.
pub fn rejection_metrics() -> impl Iterator<Item = Metric> {
    std::iter::once(REJECTED).chain(RULE_METRICS.iter().map(|(_, metric)| *metric))
}

/// The counter of rejections under `rule` (`Rejected.<rule>`); `None` for a rule no
/// [`Rejection`] has.
pub fn rule_metric(rule: &str) -> Option<Metric> {
    RULE_METRICS
        .iter()
        .find(|(name, _)| *name == rule)
        .map(|(_, metric)| *metric)
}

/// How many rejected records an invocation logs one by one; the rest are only counted, so a
/// batch of garbage cannot flood the logs (and the CloudWatch bill).
pub const MAX_LOGGED_REJECTIONS: usize = 20;

/// The rejections of one invocation: each logged with where it was and why, up to
/// [`MAX_LOGGED_REJECTIONS`], then one summary line on [`RejectionLog::finish`].
#[derive(Debug, Default)]
pub struct RejectionLog {
    total: u64,
    logged: usize,
    by_rule: BTreeMap<&'static str, u64>,
}

impl RejectionLog {
    /// No rejections yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one rejection: `record` says which (a sequence number, a record id), `rule` which
    /// rule it broke (a stable, low-cardinality name), `reason` the details.
    pub fn reject(&mut self, record: &str, rule: &'static str, reason: &dyn Display) {
        self.total += 1;
        *self.by_rule.entry(rule).or_default() += 1;
        if self.logged < MAX_LOGGED_REJECTIONS {
            self.logged += 1;
            tracing::warn!(record, rule, %reason, "record rejected");
        }
    }

    /// How many records were rejected.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Records one [`Rejection`] under its rule.
    pub fn reject_for(&mut self, record: &str, rejection: &Rejection) {
        self.reject(record, rejection.rule(), rejection);
    }

    /// Adds the rejections to `metrics`: `Rejected` and one `Rejected.<rule>` counter per rule,
    /// every rule declared (at zero) so that each rule's series is continuous.
    pub fn count_into(&self, metrics: &mut Metrics) {
        metrics.add(REJECTED, self.total);
        for (rule, metric) in RULE_METRICS {
            metrics.add(metric, self.by_rule.get(rule).copied().unwrap_or(0));
        }
    }

    /// Says how many rejections were not logged one by one, if any.
    pub fn finish(self) {
        if self.total > self.logged as u64 {
            tracing::warn!(
                rejected = self.total,
                logged = self.logged,
                "more records rejected than logged"
            );
        }
    }
}

#[cfg(test)]
mod rule_tests {
    use super::*;

    #[test]
    fn every_rule_has_its_counter() {
        for rule in Rejection::RULES {
            assert_eq!(
                rule_metric(rule).map(Metric::name),
                Some(format!("Rejected.{rule}")).as_deref()
            );
        }
        assert_eq!(RULE_METRICS.len(), Rejection::RULES.len() + 1);
        let mut metrics = Metrics::new("test");
        let mut log = RejectionLog::new();
        log.reject_for("1", &Rejection::NotHolder { racer_id: 8 });
        log.reject("2", ENVELOPE, &"not base64");
        log.count_into(&mut metrics);
        assert_eq!(metrics.get("Rejected"), 2);
        assert_eq!(metrics.get("Rejected.not_holder"), 1);
        assert_eq!(metrics.get("Rejected.envelope"), 1);
        assert_eq!(metrics.counts().len(), 1 + RULE_METRICS.len());
    }
}
