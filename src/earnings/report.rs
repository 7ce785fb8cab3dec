//! The earnings report: one row per offer and chain (or per chain), and a total per chain.
//!
//! Built from [`OfferData`] gathered by either source (Prometheus recording rules or a verifier
//! scrape); rendering is in [`super::render`].

use std::collections::BTreeMap;

use alloy_primitives::U256;

use super::value::Estimate;
use crate::x402::networks::Registry;

/// Decimals assumed for a chain the registry does not know (USDC's).
pub const DEFAULT_DECIMALS: u8 = 6;
/// Asset symbol assumed for a chain the registry does not know.
pub const DEFAULT_SYMBOL: &str = "USDC";

/// The revenue window of the Prometheus recording rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// `x402:revenue:24h_by_offer_chain`, `x402:revenue_amount:24h_by_offer_chain`.
    Day,
    /// `x402:revenue:7d_by_offer_chain`, `x402:revenue_amount:7d_by_offer_chain`.
    Week,
}

impl Window {
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Day => "24h",
            Window::Week => "7d",
        }
    }
}

/// How rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// One row per offer and chain, then a total per chain.
    Offer,
    /// One row per chain.
    Chain,
}

/// Where the numbers come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Recording rules over a window, from the Prometheus described by `target`.
    Prometheus { target: String, window: Window },
    /// A verifier's `/metrics`: lifetime totals since that verifier started.
    Scrape { url: String },
}

/// An offer on a chain, as labelled on the verifier's series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OfferKey {
    pub namespace: String,
    pub name: String,
    /// CAIP-2 id (`eip155:84532`).
    pub chain: String,
}

/// How many payment attempts settled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Settlement {
    /// `x402:settlement_rate:1h_by_offer_chain`, a ratio in 0..=1.
    Rate(f64),
    /// The counters behind the ratio (scrape): verified / (402 + verified + failed).
    Counts { verified: u64, attempts: u64 },
}

impl Settlement {
    /// The ratio in 0..=1; `None` when nothing was attempted.
    pub fn rate(self) -> Option<f64> {
        match self {
            Settlement::Rate(r) if r.is_finite() => Some(r),
            Settlement::Rate(_) => None,
            Settlement::Counts { attempts: 0, .. } => None,
            Settlement::Counts { verified, attempts } => Some(verified as f64 / attempts as f64),
        }
    }
}

/// What is known of one offer on one chain; any part may be missing (a cold offer, no payment
/// yet).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OfferData {
    /// Charged requests.
    pub requests: Option<Estimate>,
    /// Charged amount, atomic units of the chain's asset.
    pub revenue: Option<Estimate>,
    pub settlement: Option<Settlement>,
    pub last_payment_age_seconds: Option<f64>,
}

/// A chain as shown: its registry name when known, and the asset amounts are counted in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInfo {
    pub caip2: String,
    /// The registry's name (`base-sepolia`), `None` for chains it does not know.
    pub name: Option<String>,
    pub symbol: String,
    pub decimals: u8,
}

impl ChainInfo {
    /// Looks `caip2` up in the registry; unknown chains keep their CAIP-2 id and are counted in
    /// USDC's 6 decimals.
    pub fn lookup(registry: &Registry, caip2: &str) -> ChainInfo {
        match registry.resolve(caip2) {
            Some(n) => ChainInfo {
                caip2: caip2.to_string(),
                name: Some(n.name.clone()),
                symbol: n
                    .asset
                    .as_ref()
                    .map_or(DEFAULT_SYMBOL.to_string(), |a| a.symbol.clone()),
                decimals: n.asset.as_ref().map_or(DEFAULT_DECIMALS, |a| a.decimals),
            },
            None => ChainInfo {
                caip2: caip2.to_string(),
                name: None,
                symbol: DEFAULT_SYMBOL.to_string(),
                decimals: DEFAULT_DECIMALS,
            },
        }
    }

    /// The name when known, else the CAIP-2 id.
    pub fn display(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.caip2)
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `(namespace, name)`; `None` on per-chain rows and totals.
    pub offer: Option<(String, String)>,
    pub chain: ChainInfo,
    /// `None`: no data (e.g. an offer scraped only once so far).
    pub requests_charged: Option<Estimate>,
    /// Atomic units of the chain's asset.
    pub revenue: Option<Estimate>,
    pub settlement: Option<Settlement>,
    pub last_payment_age_seconds: Option<f64>,
}

