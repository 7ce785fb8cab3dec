//! The fallback without Prometheus: read a running verifier's `/metrics` and report lifetime
//! totals since that verifier started (its counters start at 0 on every start, and the series
//! of deleted offers are removed). Money comes from `obol_x402_verifier_charged_amount_total`,
//! read exactly.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::OfferFilter;
use super::exposition::{self, ParseError, Sample};
use super::prometheus::reqwest_detail;
use super::report::{By, OfferData, OfferKey, Report, Settlement, Source};
use super::value::{Charged, Decimal};
use crate::x402::networks::Registry;

const PREFIX: &str = "obol_x402_verifier_";
const TIMEOUT: Duration = Duration::from_secs(15);

/// Why a verifier's `/metrics` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("invalid metrics URL {url:?}: {detail}")]
    BadUrl { url: String, detail: String },
    #[error("cannot reach the verifier at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("{url} answered HTTP {status}")]
    Http { url: String, status: u16 },
    #[error("{url} is not a Prometheus exposition: {source}")]
    Parse {
        url: String,
        #[source]
        source: ParseError,
    },
    #[error("{url} has no obol_x402_verifier_* series")]
    NoSeries { url: String },
    #[error("{url} has no series for offer {offer}")]
    NoOffer { url: String, offer: String },
    #[error("{url}: {series}: {detail}")]
    BadValue {
        url: String,
        series: String,
        detail: String,
    },
}

impl ScrapeError {
    /// What the user can do about it.
    pub fn hint(&self) -> String {
        match self {
            ScrapeError::BadUrl { .. } => "give the verifier's URL, e.g. --scrape http://127.0.0.1:8080/metrics".into(),
            ScrapeError::Unreachable { .. } => "check that `obol serve verifier` runs and listens there (its --listen address; /metrics is on the same port); with a Prometheus, use --prometheus URL or --kube".into(),
            ScrapeError::Http { .. } | ScrapeError::Parse { .. } => "point --scrape at the /metrics of `obol serve verifier`".into(),
            ScrapeError::NoSeries { .. } => "either this is not an obol verifier's /metrics, or the verifier serves no offers yet (`obol sell list`, `obol sell create`)".into(),
            ScrapeError::NoOffer { .. } => "check the offer's name (`obol sell list`); without --offer every offer is shown".into(),
            ScrapeError::BadValue { .. } => "the verifier exposes something other than a count there; please report this as a bug".into(),
        }
    }
}

/// `http://host:port` or `http://host:port/` means its `/metrics`.
pub fn metrics_url(url: &str) -> Result<String, ScrapeError> {
    let bad = |detail: String| ScrapeError::BadUrl {
        url: url.to_string(),
        detail,
    };
    let mut u = reqwest::Url::parse(url.trim()).map_err(|e| bad(e.to_string()))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad("use an http:// or https:// URL".into()));
    }
    if u.path() == "/" || u.path().is_empty() {
        u.set_path("/metrics");
    }
    Ok(u.to_string())
}

/// `GET url` and the exposition text.
pub async fn fetch(url: &str) -> Result<String, ScrapeError> {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("obol/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ScrapeError::BadUrl {
            url: url.to_string(),
            detail: e.to_string(),
        })?;
    let unreachable = |e: reqwest::Error| ScrapeError::Unreachable {
        url: url.to_string(),
        detail: reqwest_detail(&e),
    };
    let resp = client.get(url).send().await.map_err(unreachable)?;
    if !resp.status().is_success() {
        return Err(ScrapeError::Http {
            url: url.to_string(),
            status: resp.status().as_u16(),
        });
    }
    resp.text().await.map_err(unreachable)
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The counters of one offer on one chain, as read.
#[derive(Default)]
struct Counters {
    charged_requests: Option<Decimal>,
    charged_amount: Option<Decimal>,
    required: Option<Decimal>,
    verified: Option<Decimal>,
    failed: Option<Decimal>,
    last_success: Option<f64>,
}

