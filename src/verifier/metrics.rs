//! The verifier's Prometheus metrics (`obol_x402_verifier_*`), on a registry of their own.
//!
//! Names, help strings and the label set `{offer_namespace, offer_name, chain}` are those of the
//! obol-stack verifier, so its recording rules and dashboards keep working; `chain` is always
//! the route's resolved CAIP-2 id. `obol_x402_verifier_charged_amount_total` adds the money.
//!
//! Every route holds an [`OfferSeries`]: its children, created on first use and then cached, so
//! a request increments atomics without any label lookup. When a reload drops an offer, every
//! one of its series is removed ([`Metrics::retain`]); a request still running against the old
//! table then increments a detached child, which never reappears in a scrape.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use alloy_primitives::U256;
use prometheus::core::Collector as _;
use prometheus::{Encoder as _, Gauge, GaugeVec, IntCounter, IntCounterVec, Opts, Registry};

pub const LABELS: [&str; 3] = ["offer_namespace", "offer_name", "chain"];

/// `offer_namespace \0 offer_name \0 chain` as emitted (one allocation, shared by the live
/// index and the series; `\0` cannot occur in a sanitised label value).
pub type LabelKey = Arc<str>;

fn key_of(namespace: &str, name: &str, chain: &str) -> LabelKey {
    Arc::from(format!(
        "{}\0{}\0{}",
        label_value(namespace),
        label_value(name),
        label_value(chain)
    ))
}

fn split_key(key: &str) -> [&str; 3] {
    let mut it = key.splitn(3, '\0');
    [
        it.next().unwrap_or(""),
        it.next().unwrap_or(""),
        it.next().unwrap_or(""),
    ]
}

/// Label values are restricted to `[A-Za-z0-9_.:/-]` (anything else becomes `_`): scrape
/// parsers (prometheus-parse) mis-read commas, braces and escapes in label values.
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

/// The vectors, shared by every [`OfferSeries`].
struct Vecs {
    requests: IntCounterVec,
    payment_required: IntCounterVec,
    payment_verified: IntCounterVec,
    payment_failed: IntCounterVec,
    charged_requests: IntCounterVec,
    charged_amount: IntCounterVec,
    verify_only_grants: IntCounterVec,
    settlement_unknown: IntCounterVec,
    last_success: GaugeVec,
}

/// How many counters each offer has.
const COUNTERS: usize = 8;

impl Vecs {
    fn counters(&self) -> [&IntCounterVec; COUNTERS] {
        [
            &self.requests,
            &self.payment_required,
            &self.payment_verified,
            &self.payment_failed,
            &self.charged_requests,
            &self.charged_amount,
            &self.verify_only_grants,
            &self.settlement_unknown,
        ]
    }
}

/// All verifier metrics.
pub struct Metrics {
    registry: Registry,
    vecs: Arc<Vecs>,
    live: Mutex<HashMap<LabelKey, Arc<OfferSeries>>>,
}

/// The series of one `(offer_namespace, offer_name, chain)`.
///
/// Every counter of a loaded offer is exported as soon as the offer is loaded (at 0 until used,
/// written by [`Metrics::encode`] without a child, so 10,000 idle offers cost no children), so
/// Prometheus sees every first event; the gauge appears with the first payment. Each child is
/// created at most once, under
/// `removed`, so an offer removed by a reload never gets a series back from a request that
/// still runs against the old table: that request increments a detached counter.
pub struct OfferSeries {
    key: LabelKey,
    vecs: Arc<Vecs>,
    removed: Mutex<bool>,
    requests: OnceLock<IntCounter>,
    payment_required: OnceLock<IntCounter>,
    payment_verified: OnceLock<IntCounter>,
    payment_failed: OnceLock<IntCounter>,
    charged_requests: OnceLock<IntCounter>,
    charged_amount: OnceLock<IntCounter>,
    verify_only_grants: OnceLock<IntCounter>,
    settlement_unknown: OnceLock<IntCounter>,
    last_success: OnceLock<Gauge>,
}

impl std::fmt::Debug for OfferSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OfferSeries").field(&self.key).finish()
    }
}

