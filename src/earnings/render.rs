//! The report as a table (for people) or JSON (for scripts, stable field names).

use comfy_table::{CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use super::report::{By, Report, Row, Source, saturating_u64};
use super::value::Estimate;
use crate::x402::amount::format_atomic;

/// Marks an estimate in the table.
pub const APPROX: &str = "≈";

/// "just now", "42s ago", "2m ago", "3h ago", "5d ago"; "-" when unknown.
pub fn format_age(seconds: Option<f64>) -> String {
    let Some(s) = seconds.filter(|s| s.is_finite()) else {
        return "-".into();
    };
    if s < 1.0 {
        return "just now".into();
    }
    let s = s as u64;
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86_400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// "0.04 USDC", "≈0.040001 USDC", "-" when unknown.
pub fn format_money(e: Option<Estimate>, decimals: u8, symbol: &str) -> String {
    match e {
        None => "-".into(),
        Some(e) => format!(
            "{}{} {symbol}",
            if e.approximate { APPROX } else { "" },
            format_atomic(e.value, decimals)
        ),
    }
}

/// "4", "≈4", "-".
pub fn format_count(e: Option<Estimate>) -> String {
    match e {
        None => "-".into(),
        Some(e) => format!(
            "{}{}",
            if e.approximate { APPROX } else { "" },
            saturating_u64(e.value)
        ),
    }
}

/// "80.0%", "-".
pub fn format_rate(rate: Option<f64>) -> String {
    match rate {
        Some(r) if r.is_finite() => format!("{:.1}%", r * 100.0),
        _ => "-".into(),
    }
}

/// The line above the table: what the numbers are and where they come from.
pub fn title(report: &Report) -> String {
    match &report.source {
        Source::Prometheus { target, window } => format!(
            "Earnings over the last {} from Prometheus {target} (x402 recording rules)",
            window.as_str()
        ),
        Source::Scrape { url } => format!(
            "Lifetime totals since the verifier started, read from {url} (no Prometheus; offers deleted since are not counted)"
        ),
    }
}

/// The table, with its title line and a note on estimates when there are any.
pub fn table(report: &Report) -> String {
    let settled_header = match report.source {
        Source::Prometheus { .. } => "SETTLED (1h)",
        Source::Scrape { .. } => "SETTLED",
    };
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    let with_offer = report.by == By::Offer;
    let mut header = Vec::new();
    if with_offer {
        header.push("OFFER");
    }
    header.extend([
        "CHAIN",
        "CHARGED",
        "REVENUE",
        settled_header,
        "LAST PAYMENT",
    ]);
    t.set_header(header);
    let row_cells = |row: &Row, label: Option<&str>| {
        let mut cells = Vec::new();
        if with_offer {
            cells.push(match (&row.offer, label) {
                (Some((ns, name)), _) => format!("{ns}/{name}"),
                (None, Some(l)) => l.to_string(),
                (None, None) => String::new(),
            });
        }
        cells.extend([
            row.chain.display().to_string(),
            format_count(row.requests_charged),
            format_money(row.revenue, row.chain.decimals, &row.chain.symbol),
            format_rate(row.settlement.and_then(|s| s.rate())),
            format_age(row.last_payment_age_seconds),
        ]);
        cells
    };
    for row in &report.rows {
        t.add_row(row_cells(row, None));
    }
    if with_offer {
        for total in &report.totals {
            t.add_row(row_cells(total, Some("TOTAL")));
        }
    }
    let first_number = usize::from(with_offer) + 1;
    for i in first_number..first_number + 3 {
        if let Some(col) = t.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = format!("{}\n{t}", title(report));
    if report.approximate() {
        out.push_str(&format!(
            "\n{APPROX} estimate: Prometheus extrapolates increase() to the edges of the window, and this value could not be brought back to whole charges (see docs/metrics.md)"
        ));
    }
    out
}

/// One row in JSON.
#[derive(Debug, Serialize)]
pub struct JsonRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer_namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer_name: Option<String>,
    /// CAIP-2 id.
    pub chain: String,
    /// Registry name, `null` when the chain is unknown.
    pub chain_name: Option<String>,
    pub asset: String,
    pub decimals: u8,
    pub requests_charged: Option<u64>,
    /// Exact decimal in the asset (`"0.04"`).
    pub revenue: Option<String>,
    /// Atomic units (`"40000"`).
    pub revenue_atomic: Option<String>,
    /// `true` when `requests_charged` or `revenue` is an estimate.
    pub approximate: bool,
    /// 0..=1
    pub settlement_rate: Option<f64>,
    pub last_payment_age_seconds: Option<f64>,
}

/// The whole report in JSON.
#[derive(Debug, Serialize)]
pub struct JsonReport {
    /// `prometheus` or `scrape`.
    pub source: &'static str,
    /// The Prometheus (URL or Kubernetes service) or the scraped `/metrics` URL.
    pub target: String,
    /// `24h`, `7d`, or `lifetime` (scrape: since the verifier started).
    pub window: &'static str,
    /// `offer` or `chain`.
    pub by: &'static str,
    /// Window of `settlement_rate`: `1h` (Prometheus) or `lifetime` (scrape).
    pub settlement_window: &'static str,
    pub rows: Vec<JsonRow>,
    /// One per chain.
    pub totals: Vec<JsonRow>,
}

fn json_row(row: &Row) -> JsonRow {
    let (ns, name) = match &row.offer {
        Some((ns, n)) => (Some(ns.clone()), Some(n.clone())),
        None => (None, None),
    };
    JsonRow {
        offer_namespace: ns,
        offer_name: name,
        chain: row.chain.caip2.clone(),
        chain_name: row.chain.name.clone(),
        asset: row.chain.symbol.clone(),
        decimals: row.chain.decimals,
        requests_charged: row.requests_charged.map(|e| saturating_u64(e.value)),
        revenue: row
            .revenue
            .map(|e| format_atomic(e.value, row.chain.decimals)),
        revenue_atomic: row.revenue.map(|e| e.value.to_string()),
        approximate: row.approximate(),
        settlement_rate: row.settlement.and_then(|s| s.rate()),
        last_payment_age_seconds: row.last_payment_age_seconds,
    }
}

pub fn json(report: &Report) -> JsonReport {
    let (source, target, window, settlement_window) = match &report.source {
        Source::Prometheus { target, window } => {
            ("prometheus", target.clone(), window.as_str(), "1h")
        }
        Source::Scrape { url } => ("scrape", url.clone(), "lifetime", "lifetime"),
    };
    JsonReport {
        source,
        target,
        window,
        by: match report.by {
            By::Offer => "offer",
            By::Chain => "chain",
        },
        settlement_window,
        rows: report.rows.iter().map(json_row).collect(),
        totals: report.totals.iter().map(json_row).collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use alloy_primitives::U256;

    use super::*;
    use crate::earnings::report::{OfferData, OfferKey, Settlement, Window};
    use crate::x402::networks::Registry;

    fn est(v: u64, approximate: bool) -> Option<Estimate> {
        Some(Estimate {
            value: U256::from(v),
            approximate,
        })
    }

    #[test]
    fn ages() {
        assert_eq!(format_age(None), "-");
        assert_eq!(format_age(Some(f64::NAN)), "-");
        assert_eq!(format_age(Some(-3.0)), "just now");
        assert_eq!(format_age(Some(0.4)), "just now");
        assert_eq!(format_age(Some(1.0)), "1s ago");
        assert_eq!(format_age(Some(59.9)), "59s ago");
        assert_eq!(format_age(Some(60.0)), "1m ago");
        assert_eq!(format_age(Some(150.0)), "2m ago");
        assert_eq!(format_age(Some(3599.0)), "59m ago");
        assert_eq!(format_age(Some(3600.0)), "1h ago");
        assert_eq!(format_age(Some(86_399.0)), "23h ago");
        assert_eq!(format_age(Some(86_400.0 * 8.5)), "8d ago");
    }

    #[test]
    fn amounts_counts_and_rates() {
        assert_eq!(format_money(est(40_000, false), 6, "USDC"), "0.04 USDC");
        assert_eq!(format_money(est(1, false), 6, "USDC"), "0.000001 USDC");
        assert_eq!(format_money(est(0, false), 6, "USDC"), "0 USDC");
        assert_eq!(
            format_money(est(12_345_678_901, false), 6, "USDC"),
            "12345.678901 USDC"
        );
        assert_eq!(format_money(est(40_001, true), 6, "USDC"), "≈0.040001 USDC");
        assert_eq!(
            format_money(
                Some(Estimate {
                    value: U256::from(10u8).pow(U256::from(18u8)),
                    approximate: false
                }),
                18,
                "WETH"
            ),
            "1 WETH"
        );
        assert_eq!(format_money(None, 6, "USDC"), "-");
        assert_eq!(format_count(est(4, false)), "4");
        assert_eq!(format_count(est(0, true)), "≈0");
        assert_eq!(format_count(None), "-");
        assert_eq!(format_rate(Some(0.8)), "80.0%");
        assert_eq!(format_rate(Some(1.0 / 3.0)), "33.3%");
        assert_eq!(format_rate(None), "-");
    }

    fn report(source: Source, by: By) -> Report {
        let mut m = BTreeMap::new();
        m.insert(
            OfferKey {
                namespace: "local".into(),
                name: "demo".into(),
                chain: "eip155:84532".into(),
            },
            OfferData {
                requests: est(4, false),
                revenue: est(40_000, false),
                settlement: Some(Settlement::Rate(0.8)),
                last_payment_age_seconds: Some(130.0),
            },
        );
        m.insert(
            OfferKey {
                namespace: "llm".into(),
                name: "qwen".into(),
                chain: "eip155:424242".into(),
            },
            OfferData {
                requests: est(1, false),
                revenue: est(20_001, true),
                settlement: None,
                last_payment_age_seconds: None,
            },
        );
        Report::build(source, by, &m, &Registry::builtin())
    }

    #[test]
    fn table_by_offer() {
        let r = report(
            Source::Prometheus {
                target: "http://prom:9090".into(),
                window: Window::Day,
            },
            By::Offer,
        );
        let want = "\
Earnings over the last 24h from Prometheus http://prom:9090 (x402 recording rules)
┌────────────┬───────────────┬─────────┬────────────────┬──────────────┬──────────────┐
│ OFFER      ┆ CHAIN         ┆ CHARGED ┆        REVENUE ┆ SETTLED (1h) ┆ LAST PAYMENT │
╞════════════╪═══════════════╪═════════╪════════════════╪══════════════╪══════════════╡
│ llm/qwen   ┆ eip155:424242 ┆       1 ┆ ≈0.020001 USDC ┆            - ┆ -            │
│ local/demo ┆ base-sepolia  ┆       4 ┆      0.04 USDC ┆        80.0% ┆ 2m ago       │
│ TOTAL      ┆ eip155:424242 ┆       1 ┆ ≈0.020001 USDC ┆            - ┆ -            │
│ TOTAL      ┆ base-sepolia  ┆       4 ┆      0.04 USDC ┆        80.0% ┆ 2m ago       │
└────────────┴───────────────┴─────────┴────────────────┴──────────────┴──────────────┘
≈ estimate: Prometheus extrapolates increase() to the edges of the window, and this value could not be brought back to whole charges (see docs/metrics.md)";
        assert_eq!(table(&r), want);
    }

    #[test]
    fn table_by_chain_from_a_scrape() {
        let r = report(
            Source::Scrape {
                url: "http://v/metrics".into(),
            },
            By::Chain,
        );
        let text = table(&r);
        assert!(
            text.starts_with(
                "Lifetime totals since the verifier started, read from http://v/metrics"
            ),
            "{text}"
        );
        assert!(!text.contains("OFFER"), "{text}");
        assert!(!text.contains("TOTAL"), "{text}");
        assert!(text.contains("SETTLED "), "{text}");
        assert!(!text.contains("(1h)"), "{text}");
        assert_eq!(text.matches("base-sepolia").count(), 1, "{text}");
    }

    #[test]
    fn json_field_names() {
        let r = report(
            Source::Prometheus {
                target: "http://prom:9090".into(),
                window: Window::Week,
            },
            By::Offer,
        );
        let v = serde_json::to_value(json(&r)).unwrap();
        assert_eq!(v["source"], "prometheus");
        assert_eq!(v["window"], "7d");
        assert_eq!(v["by"], "offer");
        assert_eq!(v["settlement_window"], "1h");
        let demo = &v["rows"][1];
        assert_eq!(
            demo,
            &serde_json::json!({
                "offer_namespace": "local",
                "offer_name": "demo",
                "chain": "eip155:84532",
                "chain_name": "base-sepolia",
                "asset": "USDC",
                "decimals": 6,
                "requests_charged": 4,
                "revenue": "0.04",
                "revenue_atomic": "40000",
                "approximate": false,
                "settlement_rate": 0.8,
                "last_payment_age_seconds": 130.0
            })
        );
        assert_eq!(v["rows"][0]["approximate"], true);
        assert_eq!(v["rows"][0]["chain_name"], serde_json::Value::Null);
        assert_eq!(v["totals"].as_array().unwrap().len(), 2);
        assert!(v["totals"][0].get("offer_name").is_none());
        let s = serde_json::to_value(json(&report(Source::Scrape { url: "u".into() }, By::Chain)))
            .unwrap();
        assert_eq!(s["window"], "lifetime");
        assert_eq!(s["source"], "scrape");
    }
}