impl Row {
    pub fn approximate(&self) -> bool {
        self.requests_charged.is_some_and(|e| e.approximate)
            || self.revenue.is_some_and(|e| e.approximate)
    }
}

/// The whole report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub source: Source,
    pub by: By,
    /// Per offer and chain (sorted by namespace, name, chain), or per chain.
    pub rows: Vec<Row>,
    /// One per chain, sorted by CAIP-2 id.
    pub totals: Vec<Row>,
}

impl Report {
    pub fn build(
        source: Source,
        by: By,
        data: &BTreeMap<OfferKey, OfferData>,
        registry: &Registry,
    ) -> Report {
        let offer_rows: Vec<Row> = data
            .iter()
            .map(|(key, d)| Row {
                offer: Some((key.namespace.clone(), key.name.clone())),
                chain: ChainInfo::lookup(registry, &key.chain),
                requests_charged: d.requests,
                revenue: d.revenue,
                settlement: d.settlement,
                last_payment_age_seconds: d.last_payment_age_seconds,
            })
            .collect();
        let mut by_chain: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
        for row in &offer_rows {
            by_chain.entry(&row.chain.caip2).or_default().push(row);
        }
        let totals: Vec<Row> = by_chain.values().map(|rows| total(rows)).collect();
        let rows = match by {
            By::Offer => offer_rows,
            By::Chain => totals.clone(),
        };
        Report {
            source,
            by,
            rows,
            totals,
        }
    }