fn counter(name: &str, help: &str) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), &LABELS).expect("valid metric definition")
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let vecs = Vecs {
            requests: counter(
                "obol_x402_verifier_requests_total",
                "Requests evaluated by the x402 verifier for matched paid routes.",
            ),
            payment_required: counter(
                "obol_x402_verifier_payment_required_total",
                "Requests rejected with 402 because payment was required.",
            ),
            payment_verified: counter(
                "obol_x402_verifier_payment_verified_total",
                "Requests approved after successful x402 payment verification.",
            ),
            payment_failed: counter(
                "obol_x402_verifier_payment_failed_total",
                "Requests rejected after a provided x402 payment failed verification.",
            ),
            charged_requests: counter(
                "obol_x402_verifier_charged_requests_total",
                "Requests that incurred a paid x402 charge.",
            ),
            charged_amount: counter(
                "obol_x402_verifier_charged_amount_total",
                "Amount charged by paid x402 requests, in the asset's atomic units (USDC: 1e-6 USDC).",
            ),
            verify_only_grants: counter(
                "obol_x402_verifier_verify_only_grants_total",
                "Requests granted after payment verification without settlement (verify-only): access without payment moving, not revenue.",
            ),
            settlement_unknown: counter(
                "obol_x402_verifier_settlement_unknown_total",
                "Settlements attempted whose outcome was unknown when the request was answered (the buyer retries the same payment).",
            ),
            last_success: GaugeVec::new(
                Opts::new(
                    "obol_x402_verifier_last_payment_success_seconds",
                    "Unix timestamp (seconds) of the most recent successful paid x402 charge for a route.",
                ),
                &LABELS,
            )
            .expect("valid metric definition"),
        };
        for c in vecs.counters() {
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric name");
        }
        registry
            .register(Box::new(vecs.last_success.clone()))
            .expect("unique metric name");
        Metrics {
            registry,
            vecs: Arc::new(vecs),
            live: Mutex::new(HashMap::new()),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<LabelKey, Arc<OfferSeries>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The series handle of one offer (shared by every route with the same labels).
    pub fn series(&self, namespace: &str, name: &str, chain: &str) -> Arc<OfferSeries> {
        let key = key_of(namespace, name, chain);
        let mut live = self.live();
        if let Some(s) = live.get(&key) {
            return Arc::clone(s);
        }
        let s = Arc::new(OfferSeries {
            key: Arc::clone(&key),
            vecs: Arc::clone(&self.vecs),
            removed: Mutex::new(false),
            requests: OnceLock::new(),
            payment_required: OnceLock::new(),
            payment_verified: OnceLock::new(),
            payment_failed: OnceLock::new(),
            charged_requests: OnceLock::new(),
            charged_amount: OnceLock::new(),
            verify_only_grants: OnceLock::new(),
            settlement_unknown: OnceLock::new(),
            last_success: OnceLock::new(),
        });
        // The counters are exported at 0 from the moment an offer is loaded (Prometheus'
        // `increase()`/`rate()` cannot count the first events of a series it first sees already
        // above 0), but without creating their children: [`Metrics::encode`] writes the zeros. A
        // prometheus child costs about 1 KiB; 10,000 offers would hold 20 MiB of zeros.
        live.insert(key, Arc::clone(&s));
        s
    }

    /// Removes every series whose label tuple is not in `keep` (as returned by
    /// [`OfferSeries::key`]). Called after each reload with the new table's tuples.
    pub fn retain(&self, keep: &HashSet<LabelKey>) -> usize {
        let mut live = self.live();
        let gone: Vec<LabelKey> = live
            .keys()
            .filter(|k| !keep.contains(*k))
            .cloned()
            .collect();
        for key in &gone {
            if let Some(s) = live.remove(key) {
                *s.removed.lock().unwrap_or_else(|e| e.into_inner()) = true;
            }
            let v = split_key(key);
            // A series may not exist in every vec (e.g. no payment yet): that is fine.
            for c in self.vecs.counters() {
                let _ = c.remove_label_values(&v);
            }
            let _ = self.vecs.last_success.remove_label_values(&v);
        }
        gone.len()
    }

    /// The text exposition of every metric. The money counters of loaded offers without a
    /// charge yet are written as 0 (see [`Metrics::series`]).
    pub fn encode(&self) -> String {
        // Offers with counters that have no child yet, taken before the gather: a child
        // created in between is in the gathered text and skipped below, one created after it
        // was 0 at gather time.
        let zero: Vec<(LabelKey, [bool; COUNTERS])> = self
            .live()
            .values()
            .filter_map(|s| {
                let missing = s.cells().map(|c| c.get().is_none());
                missing
                    .contains(&true)
                    .then(|| (Arc::clone(&s.key), missing))
            })
            .collect();
        let mut buf = Vec::new();
        let _ = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        let text = String::from_utf8(buf).unwrap_or_default();
        if zero.is_empty() {
            return text;
        }
        with_zero_counters(&text, &zero, &self.vecs)
    }
}

