//! The local payment ledger: one JSON line per signed payment under
//! `$XDG_STATE_HOME/obol/payments.jsonl`.
//!
//! A line is written (and synced) for every payment obol signed and sent, whatever came of it,
//! so an operator can reconcile spending against the chain. Signatures are never written.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What became of a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// The seller served the request and returned a settlement receipt.
    Settled,
    /// The seller served the request without a receipt (e.g. a verify-only gate).
    Accepted,
    /// The seller refused the payment; nothing should have moved.
    Refused,
    /// No definite answer (timeouts, 5xx after sending): the payment may have settled.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    /// RFC 3339 UTC time the outcome was known.
    pub time: String,
    pub url: String,
    pub method: String,
    /// CAIP-2 id, e.g. `eip155:8453`.
    pub network: String,
    pub asset: String,
    pub symbol: String,
    pub pay_to: String,
    pub payer: String,
    /// Atomic units of the asset.
    pub amount: String,
    /// The same amount as a decimal, e.g. "0.01".
    pub amount_decimal: String,
    pub nonce: String,
    pub valid_before: u64,
    pub status: PaymentStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Ledger {
    path: PathBuf,
}

impl Ledger {
    /// `$XDG_STATE_HOME/obol/payments.jsonl`.
    pub fn default_path() -> PathBuf {
        crate::paths::state_dir().join("payments.jsonl")
    }

    pub fn open(path: impl Into<PathBuf>) -> Self {
        Ledger { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry and syncs it to disk.
    pub fn append(&self, entry: &LedgerEntry) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        // One write of a whole line: concurrent appenders never interleave within a line.
        file.write_all(&line)?;
        file.sync_data()
    }

    /// Every entry, oldest first. A missing ledger is empty.
    pub fn entries(&self) -> std::io::Result<Vec<LedgerEntry>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(std::io::Error::other))
            .collect()
    }
}

/// Now as RFC 3339 UTC, second precision.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(status: PaymentStatus) -> LedgerEntry {
        LedgerEntry {
            time: now_rfc3339(),
            url: "http://x/paid".into(),
            method: "GET".into(),
            network: "eip155:31337".into(),
            asset: "0x5fbdb2315678afecb367f032d93f642f64180aa3".into(),
            symbol: "USDC".into(),
            pay_to: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC".into(),
            payer: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".into(),
            amount: "10000".into(),
            amount_decimal: "0.01".into(),
            nonce: format!("0x{}", "ab".repeat(32)),
            valid_before: 1_800_000_000,
            status,
            http_status: Some(200),
            transaction: None,
            reason: None,
        }
    }

    #[test]
    fn appends_and_reads_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path().join("state/payments.jsonl"));
        assert!(ledger.entries().unwrap().is_empty());
        ledger.append(&entry(PaymentStatus::Settled)).unwrap();
        ledger.append(&entry(PaymentStatus::Refused)).unwrap();
        let got = ledger.entries().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].status, PaymentStatus::Settled);
        assert_eq!(got[1].status, PaymentStatus::Refused);
        let text = std::fs::read_to_string(ledger.path()).unwrap();
        assert!(text.contains("\"amountDecimal\":\"0.01\""), "{text}");
        assert!(!text.contains("signature"));
    }
}
