//! The earnings report from Prometheus: four instant queries on the recording rules (never on
//! the raw counters), joined per offer and chain.
//!
//! An empty answer is checked against `/api/v1/rules`: a rule Prometheus does not have is
//! reported as missing (the rules are not installed), otherwise the data is not there yet (no
//! scrape of a verifier, or not two samples yet).

use std::collections::BTreeMap;

use super::prometheus::{Prometheus, PrometheusError, VectorSample};
use super::report::{By, OfferData, OfferKey, Report, Settlement, Source, Window};
use super::value::{Charged, Decimal, Estimate};
use super::{OfferFilter, RULE_LAST_PAYMENT_AGE, RULE_SETTLEMENT_RATE};
use crate::x402::networks::Registry;

/// Why no report could be made from Prometheus.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Prometheus(#[from] PrometheusError),
    #[error("Prometheus at {target} does not have the x402 recording rules ({} missing)", missing.join(", "))]
    RulesMissing {
        target: String,
        missing: Vec<String>,
        via_kube: bool,
    },
    #[error("Prometheus at {target} has no x402 earnings data{} for the last {window}", offer.as_ref().map(|o| format!(" for offer {o}")).unwrap_or_default())]
    Empty {
        target: String,
        window: &'static str,
        offer: Option<String>,
    },
    #[error("Prometheus at {target}: {rule}{{{labels}}}: {detail}")]
    BadValue {
        target: String,
        rule: String,
        labels: String,
        detail: String,
    },
}

impl QueryError {
    /// What the user can do about it.
    pub fn hint(&self) -> String {
        match self {
            QueryError::Prometheus(e) => e.hint(),
            QueryError::RulesMissing { via_kube: true, .. } => "install obol's PrometheusRule (`obol manifests`; the Prometheus operator loads PrometheusRules labelled release=monitoring), or print the rules with `obol metrics rules`".into(),
            QueryError::RulesMissing { .. } => "load obol's rules: `obol metrics rules > x402-rules.yaml`, list that file under `rule_files:` in prometheus.yml and reload Prometheus; in Kubernetes apply the PrometheusRule of `obol manifests`".into(),
            QueryError::Empty { offer: Some(_), .. } => "check the offer's name (`obol sell list`); without --offer every offer is shown".into(),
            QueryError::Empty { .. } => "check that Prometheus scrapes the verifier (Status > Targets: its /metrics should be UP; in Kubernetes the ServiceMonitor x402/x402-verifier needs label release=monitoring), that there are offers (`obol sell list`), and allow two scrapes and one rule evaluation (about a minute); `--scrape VERIFIER_URL/metrics` reads a verifier directly".into(),
            QueryError::BadValue { .. } => "the recorded series holds something other than a count; check the rules against `obol metrics rules`".into(),
        }
    }
}

fn selector(rule: &str, filter: Option<&OfferFilter>) -> String {
    match filter {
        Some(f) => format!("{rule}{{{}}}", f.matchers()),
        None => rule.to_string(),
    }
}

fn key_of(s: &VectorSample) -> OfferKey {
    let label = |n: &str| s.labels.get(n).cloned().unwrap_or_default();
    OfferKey {
        namespace: label("offer_namespace"),
        name: label("offer_name"),
        chain: label("chain"),
    }
}