/// Lifetime data per offer and chain from an exposition text, at time `now` (Unix seconds).
pub fn collect(
    url: &str,
    text: &str,
    filter: Option<&OfferFilter>,
    now: f64,
) -> Result<BTreeMap<OfferKey, OfferData>, ScrapeError> {
    let samples = exposition::parse(text).map_err(|source| ScrapeError::Parse {
        url: url.to_string(),
        source,
    })?;
    let ours: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name.starts_with(PREFIX))
        .collect();
    if ours.is_empty() {
        return Err(ScrapeError::NoSeries {
            url: url.to_string(),
        });
    }
    let mut by_key: BTreeMap<OfferKey, Counters> = BTreeMap::new();
    for s in ours {
        let key = OfferKey {
            namespace: s.label("offer_namespace").unwrap_or_default().to_string(),
            name: s.label("offer_name").unwrap_or_default().to_string(),
            chain: s.label("chain").unwrap_or_default().to_string(),
        };
        if filter.is_some_and(|f| !f.matches(&key.namespace, &key.name)) {
            continue;
        }
        let metric = &s.name[PREFIX.len()..];
        let bad = |detail: String| ScrapeError::BadValue {
            url: url.to_string(),
            series: format!("{}{{{}}}", s.name, label_text(s)),
            detail,
        };
        let c = by_key.entry(key).or_default();
        let slot = match metric {
            "charged_requests_total" => &mut c.charged_requests,
            "charged_amount_total" => &mut c.charged_amount,
            "payment_required_total" => &mut c.required,
            "payment_verified_total" => &mut c.verified,
            "payment_failed_total" => &mut c.failed,
            "last_payment_success_seconds" => {
                c.last_success = s.value.parse::<f64>().ok().filter(|v| v.is_finite());
                continue;
            }
            _ => continue,
        };
        *slot = Some(Decimal::parse(&s.value).map_err(|e| bad(e.to_string()))?);
    }
    if by_key.is_empty() {
        return Err(ScrapeError::NoOffer {
            url: url.to_string(),
            offer: filter.map(ToString::to_string).unwrap_or_default(),
        });
    }
    let count = |d: &Option<Decimal>| {
        d.as_ref()
            .map(|d| super::report::saturating_u64(d.round_half_up()))
            .unwrap_or(0)
    };
    Ok(by_key
        .into_iter()
        .map(|(key, c)| {
            let charged = c.charged_requests.as_ref().map(|r| {
                Charged::from_counters(r, c.charged_amount.as_ref().unwrap_or(&Decimal::zero()))
            });
            let verified = count(&c.verified);
            let attempts = count(&c.required)
                .saturating_add(verified)
                .saturating_add(count(&c.failed));
            let has_attempts = c.required.is_some() || c.verified.is_some() || c.failed.is_some();
            let data = OfferData {
                requests: charged.map(|ch| ch.requests),
                // Without the amount counter (an older verifier) the money is unknown.
                revenue: c.charged_amount.as_ref().and(charged.map(|ch| ch.amount)),
                settlement: has_attempts.then_some(Settlement::Counts { verified, attempts }),
                last_payment_age_seconds: c.last_success.map(|t| (now - t).max(0.0)),
            };
            (key, data)
        })
        .collect())
}

