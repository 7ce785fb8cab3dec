//! The sidecar's Prometheus metrics: the nine `obol_x402_buyer_*` of the obol-stack buyer,
//! labelled `{upstream, remote_model, chain}` (`chain` = the upstream's network, CAIP-2), plus
//! `obol_x402_buyer_payment_refused_total{…, reason}` and
//! `obol_x402_buyer_spent_amount_total` (atomic units).
//!
//! Every upstream holds an [`UpstreamSeries`] whose children are created when it is loaded, so
//! a request increments atomics without label lookups. When a reload removes an upstream (or
//! changes its labels), its series are deleted from every vector; a request still running
//! against the old upstream then increments detached children that never reappear.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use alloy_primitives::U256;
use prometheus::{Encoder as _, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

pub const LABELS: [&str; 3] = ["upstream", "remote_model", "chain"];

/// Why a payment was refused before anything was signed or sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalReason {
    PriceChanged,
    NoMatchingRequirement,
    BudgetDay,
    BudgetTotal,
    PoolExhausted,
    Signer,
    State,
}

impl RefusalReason {
    pub const ALL: [RefusalReason; 7] = [
        RefusalReason::PriceChanged,
        RefusalReason::NoMatchingRequirement,
        RefusalReason::BudgetDay,
        RefusalReason::BudgetTotal,
        RefusalReason::PoolExhausted,
        RefusalReason::Signer,
        RefusalReason::State,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::PriceChanged => "price_changed",
            RefusalReason::NoMatchingRequirement => "no_matching_requirement",
            RefusalReason::BudgetDay => "budget_day",
            RefusalReason::BudgetTotal => "budget_total",
            RefusalReason::PoolExhausted => "auth_pool_exhausted",
            RefusalReason::Signer => "signer_error",
            RefusalReason::State => "state_unwritable",
        }
    }
}

/// Label values are restricted to `[A-Za-z0-9_.:/-]` (anything else becomes `_`): scrape
/// parsers mis-read commas, braces and escapes in label values.
pub fn label_value(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

type Key = [String; 3];

struct Vecs {
    requests: IntCounterVec,
    attempts: IntCounterVec,
    success: IntCounterVec,
    failure: IntCounterVec,
    confirm_failure: IntCounterVec,
    unsettled: IntCounterVec,
    remaining: IntGaugeVec,
    spent: IntGaugeVec,
    mappings: IntGaugeVec,
    refused: IntCounterVec,
    spent_amount: IntCounterVec,
}

impl Vecs {
    fn remove(&self, k: &Key) {
        let v = [k[0].as_str(), k[1].as_str(), k[2].as_str()];
        for c in [
            &self.requests,
            &self.attempts,
            &self.success,
            &self.failure,
            &self.confirm_failure,
            &self.unsettled,
            &self.spent_amount,
        ] {
            let _ = c.remove_label_values(&v);
        }
        for g in [&self.remaining, &self.spent, &self.mappings] {
            let _ = g.remove_label_values(&v);
        }
        for r in RefusalReason::ALL {
            let _ = self
                .refused
                .remove_label_values(&[v[0], v[1], v[2], r.as_str()]);
        }
    }
}

/// The series of one upstream.
pub struct UpstreamSeries {
    pub requests: IntCounter,
    pub attempts: IntCounter,
    pub success: IntCounter,
    pub failure: IntCounter,
    pub confirm_failure: IntCounter,
    pub unsettled: IntCounter,
    pub remaining: IntGauge,
    pub spent: IntGauge,
    mapping: IntGauge,
    refused: HashMap<RefusalReason, IntCounter>,
    spent_amount: IntCounter,
}

impl std::fmt::Debug for UpstreamSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamSeries")
    }
}

impl UpstreamSeries {
    pub fn refused(&self, reason: RefusalReason) {
        if let Some(c) = self.refused.get(&reason) {
            c.inc();
        }
    }

    /// Adds a spent amount (saturating at the u64 range).
    pub fn spent_amount(&self, amount: U256) {
        let add = u64::try_from(amount).unwrap_or(u64::MAX);
        let room = u64::MAX - self.spent_amount.get();
        self.spent_amount.inc_by(add.min(room));
    }

