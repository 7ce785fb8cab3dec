//! What the seller earned: revenue and settlement per offer and chain.
//!
//! Two sources:
//! - a Prometheus that scrapes the verifier and evaluates the recording rules of
//!   [`RULES_YAML`] ([`query::from_prometheus`], over a 24h or 7d window), reached by URL or
//!   through the Kubernetes API server's service proxy ([`prometheus::Prometheus`]);
//! - a running verifier's `/metrics`, read directly: lifetime totals since that verifier
//!   started ([`scrape::from_scrape`]).
//!
//! Money stays exact: sample values are parsed as decimals ([`value`]), never as `f64`, and
//! shown with the asset's decimals from the networks registry.
//!
//! - [`value`]: exact decimals from float strings, and undoing `increase()`'s extrapolation.
//! - [`exposition`]: the text exposition parser.
//! - [`prometheus`]: the HTTP API client.
//! - [`query`]: the recording-rule queries, missing rules, empty results.
//! - [`scrape`]: the `/metrics` fallback.
//! - [`report`], [`render`]: the report model, table and JSON.

pub mod exposition;
pub mod prometheus;
pub mod query;
pub mod render;
pub mod report;
pub mod scrape;
pub mod value;

pub use prometheus::{KubeTarget, Prometheus, PrometheusError};
pub use query::{QueryError, from_prometheus};
pub use report::{By, Report, Window};
pub use scrape::{ScrapeError, from_scrape};

/// The Prometheus recording and alerting rules (groups `x402.recording` and `x402.alerting`):
/// the `spec` of the PrometheusRule that `obol manifests` writes, byte for byte the file that
/// `promtool test rules src/earnings/rules_test.yaml` tests.
pub const RULES_YAML: &str = include_str!("rules.yaml");

/// Charged requests per offer and chain over 24h.
pub const RULE_REVENUE_24H: &str = "x402:revenue:24h_by_offer_chain";
/// Charged requests per offer and chain over 7 days.
pub const RULE_REVENUE_7D: &str = "x402:revenue:7d_by_offer_chain";
/// Charged requests per offer (all chains) over 7 days.
pub const RULE_REVENUE_7D_BY_OFFER: &str = "x402:revenue:7d_by_offer";
/// Charged amount (atomic units) per offer and chain over 24h.
pub const RULE_AMOUNT_24H: &str = "x402:revenue_amount:24h_by_offer_chain";
/// Charged amount (atomic units) per offer and chain over 7 days.
pub const RULE_AMOUNT_7D: &str = "x402:revenue_amount:7d_by_offer_chain";
/// Verified / (402 + verified + failed) per offer and chain over 1h.
pub const RULE_SETTLEMENT_RATE: &str = "x402:settlement_rate:1h_by_offer_chain";
/// Seconds since the last charge per offer and chain.
pub const RULE_LAST_PAYMENT_AGE: &str = "x402:last_payment_age_seconds:by_offer_chain";
/// Alert: more than 10% of presented payments fail, for 10 minutes.
pub const ALERT_FAILURE_RATE: &str = "X402PaymentFailureRateHigh";
/// Alert: 402s but no charge for 30 minutes.
pub const ALERT_NO_SETTLEMENTS: &str = "X402NoSettlementsAfterChallenge";

/// Every recording rule of [`RULES_YAML`].
pub const RECORDING_RULES: [&str; 7] = [
    RULE_REVENUE_24H,
    RULE_REVENUE_7D,
    RULE_REVENUE_7D_BY_OFFER,
    RULE_AMOUNT_24H,
    RULE_AMOUNT_7D,
    RULE_SETTLEMENT_RATE,
    RULE_LAST_PAYMENT_AGE,
];