fn label_text(s: &Sample) -> String {
    s.labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The lifetime report of the verifier whose metrics are at `url`.
pub async fn from_scrape(
    url: &str,
    by: By,
    filter: Option<&OfferFilter>,
    registry: &Registry,
) -> Result<Report, ScrapeError> {
    let url = metrics_url(url)?;
    let text = fetch(&url).await?;
    let data = collect(&url, &text, filter, now_unix())?;
    Ok(Report::build(
        Source::Scrape { url: url.clone() },
        by,
        &data,
        registry,
    ))
}

#[cfg(test)]
mod tests {
    use alloy_primitives::U256;

    use super::*;
    use crate::earnings::value::Estimate;

    const TEXT: &str = r#"# HELP obol_x402_verifier_charged_requests_total Requests that incurred a paid x402 charge.
# TYPE obol_x402_verifier_charged_requests_total counter
obol_x402_verifier_charged_requests_total{chain="eip155:31337",offer_name="demo",offer_namespace="local"} 3
obol_x402_verifier_charged_requests_total{chain="eip155:84532",offer_name="inherit",offer_namespace="local"} 2
obol_x402_verifier_charged_requests_total{chain="eip155:84532",offer_name="idle",offer_namespace="local"} 0
# TYPE obol_x402_verifier_charged_amount_total counter
obol_x402_verifier_charged_amount_total{chain="eip155:31337",offer_name="demo",offer_namespace="local"} 30000
obol_x402_verifier_charged_amount_total{chain="eip155:84532",offer_name="inherit",offer_namespace="local"} 18446744073709551615
obol_x402_verifier_charged_amount_total{chain="eip155:84532",offer_name="idle",offer_namespace="local"} 0
obol_x402_verifier_payment_required_total{chain="eip155:31337",offer_name="demo",offer_namespace="local"} 4
obol_x402_verifier_payment_verified_total{chain="eip155:31337",offer_name="demo",offer_namespace="local"} 3
obol_x402_verifier_payment_failed_total{chain="eip155:31337",offer_name="demo",offer_namespace="local"} 1
obol_x402_verifier_requests_total{chain="eip155:31337",offer_name="demo",offer_namespace="local"} 8
obol_x402_verifier_last_payment_success_seconds{chain="eip155:31337",offer_name="demo",offer_namespace="local"} 1000.5
process_cpu_seconds_total 1.5
"#;

    fn key(name: &str, chain: &str) -> OfferKey {
        OfferKey {
            namespace: "local".into(),
            name: name.into(),
            chain: chain.into(),
        }
    }

    fn exact(v: u64) -> Option<Estimate> {
        Some(Estimate {
            value: U256::from(v),
            approximate: false,
        })
    }

    #[test]
    fn lifetime_counters_per_offer_and_chain() {
        let m = collect("u", TEXT, None, 1130.5).unwrap();
        assert_eq!(m.len(), 3);
        let demo = &m[&key("demo", "eip155:31337")];
        assert_eq!(demo.requests, exact(3));
        assert_eq!(demo.revenue, exact(30_000));
        assert_eq!(
            demo.settlement,
            Some(Settlement::Counts {
                verified: 3,
                attempts: 8
            })
        );
        assert_eq!(demo.last_payment_age_seconds, Some(130.0));
        // A u64 counter beyond 2^53 is still exact: it never went through a float.
        let inherit = &m[&key("inherit", "eip155:84532")];
        assert_eq!(inherit.revenue, exact(u64::MAX));
        assert_eq!(inherit.settlement, None);
        assert_eq!(inherit.last_payment_age_seconds, None);
        let idle = &m[&key("idle", "eip155:84532")];
        assert_eq!(idle.revenue, exact(0));
    }

    #[test]
    fn filters_and_errors() {
        let f: OfferFilter = "local/demo".parse().unwrap();
        let m = collect("u", TEXT, Some(&f), 2000.0).unwrap();
        assert_eq!(m.len(), 1);
        let f: OfferFilter = "other/demo".parse().unwrap();
        let e = collect("u", TEXT, Some(&f), 0.0).unwrap_err();
        assert_eq!(e.to_string(), "u has no series for offer other/demo");
        let e = collect("u", "up 1\n", None, 0.0).unwrap_err();
        assert!(matches!(e, ScrapeError::NoSeries { .. }));
        assert!(e.hint().contains("no offers"), "{}", e.hint());
        let e = collect("u", "<html>", None, 0.0).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("u is not a Prometheus exposition: line 1"),
            "{e}"
        );
        let e = collect(
            "u",
            r#"obol_x402_verifier_charged_amount_total{offer_name="a,b"} NaN"#,
            None,
            0.0,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"u: obol_x402_verifier_charged_amount_total{offer_name="a,b"}: sample value "NaN" is not finite"#
        );
    }

    #[test]
    fn fractional_amounts_are_flagged() {
        let text = "obol_x402_verifier_charged_requests_total{offer_namespace=\"a\",offer_name=\"b\",chain=\"eip155:1\"} 1\n\
                    obol_x402_verifier_charged_amount_total{offer_namespace=\"a\",offer_name=\"b\",chain=\"eip155:1\"} 10.5\n";
        let m = collect("u", text, None, 0.0).unwrap();
        let d = m.values().next().unwrap();
        assert_eq!(
            d.revenue,
            Some(Estimate {
                value: U256::from(11u8),
                approximate: true
            })
        );
    }

    #[test]
    fn metrics_urls() {
        assert_eq!(
            metrics_url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080/metrics"
        );
        assert_eq!(
            metrics_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080/metrics"
        );
        assert_eq!(
            metrics_url("http://h/x/metrics").unwrap(),
            "http://h/x/metrics"
        );
        assert!(metrics_url("h:8080").is_err());
        assert!(metrics_url("nope").is_err());
    }
}