    pub fn set_pool(&self, remaining: usize, spent: usize) {
        self.remaining
            .set(i64::try_from(remaining).unwrap_or(i64::MAX));
        self.spent.set(i64::try_from(spent).unwrap_or(i64::MAX));
    }
}

/// Every sidecar metric, on a registry of its own.
pub struct Metrics {
    registry: Registry,
    vecs: Vecs,
    live: Mutex<HashMap<Key, Arc<UpstreamSeries>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition")
}

fn gauge(name: &str, help: &str) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), &LABELS).expect("valid metric definition")
}

impl Metrics {
    pub fn new() -> Metrics {
        let vecs = Vecs {
            requests: counter(
                "obol_x402_buyer_requests_total",
                "Total requests routed through the x402 buyer sidecar.",
                &LABELS,
            ),
            attempts: counter(
                "obol_x402_buyer_payment_attempts_total",
                "Total x402 payment attempts made by the buyer sidecar.",
                &LABELS,
            ),
            success: counter(
                "obol_x402_buyer_payment_success_total",
                "Total successful x402 payments made by the buyer sidecar.",
                &LABELS,
            ),
            failure: counter(
                "obol_x402_buyer_payment_failure_total",
                "Total failed x402 payments attempted by the buyer sidecar.",
                &LABELS,
            ),
            confirm_failure: counter(
                "obol_x402_buyer_confirm_spend_failure_total",
                "Successful upstream responses whose consumed-auth state could not be persisted.",
                &LABELS,
            ),
            unsettled: counter(
                "obol_x402_buyer_payment_unsettled_confirmations_total",
                "Upstream 2xx responses with no X-PAYMENT-RESPONSE header — auth consumed locally without observed on-chain settlement.",
                &LABELS,
            ),
            remaining: gauge(
                "obol_x402_buyer_auth_remaining",
                "Remaining pre-signed authorizations for an upstream model mapping.",
            ),
            spent: gauge(
                "obol_x402_buyer_auth_spent",
                "Consumed pre-signed authorizations for an upstream model mapping.",
            ),
            mappings: gauge(
                "obol_x402_buyer_active_model_mappings",
                "Active paid model mappings loaded in the buyer sidecar.",
            ),
            refused: counter(
                "obol_x402_buyer_payment_refused_total",
                "Payments the buyer sidecar refused before signing or spending, by reason.",
                &["upstream", "remote_model", "chain", "reason"],
            ),
            spent_amount: counter(
                "obol_x402_buyer_spent_amount_total",
                "Amount paid by the buyer sidecar, in the asset's atomic units (USDC: 1e-6 USDC).",
                &LABELS,
            ),
        };
        let registry = Registry::new();
        for c in [
            &vecs.requests,
            &vecs.attempts,
            &vecs.success,
            &vecs.failure,
            &vecs.confirm_failure,
            &vecs.unsettled,
            &vecs.refused,
            &vecs.spent_amount,
        ] {
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric name");
        }
        for g in [&vecs.remaining, &vecs.spent, &vecs.mappings] {
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric name");
        }
        Metrics {
            registry,
            vecs,
            live: Mutex::new(HashMap::new()),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<UpstreamSeries>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The series of `(upstream, remote_model, chain)`, created (and the mapping gauge set to
    /// 1) on first use.
    pub fn series(&self, upstream: &str, remote_model: &str, chain: &str) -> Arc<UpstreamSeries> {
        let key = [
            label_value(upstream),
            label_value(remote_model),
            label_value(chain),
        ];
        let mut live = self.live();
        if let Some(s) = live.get(&key) {
            return Arc::clone(s);
        }
        let v = [key[0].as_str(), key[1].as_str(), key[2].as_str()];
        let vecs = &self.vecs;
        let s = Arc::new(UpstreamSeries {
            requests: vecs.requests.with_label_values(&v),
            attempts: vecs.attempts.with_label_values(&v),
            success: vecs.success.with_label_values(&v),
            failure: vecs.failure.with_label_values(&v),
            confirm_failure: vecs.confirm_failure.with_label_values(&v),
            unsettled: vecs.unsettled.with_label_values(&v),
            remaining: vecs.remaining.with_label_values(&v),
            spent: vecs.spent.with_label_values(&v),
            mapping: vecs.mappings.with_label_values(&v),
            refused: RefusalReason::ALL
                .iter()
                .map(|r| {
                    (
                        *r,
                        vecs.refused
                            .with_label_values(&[v[0], v[1], v[2], r.as_str()]),
                    )
                })
                .collect(),
            spent_amount: vecs.spent_amount.with_label_values(&v),
        });
        s.mapping.set(1);
        live.insert(key, Arc::clone(&s));
        s
    }

    /// Deletes the series of every label tuple not in `keep` (`(upstream, remote_model,
    /// chain)` as given to [`Metrics::series`]). Returns how many tuples went.
    pub fn retain(&self, keep: &[(String, String, String)]) -> usize {
        let keep: HashSet<Key> = keep
            .iter()
            .map(|(u, m, c)| [label_value(u), label_value(m), label_value(c)])
            .collect();
        let mut live = self.live();
        let gone: Vec<Key> = live
            .keys()
            .filter(|k| !keep.contains(*k))
            .cloned()
            .collect();
        for k in &gone {
            live.remove(k);
            self.vecs.remove(k);
        }
        gone.len()
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        let _ = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nine_metrics_carry_upstream_model_and_chain() {
        let m = Metrics::new();
        let s = m.series("qwen", "qwen3:32b", "eip155:84532");
        s.requests.inc();
        s.attempts.inc();
        s.success.inc();
        s.set_pool(0, 1);
        s.spent_amount(U256::from(1000u64));
        s.refused(RefusalReason::BudgetDay);
        let text = m.encode();
        for name in [
            "requests_total",
            "payment_attempts_total",
            "payment_success_total",
            "payment_failure_total",
            "confirm_spend_failure_total",
            "payment_unsettled_confirmations_total",
            "auth_remaining",
            "auth_spent",
            "active_model_mappings",
        ] {
            assert!(
                text.contains(&format!(
                    "obol_x402_buyer_{name}{{chain=\"eip155:84532\",remote_model=\"qwen3:32b\",upstream=\"qwen\"}}"
                )),
                "{name} missing:\n{text}"
            );
        }
        assert!(text.contains("obol_x402_buyer_requests_total{chain=\"eip155:84532\",remote_model=\"qwen3:32b\",upstream=\"qwen\"} 1"));
        assert!(text.contains("obol_x402_buyer_auth_spent{chain=\"eip155:84532\",remote_model=\"qwen3:32b\",upstream=\"qwen\"} 1"));
        assert!(text.contains("obol_x402_buyer_spent_amount_total{chain=\"eip155:84532\",remote_model=\"qwen3:32b\",upstream=\"qwen\"} 1000"));
        assert!(
            text.contains("reason=\"budget_day\",remote_model=\"qwen3:32b\",upstream=\"qwen\"} 1")
        );
    }

    #[test]
    fn removed_upstreams_lose_every_series_and_stay_gone() {
        let m = Metrics::new();
        let a = m.series("a", "m1", "eip155:1");
        let b = m.series("b", "m2", "eip155:1");
        a.requests.inc();
        b.requests.inc();
        assert_eq!(m.retain(&[("b".into(), "m2".into(), "eip155:1".into())]), 1);
        // A request still running against the removed upstream.
        a.requests.inc();
        a.set_pool(3, 3);
        let text = m.encode();
        assert!(!text.contains("upstream=\"a\""), "{text}");
        assert!(text.contains("upstream=\"b\""), "{text}");
        // Same labels again: the live series is reused.
        assert!(Arc::ptr_eq(&b, &m.series("b", "m2", "eip155:1")));
    }

    #[test]
    fn label_values_are_sanitised() {
        assert_eq!(label_value("a,b{c}\"d"), "a_b_c__d");
        assert_eq!(label_value("qwen3.5:9b/x-y_z"), "qwen3.5:9b/x-y_z");
    }
}