fn labels_text(s: &VectorSample) -> String {
    s.labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The report over `window` from the recording rules of `prom`.
pub async fn from_prometheus(
    prom: &Prometheus,
    window: Window,
    by: By,
    filter: Option<&OfferFilter>,
    registry: &Registry,
) -> Result<Report, QueryError> {
    let requests_rule = window.requests_rule();
    let amount_rule = window.amount_rule();
    let age = selector(RULE_LAST_PAYMENT_AGE, filter);
    // The rule is evaluated every 30s; add the time since its sample was recorded.
    let age_query = format!("{age} + (time() - timestamp({age}))");
    let (requests_query, amount_query, rate_query) = (
        selector(requests_rule, filter),
        selector(amount_rule, filter),
        selector(RULE_SETTLEMENT_RATE, filter),
    );
    let (requests, amounts, rates, ages) = tokio::try_join!(
        prom.query(&requests_query),
        prom.query(&amount_query),
        prom.query(&rate_query),
        prom.query(&age_query),
    )?;
    let answers = [
        (requests_rule, &requests),
        (amount_rule, &amounts),
        (RULE_SETTLEMENT_RATE, &rates),
        (RULE_LAST_PAYMENT_AGE, &ages),
    ];
    if answers.iter().any(|(_, a)| a.is_empty()) {
        // A Prometheus without the rules API (some proxies) leaves the question open.
        if let Ok(loaded) = prom.recording_rules().await {
            let missing: Vec<String> = answers
                .iter()
                .map(|(rule, _)| *rule)
                .filter(|rule| !loaded.iter().any(|l| l == rule))
                .map(str::to_string)
                .collect();
            if !missing.is_empty() {
                return Err(QueryError::RulesMissing {
                    target: prom.describe(),
                    missing,
                    via_kube: prom.via_kube(),
                });
            }
        }
    }
    if answers.iter().all(|(_, a)| a.is_empty()) {
        return Err(QueryError::Empty {
            target: prom.describe(),
            window: window.as_str(),
            offer: filter.map(ToString::to_string),
        });
    }

    let decimal = |rule: &str, s: &VectorSample| {
        Decimal::parse(&s.value).map_err(|e| QueryError::BadValue {
            target: prom.describe(),
            rule: rule.to_string(),
            labels: labels_text(s),
            detail: e.to_string(),
        })
    };
    let mut counts: BTreeMap<OfferKey, Decimal> = BTreeMap::new();
    for s in &requests {
        counts.insert(key_of(s), decimal(requests_rule, s)?);
    }
    let mut money: BTreeMap<OfferKey, Decimal> = BTreeMap::new();
    for s in &amounts {
        money.insert(key_of(s), decimal(amount_rule, s)?);
    }
    let mut data: BTreeMap<OfferKey, OfferData> = BTreeMap::new();
    for key in counts.keys().chain(money.keys()) {
        let entry = data.entry(key.clone()).or_default();
        match (counts.get(key), money.get(key)) {
            (Some(c), Some(a)) => {
                let charged = Charged::from_window(c, a);
                entry.requests = Some(charged.requests);
                entry.revenue = Some(charged.amount);
            }
            (Some(c), None) => {
                entry.requests = Some(Charged::from_window(c, &Decimal::zero()).requests);
            }
            (None, Some(a)) => {
                entry.revenue = Some(Estimate {
                    value: a.round_half_up(),
                    approximate: a.to_integer().is_none(),
                });
            }
            (None, None) => {}
        }
    }
    // Rates and ages are not money: f64 is fine. NaN (0/0 cannot happen with the 1e-9 guard,
    // but a hand-written rule might) shows as unknown.
    for s in &rates {
        if let Ok(r) = s.value.parse::<f64>() {
            data.entry(key_of(s)).or_default().settlement = Some(Settlement::Rate(r));
        }
    }
    for s in &ages {
        if let Ok(a) = s.value.parse::<f64>() {
            data.entry(key_of(s)).or_default().last_payment_age_seconds =
                a.is_finite().then_some(a.max(0.0));
        }
    }
    Ok(Report::build(
        Source::Prometheus {
            target: prom.describe(),
            window,
        },
        by,
        &data,
        registry,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        assert_eq!(
            selector("x402:revenue:24h_by_offer_chain", None),
            "x402:revenue:24h_by_offer_chain"
        );
        let f: OfferFilter = "local/demo".parse().unwrap();
        assert_eq!(
            selector("x402:revenue:24h_by_offer_chain", Some(&f)),
            r#"x402:revenue:24h_by_offer_chain{offer_namespace="local",offer_name="demo"}"#
        );
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let e = QueryError::RulesMissing {
            target: "http://p:9090".into(),
            missing: vec![
                "x402:revenue:24h_by_offer_chain".into(),
                "x402:revenue_amount:24h_by_offer_chain".into(),
            ],
            via_kube: false,
        };
        assert_eq!(
            e.to_string(),
            "Prometheus at http://p:9090 does not have the x402 recording rules (x402:revenue:24h_by_offer_chain, x402:revenue_amount:24h_by_offer_chain missing)"
        );
        assert!(e.hint().contains("rule_files"), "{}", e.hint());
        let e = QueryError::Empty {
            target: "http://p:9090".into(),
            window: "7d",
            offer: Some("local/demo".into()),
        };
        assert_eq!(
            e.to_string(),
            "Prometheus at http://p:9090 has no x402 earnings data for offer local/demo for the last 7d"
        );
        let e = QueryError::Empty {
            target: "http://p:9090".into(),
            window: "24h",
            offer: None,
        };
        assert_eq!(
            e.to_string(),
            "Prometheus at http://p:9090 has no x402 earnings data for the last 24h"
        );
        assert!(e.hint().contains("scrapes the verifier"));
    }
}