impl Window {
    /// The recording rule with the charged requests over this window.
    pub fn requests_rule(self) -> &'static str {
        match self {
            Window::Day => RULE_REVENUE_24H,
            Window::Week => RULE_REVENUE_7D,
        }
    }

    /// The recording rule with the charged amount over this window.
    pub fn amount_rule(self) -> &'static str {
        match self {
            Window::Day => RULE_AMOUNT_24H,
            Window::Week => RULE_AMOUNT_7D,
        }
    }
}

/// `--offer NS/NAME` (or `NAME`, in any namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferFilter {
    pub namespace: Option<String>,
    pub name: String,
}

/// Kubernetes object names and namespaces (and the offers file's `offerNamespace`/`offerName`)
/// use these characters only; anything else cannot match a series.
fn valid_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

impl std::str::FromStr for OfferFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<OfferFilter, String> {
        let s = s.trim();
        let (namespace, name) = match s.split_once('/') {
            Some((ns, name)) => (Some(ns), name),
            None => (None, s),
        };
        if namespace.is_some_and(|ns| !valid_part(ns)) || !valid_part(name) {
            return Err(format!(
                "invalid offer {s:?}: use NAMESPACE/NAME (e.g. local/demo) or NAME"
            ));
        }
        Ok(OfferFilter {
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        })
    }
}

impl OfferFilter {
    pub fn matches(&self, namespace: &str, name: &str) -> bool {
        self.name == name && self.namespace.as_deref().is_none_or(|ns| ns == namespace)
    }

    /// PromQL label matchers, e.g. `offer_namespace="local",offer_name="demo"`.
    pub fn matchers(&self) -> String {
        // The characters are restricted by `from_str`; nothing needs escaping.
        match &self.namespace {
            Some(ns) => format!("offer_namespace=\"{ns}\",offer_name=\"{}\"", self.name),
            None => format!("offer_name=\"{}\"", self.name),
        }
    }
}

impl std::fmt::Display for OfferFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_file_defines_every_name_obol_uses() {
        for rule in RECORDING_RULES {
            assert_eq!(
                RULES_YAML.matches(&format!("- record: {rule}\n")).count(),
                1,
                "{rule}"
            );
        }
        for alert in [ALERT_FAILURE_RATE, ALERT_NO_SETTLEMENTS] {
            assert_eq!(
                RULES_YAML.matches(&format!("- alert: {alert}\n")).count(),
                1,
                "{alert}"
            );
        }
        assert_eq!(
            RULES_YAML.matches("- record: ").count(),
            RECORDING_RULES.len()
        );
        assert_eq!(RULES_YAML.matches("- alert: ").count(), 2);
        // Two groups, no Helm templating left in.
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(RULES_YAML).unwrap();
        let groups = v["groups"].as_sequence().unwrap();
        let names: Vec<_> = groups.iter().map(|g| g["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["x402.recording", "x402.alerting"]);
        assert!(!RULES_YAML.contains("{{ \"{{\" }}"));
        assert!(RULES_YAML.contains("clamp_min"));
        assert_eq!(RULES_YAML.matches("1e-9").count(), 3);
        // The recording group's interval is the one line the e2e test rewrites.
        assert_eq!(RULES_YAML.matches("interval: 30s").count(), 1);
    }

    #[test]
    fn offer_filters() {
        let f: OfferFilter = "local/demo".parse().unwrap();
        assert_eq!(f.namespace.as_deref(), Some("local"));
        assert_eq!(f.name, "demo");
        assert!(f.matches("local", "demo"));
        assert!(!f.matches("llm", "demo"));
        assert_eq!(f.matchers(), r#"offer_namespace="local",offer_name="demo""#);
        assert_eq!(f.to_string(), "local/demo");
        let f: OfferFilter = "demo".parse().unwrap();
        assert!(f.matches("llm", "demo"));
        assert_eq!(f.matchers(), r#"offer_name="demo""#);
        for bad in ["", "/demo", "local/", "a/b/c", "de\"mo", "x y", "local/{a}"] {
            assert!(bad.parse::<OfferFilter>().is_err(), "{bad}");
        }
    }
}