    /// Whether any number is an estimate.
    pub fn approximate(&self) -> bool {
        self.rows.iter().chain(&self.totals).any(Row::approximate)
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

fn sum(values: impl Iterator<Item = Option<Estimate>>) -> Option<Estimate> {
    values.flatten().fold(None, |acc: Option<Estimate>, e| {
        Some(match acc {
            None => e,
            Some(a) => Estimate {
                value: a.value.saturating_add(e.value),
                approximate: a.approximate
                    || e.approximate
                    || a.value.checked_add(e.value).is_none(),
            },
        })
    })
}

/// The per-chain total of `rows` (all on one chain, at least one).
fn total(rows: &[&Row]) -> Row {
    let settlement = if rows.len() == 1 {
        rows[0].settlement
    } else {
        // Ratios cannot be added up; counts can.
        rows.iter()
            .map(|r| match r.settlement {
                Some(Settlement::Counts { verified, attempts }) => Some((verified, attempts)),
                _ => None,
            })
            .try_fold((0u64, 0u64), |(v, a), c| {
                c.map(|(cv, ca)| (v.saturating_add(cv), a.saturating_add(ca)))
            })
            .map(|(verified, attempts)| Settlement::Counts { verified, attempts })
    };
    Row {
        offer: None,
        chain: rows[0].chain.clone(),
        requests_charged: sum(rows.iter().map(|r| r.requests_charged)),
        revenue: sum(rows.iter().map(|r| r.revenue)),
        settlement,
        last_payment_age_seconds: rows
            .iter()
            .filter_map(|r| r.last_payment_age_seconds)
            .reduce(f64::min),
    }
}

/// `U256` as `u64`, saturating (counts of requests never come near 2^64).
pub fn saturating_u64(v: U256) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(v: u64, approximate: bool) -> Estimate {
        Estimate {
            value: U256::from(v),
            approximate,
        }
    }

    fn key(ns: &str, name: &str, chain: &str) -> OfferKey {
        OfferKey {
            namespace: ns.into(),
            name: name.into(),
            chain: chain.into(),
        }
    }

    fn data(req: u64, amount: u64, age: Option<f64>, s: Option<Settlement>) -> OfferData {
        OfferData {
            requests: Some(est(req, false)),
            revenue: Some(est(amount, false)),
            settlement: s,
            last_payment_age_seconds: age,
        }
    }

    fn sample() -> BTreeMap<OfferKey, OfferData> {
        let mut m = BTreeMap::new();
        m.insert(
            key("llm", "qwen", "eip155:84532"),
            data(
                3,
                30_000,
                Some(120.0),
                Some(Settlement::Counts {
                    verified: 3,
                    attempts: 6,
                }),
            ),
        );
        m.insert(
            key("local", "demo", "eip155:84532"),
            data(
                2,
                40_000,
                Some(5.0),
                Some(Settlement::Counts {
                    verified: 2,
                    attempts: 2,
                }),
            ),
        );
        m.insert(
            key("local", "demo", "eip155:999999"),
            data(1, 7, None, None),
        );
        // A cold offer: nothing but a settlement rate.
        m.insert(
            key("local", "cold", "eip155:84532"),
            OfferData {
                settlement: Some(Settlement::Counts {
                    verified: 0,
                    attempts: 0,
                }),
                ..Default::default()
            },
        );
        m
    }

    #[test]
    fn rows_per_offer_and_totals_per_chain() {
        let r = Report::build(
            Source::Scrape { url: "u".into() },
            By::Offer,
            &sample(),
            &Registry::builtin(),
        );
        let names: Vec<_> = r
            .rows
            .iter()
            .map(|row| {
                let (ns, n) = row.offer.clone().unwrap();
                format!("{ns}/{n}@{}", row.chain.display())
            })
            .collect();
        assert_eq!(
            names,
            [
                "llm/qwen@base-sepolia",
                "local/cold@base-sepolia",
                "local/demo@base-sepolia",
                "local/demo@eip155:999999"
            ]
        );
        assert_eq!(r.rows[1].requests_charged, None);
        assert_eq!(r.totals.len(), 2);
        let t = &r.totals[0];
        assert_eq!(t.chain.caip2, "eip155:84532");
        assert_eq!(t.chain.symbol, "USDC");
        assert_eq!(t.chain.decimals, 6);
        assert_eq!(t.requests_charged, Some(est(5, false)));
        assert_eq!(t.revenue, Some(est(70_000, false)));
        assert_eq!(t.last_payment_age_seconds, Some(5.0));
        assert_eq!(
            t.settlement,
            Some(Settlement::Counts {
                verified: 5,
                attempts: 8
            })
        );
        assert_eq!(t.settlement.unwrap().rate(), Some(0.625));
        let unknown = &r.totals[1];
        assert_eq!(unknown.chain.name, None);
        assert_eq!(unknown.chain.display(), "eip155:999999");
        assert_eq!(unknown.revenue, Some(est(7, false)));
        assert!(!r.approximate());
    }

    #[test]
    fn rows_per_chain() {
        let r = Report::build(
            Source::Scrape { url: "u".into() },
            By::Chain,
            &sample(),
            &Registry::builtin(),
        );
        assert_eq!(r.rows, r.totals);
        assert!(r.rows.iter().all(|row| row.offer.is_none()));
    }

    #[test]
    fn rates_from_prometheus_are_not_added_up() {
        let mut m = BTreeMap::new();
        m.insert(
            key("a", "x", "eip155:8453"),
            data(1, 10, None, Some(Settlement::Rate(0.5))),
        );
        m.insert(
            key("a", "y", "eip155:8453"),
            data(1, 10, None, Some(Settlement::Rate(1.0))),
        );
        m.insert(
            key("a", "z", "eip155:1"),
            data(1, 10, None, Some(Settlement::Rate(0.25))),
        );
        let r = Report::build(
            Source::Scrape { url: "u".into() },
            By::Offer,
            &m,
            &Registry::builtin(),
        );
        let base = r
            .totals
            .iter()
            .find(|t| t.chain.caip2 == "eip155:8453")
            .unwrap();
        assert_eq!(base.settlement, None);
        assert_eq!(base.chain.display(), "base");
        // A chain with a single offer keeps that offer's rate.
        let one = r
            .totals
            .iter()
            .find(|t| t.chain.caip2 == "eip155:1")
            .unwrap();
        assert_eq!(one.settlement, Some(Settlement::Rate(0.25)));
    }

    #[test]
    fn an_estimate_makes_its_total_an_estimate() {
        let mut m = sample();
        m.get_mut(&key("llm", "qwen", "eip155:84532"))
            .unwrap()
            .revenue
            .as_mut()
            .unwrap()
            .approximate = true;
        let r = Report::build(
            Source::Scrape { url: "u".into() },
            By::Offer,
            &m,
            &Registry::builtin(),
        );
        assert!(r.approximate());
        assert!(r.totals[0].approximate());
        assert!(!r.totals[1].approximate());
    }

    #[test]
    fn settlement_rates() {
        assert_eq!(Settlement::Rate(0.5).rate(), Some(0.5));
        assert_eq!(Settlement::Rate(f64::NAN).rate(), None);
        assert_eq!(
            Settlement::Counts {
                verified: 0,
                attempts: 0
            }
            .rate(),
            None
        );
        assert_eq!(
            Settlement::Counts {
                verified: 1,
                attempts: 4
            }
            .rate(),
            Some(0.25)
        );
    }
}