/// One family of a text exposition: its `# HELP` / `# TYPE` lines and samples.
struct Family<'a> {
    name: String,
    lines: Vec<std::borrow::Cow<'a, str>>,
}

/// `text` (a text exposition) with a 0 sample for each money counter that `zero` lists and the
/// text does not have; families stay in name order.
fn with_zero_counters(text: &str, zero: &[(LabelKey, [bool; COUNTERS])], vecs: &Vecs) -> String {
    use std::borrow::Cow;
    let mut families: Vec<Family<'_>> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default().to_string();
            families.push(Family {
                name,
                lines: Vec::new(),
            });
        }
        if let Some(f) = families.last_mut() {
            f.lines.push(Cow::Borrowed(line));
        }
    }
    for (column, vec) in vecs.counters().into_iter().enumerate() {
        let desc = vec.desc()[0];
        let name = desc.fq_name.as_str();
        let index = match families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                families.push(Family {
                    name: name.to_string(),
                    lines: vec![
                        Cow::Owned(format!("# HELP {name} {}", desc.help)),
                        Cow::Owned(format!("# TYPE {name} counter")),
                    ],
                });
                families.len() - 1
            }
        };
        let family = &mut families[index];
        let present: HashSet<&str> = family
            .lines
            .iter()
            .filter_map(|l| match l {
                Cow::Borrowed(l) => l.strip_prefix(name)?.strip_prefix('{')?.rsplit_once("} "),
                Cow::Owned(_) => None,
            })
            .map(|(labels, _)| labels)
            .collect();
        let mut added = Vec::new();
        for (key, missing) in zero {
            if !missing[column] {
                continue;
            }
            let [namespace, offer, chain] = split_key(key);
            let labels =
                format!(r#"chain="{chain}",offer_name="{offer}",offer_namespace="{namespace}""#);
            if !present.contains(labels.as_str()) {
                added.push(Cow::Owned(format!("{name}{{{labels}}} 0")));
            }
        }
        family.lines.extend(added);
    }
    families.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = String::with_capacity(text.len() + zero.len() * COUNTERS * 128);
    for f in &families {
        for l in &f.lines {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

impl OfferSeries {
    pub fn key(&self) -> &LabelKey {
        &self.key
    }

    fn labels(&self) -> [&str; 3] {
        split_key(&self.key)
    }

    /// The counter cells in the order of [`Vecs::counters`].
    fn cells(&self) -> [&OnceLock<IntCounter>; COUNTERS] {
        [
            &self.requests,
            &self.payment_required,
            &self.payment_verified,
            &self.payment_failed,
            &self.charged_requests,
            &self.charged_amount,
            &self.verify_only_grants,
            &self.settlement_unknown,
        ]
    }

    fn counter<'a>(
        &'a self,
        cell: &'a OnceLock<IntCounter>,
        vec: &IntCounterVec,
    ) -> &'a IntCounter {
        cell.get_or_init(|| {
            let removed = self.removed.lock().unwrap_or_else(|e| e.into_inner());
            if *removed {
                IntCounter::new("detached", "detached").expect("valid metric definition")
            } else {
                vec.with_label_values(&self.labels())
            }
        })
    }

    /// `obol_x402_verifier_requests_total` += 1.
    pub fn request(&self) {
        self.counter(&self.requests, &self.vecs.requests).inc();
    }

    /// `obol_x402_verifier_payment_required_total` += 1.
    pub fn required(&self) {
        self.counter(&self.payment_required, &self.vecs.payment_required)
            .inc();
    }

    /// `obol_x402_verifier_payment_verified_total` += 1.
    pub fn verified(&self) {
        self.counter(&self.payment_verified, &self.vecs.payment_verified)
            .inc();
    }

    /// `obol_x402_verifier_payment_failed_total` += 1.
    pub fn failed(&self) {
        self.counter(&self.payment_failed, &self.vecs.payment_failed)
            .inc();
    }

    /// `obol_x402_verifier_verify_only_grants_total` += 1.
    pub fn granted_unpaid(&self) {
        self.counter(&self.verify_only_grants, &self.vecs.verify_only_grants)
            .inc();
    }

    /// `obol_x402_verifier_settlement_unknown_total` += 1.
    pub fn settlement_unknown(&self) {
        self.counter(&self.settlement_unknown, &self.vecs.settlement_unknown)
            .inc();
    }

    /// Records a charge of `amount` atomic units: the charged counter, the amount and the
    /// last-success timestamp.
    pub fn charged(&self, amount: U256) {
        self.counter(&self.charged_requests, &self.vecs.charged_requests)
            .inc();
        // The counter is a u64 of atomic units: it would wrap after 18.4 units of an
        // 18-decimal token, so it saturates instead (USDC: after 1.8e13 USDC).
        let total = self.counter(&self.charged_amount, &self.vecs.charged_amount);
        let add = u64::try_from(amount).unwrap_or(u64::MAX);
        let room = u64::MAX - total.get();
        if add > room {
            tracing::warn!(
                offer = %self.labels()[1],
                "obol_x402_verifier_charged_amount_total reached the u64 range; it stays at its maximum"
            );
            total.inc_by(room);
        } else {
            total.inc_by(add);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.last_success
            .get_or_init(|| {
                let removed = self.removed.lock().unwrap_or_else(|e| e.into_inner());
                if *removed {
                    Gauge::new("detached", "detached").expect("valid metric definition")
                } else {
                    self.vecs.last_success.with_label_values(&self.labels())
                }
            })
            .set(now);
    }

    /// Current value of a counter (tests, diagnostics): `charged_requests`.
    pub fn charged_requests(&self) -> u64 {
        self.charged_requests
            .get()
            .map(IntCounter::get)
            .unwrap_or(0)
    }

    /// Current value of `charged_amount`.
    pub fn charged_amount(&self) -> u64 {
        self.charged_amount.get().map(IntCounter::get).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(m: &Metrics, needle: &str) -> Vec<String> {
        m.encode()
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(needle))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn names_help_and_labels() {
        let m = Metrics::new();
        let s = m.series("local", "demo", "eip155:84532");
        s.request();
        s.required();
        s.verified();
        s.failed();
        s.charged(U256::from(10_000u64));
        s.charged(U256::from(10_000u64));
        let text = m.encode();
        for name in [
            "obol_x402_verifier_requests_total",
            "obol_x402_verifier_payment_required_total",
            "obol_x402_verifier_payment_verified_total",
            "obol_x402_verifier_payment_failed_total",
            "obol_x402_verifier_charged_requests_total",
            "obol_x402_verifier_charged_amount_total",
            "obol_x402_verifier_verify_only_grants_total",
            "obol_x402_verifier_settlement_unknown_total",
            "obol_x402_verifier_last_payment_success_seconds",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name}")),
                "{name} missing:\n{text}"
            );
        }
        assert!(text.contains(
            "# HELP obol_x402_verifier_requests_total Requests evaluated by the x402 verifier for matched paid routes."
        ));
        assert!(text.contains("# TYPE obol_x402_verifier_last_payment_success_seconds gauge"));
        assert!(text.contains(
            r#"obol_x402_verifier_charged_amount_total{chain="eip155:84532",offer_name="demo",offer_namespace="local"} 20000"#
        ), "{text}");
        assert!(text.contains(
            r#"obol_x402_verifier_charged_requests_total{chain="eip155:84532",offer_name="demo",offer_namespace="local"} 2"#
        ));
        assert!(!text.contains("process_"), "no process collectors");
    }

    #[test]
    fn loaded_offers_export_every_counter_at_zero() {
        let m = Metrics::new();
        let s = m.series("local", "quiet", "eip155:84532");
        let zeros = lines(&m, "quiet");
        assert_eq!(zeros.len(), COUNTERS, "{zeros:?}");
        assert!(zeros.iter().all(|l| l.ends_with(" 0")), "{zeros:?}");
        s.request();
        let after = lines(&m, "quiet");
        assert_eq!(after.len(), COUNTERS, "{after:?}");
        assert!(
            after
                .iter()
                .any(|l| l.starts_with("obol_x402_verifier_requests_total{") && l.ends_with(" 1")),
            "{after:?}"
        );
        // The gauge appears only with a payment.
        assert!(!after.iter().any(|l| l.contains("last_payment")));
    }

    #[test]
    fn money_zeros_are_written_once_in_their_families() {
        let m = Metrics::new();
        let quiet = m.series("local", "quiet", "eip155:84532");
        let text = m.encode();
        // No child exists yet: the families are written with their HELP and TYPE lines.
        for name in [
            "obol_x402_verifier_charged_requests_total",
            "obol_x402_verifier_charged_amount_total",
        ] {
            assert_eq!(
                text.matches(&format!("# TYPE {name} counter")).count(),
                1,
                "{text}"
            );
            assert!(
                text.contains(&format!(
                    r#"{name}{{chain="eip155:84532",offer_name="quiet",offer_namespace="local"}} 0"#
                )),
                "{text}"
            );
        }
        // One offer charged, one not: one line each, the real value for the charged one.
        let paid = m.series("local", "paid", "eip155:84532");
        paid.charged(U256::from(3u64));
        let text = m.encode();
        assert_eq!(lines(&m, "charged_amount_total{").len(), 2, "{text}");
        assert!(text.contains(r#"obol_x402_verifier_charged_amount_total{chain="eip155:84532",offer_name="paid",offer_namespace="local"} 3"#), "{text}");
        assert!(text.contains(r#"obol_x402_verifier_charged_amount_total{chain="eip155:84532",offer_name="quiet",offer_namespace="local"} 0"#), "{text}");
        assert_eq!(
            text.matches("# TYPE obol_x402_verifier_charged_amount_total counter")
                .count(),
            1
        );
        // Families stay in name order.
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        let mut sorted = types.clone();
        sorted.sort();
        assert_eq!(types, sorted);
        drop(quiet);
    }

    #[test]
    fn gauge_only_exists_after_a_payment() {
        let m = Metrics::new();
        let s = m.series("local", "demo", "eip155:84532");
        s.request();
        assert!(lines(&m, "last_payment_success_seconds{").is_empty());
        s.charged(U256::from(1u64));
        let l = lines(&m, "last_payment_success_seconds{");
        assert_eq!(l.len(), 1);
        let v: f64 = l[0].rsplit(' ').next().unwrap().parse().unwrap();
        assert!(v > 1.7e9);
    }

    #[test]
    fn retain_removes_every_series_of_dropped_offers_and_keeps_others() {
        let m = Metrics::new();
        let a = m.series("local", "a", "eip155:84532");
        let b = m.series("local", "b", "eip155:31337");
        a.charged(U256::from(5u64));
        b.charged(U256::from(7u64));
        b.failed();
        b.request();
        b.required();
        b.verified();
        let keep: HashSet<LabelKey> = [b.key().clone()].into_iter().collect();
        assert_eq!(m.retain(&keep), 1);
        assert!(lines(&m, "offer_name=\"a\"").is_empty(), "{}", m.encode());
        assert_eq!(
            lines(&m, "offer_name=\"b\"").len(),
            COUNTERS + 1,
            "every counter and the gauge"
        );
        // A request still holding the old handles does not bring the series back.
        a.request();
        a.failed();
        a.charged(U256::from(5u64));
        assert!(lines(&m, "offer_name=\"a\"").is_empty());
        // The same tuple, re-added later, starts from zero.
        let a2 = m.series("local", "a", "eip155:84532");
        assert_eq!(a2.charged_requests(), 0);
        // Series handles are shared for the same tuple.
        let b2 = m.series("local", "b", "eip155:31337");
        assert_eq!(b2.charged_requests(), 1);
    }

    #[test]
    fn label_values_are_sanitised() {
        assert_eq!(label_value("eip155:84532"), "eip155:84532");
        assert_eq!(label_value("a,b{c}\"d\\"), "a_b_c__d_");
    }

    #[test]
    fn huge_amounts_saturate() {
        let m = Metrics::new();
        let s = m.series("local", "big", "eip155:1");
        s.charged(U256::from(u128::MAX));
        s.charged(U256::from(1u64));
        assert_eq!(s.charged_amount(), u64::MAX);
    }
}
