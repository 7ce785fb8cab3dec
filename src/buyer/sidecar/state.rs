//! The sidecar's durable state: consumed auth keys and budget counters, in one JSON file.
//!
//! ```json
//! {"consumed": {"<upstream>": ["<consume key>", …]},
//!  "budgets":  {"<upstream>": {"day": "2026-11-22", "spentToday": "30000", "paymentsToday": 3,
//!                              "spentTotal": "120000", "paymentsTotal": 12}}}
//! ```
//! `consumed` is the obol-stack buyer's format (a file it wrote is read as is; it reads ours and
//! ignores `budgets` and `handedOut`). The file is written atomically (temp file, fsync,
//! rename, 0600).
//!
//! `handedOut` holds every authorization given to a seller whose fate is not known yet (the
//! seller answered ≥ 400 without a receipt, or the answer was lost): it stays counted in
//! `budgets` until it is provably unusable (its `validBefore` passed and the chain says it was
//! never used: [`StateStore::drop_unusable`]) or known spent ([`StateStore::settled`]), and a
//! retry of the same request sends it again instead of a new signature
//! ([`StateStore::handed_out_for`]). It holds signatures: the file is 0600, and nothing of it
//! is ever logged.
//!
//! Write-ahead: an auth's key is recorded as consumed, and a payment counted against the
//! budget, *before* the payment is sent ([`StateStore::persist`] returns first). A crash in
//! flight therefore leaves the auth marked consumed and the money counted: after a restart an
//! auth is never sent twice and a budget never goes back. A payment that turns out not to
//! have been spent is given back in memory and in the next write.
//!
//! Writes are group-committed: concurrent callers share one write of the latest state.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use alloy_primitives::U256;
use serde::{Deserialize, Serialize};

use super::budget::{BudgetCounters, BudgetLimits, BudgetRefusal, Reservation};
use crate::buyer::keystore::write_private_file;
use crate::x402::wire::ExactEvmPayload;

/// An authorization given to a seller, not yet known to be spent or unusable.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandedOut {
    /// The request it paid ([`request_key`]): a retry of it sends this authorization again.
    pub request: String,
    /// CAIP-2 id of the chain, and the token: where to ask whether it is still usable.
    pub chain: String,
    pub asset: String,
    pub payload: ExactEvmPayload,
    pub valid_before: u64,
    /// What it counts against the budget: the reservation of when it was signed or taken.
    #[serde(with = "super::budget::decimal")]
    pub amount: U256,
    #[serde(with = "super::budget::day_string")]
    pub day: i64,
    /// The consume key, when it came from the pre-signed pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_key: Option<String>,
    /// Out with a request right now (not offered to a concurrent retry). Not persisted.
    #[serde(skip)]
    pub in_flight: bool,
}

impl HandedOut {
    pub fn nonce(&self) -> &str {
        &self.payload.authorization.nonce
    }

    pub fn reservation(&self) -> Reservation {
        Reservation {
            day: self.day,
            amount: self.amount,
        }
    }
}

impl std::fmt::Debug for HandedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandedOut")
            .field("nonce", &self.nonce())
            .field("valid_before", &self.valid_before)
            .finish_non_exhaustive()
    }
}

/// What identifies "the same request" for a retry: method, path and body (keccak-256, hex).
pub fn request_key(method: &str, path: &str, body: &[u8]) -> String {
    let mut buf = Vec::with_capacity(method.len() + path.len() + body.len() + 2);
    buf.extend_from_slice(method.as_bytes());
    buf.push(0);
    buf.extend_from_slice(path.as_bytes());
    buf.push(0);
    buf.extend_from_slice(body);
    alloy_primitives::keccak256(&buf).to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the state file {path}: {detail}")]
    Read { path: String, detail: String },
    #[error(
        "the state file {path} is not valid ({detail}); starting without it would forget spent authorizations and budgets"
    )]
    Corrupt { path: String, detail: String },
    #[error("cannot write the state file {path}: {detail}")]
    Write { path: String, detail: String },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    #[serde(default)]
    consumed: BTreeMap<String, BTreeSet<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    budgets: BTreeMap<String, BudgetCounters>,
    #[serde(
        default,
        rename = "handedOut",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    handed_out: BTreeMap<String, Vec<HandedOut>>,
}

impl StateFile {
    /// (how many in all, how many of `day`) of `upstream`'s handed-out authorizations.
    fn pending(&self, upstream: &str, day: i64) -> (u64, u64) {
        let list = self.handed_out.get(upstream).map_or(&[][..], Vec::as_slice);
        let today = list.iter().filter(|h| h.day == day).count();
        (list.len() as u64, today as u64)
    }

    fn remove_handed_out(&mut self, upstream: &str, nonce: &str) -> Option<HandedOut> {
        let list = self.handed_out.get_mut(upstream)?;
        let i = list.iter().position(|h| h.nonce() == nonce)?;
        let h = list.remove(i);
        if list.is_empty() {
            self.handed_out.remove(upstream);
        }
        Some(h)
    }
}

/// The state, in memory and on disk.
#[derive(Debug)]
pub struct StateStore {
    path: PathBuf,
    data: Mutex<StateFile>,
    /// Bumped (under `data`'s lock) on every change.
    generation: AtomicU64,
    /// The generation last written; held while writing.
    written: tokio::sync::Mutex<u64>,
}

impl StateStore {
    /// Reads `path` (a missing file is an empty state). A file that exists but cannot be read
    /// or parsed is an error: starting empty would reuse spent auths and reset budgets.
    pub fn open(path: &Path) -> Result<StateStore, StateError> {
        let data = match std::fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => StateFile::default(),
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                path: path.display().to_string(),
                detail: crate::x402::codec::DecodeError::json(&e).to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateFile::default(),
            Err(e) => {
                return Err(StateError::Read {
                    path: path.display().to_string(),
                    detail: e.to_string(),
                });
            }
        };
        Ok(StateStore {
            path: path.to_owned(),
            data: Mutex::new(data),
            generation: AtomicU64::new(0),
            written: tokio::sync::Mutex::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(&self, change: bool, f: impl FnOnce(&mut StateFile) -> T) -> T {
        let mut data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        let out = f(&mut data);
        if change {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        out
    }

    /// The consumed keys of `upstream`.
    pub fn consumed_keys(&self, upstream: &str) -> HashSet<String> {
        self.with(false, |d| {
            d.consumed
                .get(upstream)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default()
        })
    }

    pub fn consumed_count(&self, upstream: &str) -> usize {
        self.with(false, |d| d.consumed.get(upstream).map_or(0, BTreeSet::len))
    }

    /// Records `key` as consumed (write-ahead, before the auth is sent).
    pub fn mark_consumed(&self, upstream: &str, key: &str) {
        self.with(true, |d| {
            d.consumed
                .entry(upstream.to_owned())
                .or_default()
                .insert(key.to_owned());
        });
    }

    /// The auth was not spent after all.
    pub fn unconsume(&self, upstream: &str, key: &str) {
        self.with(true, |d| {
            if let Some(set) = d.consumed.get_mut(upstream) {
                set.remove(key);
                if set.is_empty() {
                    d.consumed.remove(upstream);
                }
            }
        });
    }

    /// Counts a payment of `amount` against `upstream`'s caps, or refuses it. Atomic: two
    /// concurrent reservations never both take the last unit of a budget.
    pub fn reserve(
        &self,
        upstream: &str,
        limits: &BudgetLimits,
        amount: U256,
        now: u64,
    ) -> Result<Reservation, BudgetRefusal> {
        let mut data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        let counters = data.budgets.entry(upstream.to_owned()).or_default();
        match counters.reserve(limits, amount, now) {
            Ok(r) => {
                self.generation.fetch_add(1, Ordering::SeqCst);
                Ok(r)
            }
            Err(mut refusal) => {
                let (count, today) = data.pending(upstream, super::budget::day_of(now));
                match &mut refusal {
                    BudgetRefusal::Total { pending, .. } => *pending = count,
                    BudgetRefusal::Day { pending, .. } => *pending = today,
                }
                Err(refusal)
            }
        }
    }

    /// Records an authorization as handed to a seller (write-ahead, before it is sent).
    pub fn hand_out(&self, upstream: &str, h: HandedOut) {
        self.with(true, |d| {
            d.handed_out.entry(upstream.to_owned()).or_default().push(h);
        });
    }

    /// Takes the authorization already handed out for `request` that is still valid at `now`
    /// (with the pool's expiry margin) and not out with another request: a retry sends it
    /// again. It is in flight until [`StateStore::back_from_seller`] or [`StateStore::settled`].
    pub fn claim_handed_out(&self, upstream: &str, request: &str, now: u64) -> Option<HandedOut> {
        self.with(false, |d| {
            let h = d.handed_out.get_mut(upstream)?.iter_mut().rev().find(|h| {
                !h.in_flight
                    && h.request == request
                    && h.valid_before > now.saturating_add(super::pool::EXPIRY_MARGIN_SECS)
            })?;
            h.in_flight = true;
            Some(h.clone())
        })
    }

    /// A handed-out authorization came back without a known outcome: it stays counted. Unless
    /// `reusable`, no retry is offered it again (a seller that refused it once when resent is
    /// not sent it a third time; a retry then takes a new one under the budget).
    pub fn back_from_seller(&self, upstream: &str, nonce: &str, reusable: bool) {
        self.with(true, |d| {
            if let Some(h) = d
                .handed_out
                .get_mut(upstream)
                .and_then(|l| l.iter_mut().find(|h| h.nonce() == nonce))
            {
                h.in_flight = false;
                if !reusable {
                    h.request.clear();
                }
            }
        });
    }

    /// The handed-out authorization was spent (the seller served or settled): it stays counted
    /// for good and is no longer tracked.
    pub fn settled(&self, upstream: &str, nonce: &str) {
        self.with(true, |d| {
            d.remove_handed_out(upstream, nonce);
        });
    }

    /// The handed-out authorization never reached the seller: no longer tracked, and its
    /// budget is given back by the caller's reservation.
    pub fn not_handed_out(&self, upstream: &str, nonce: &str) {
        self.with(true, |d| {
            d.remove_handed_out(upstream, nonce);
        });
    }

    /// The handed-out authorization is provably unusable (expired, never used on chain): its
    /// budget is given back. `true` if it was tracked.
    pub fn drop_unusable(&self, upstream: &str, nonce: &str, now: u64) -> bool {
        self.with(true, |d| {
            let Some(h) = d.remove_handed_out(upstream, nonce) else {
                return false;
            };
            if let Some(c) = d.budgets.get_mut(upstream) {
                c.cancel(&h.reservation(), now);
            }
            true
        })
    }

    /// Every handed-out authorization whose `validBefore` is before `cutoff`, by upstream.
    pub fn expired_handed_out(&self, cutoff: u64) -> Vec<(String, HandedOut)> {
        self.with(false, |d| {
            d.handed_out
                .iter()
                .flat_map(|(u, list)| {
                    list.iter()
                        .filter(|h| h.valid_before < cutoff)
                        .map(|h| (u.clone(), h.clone()))
                })
                .collect()
        })
    }

    /// How many authorizations of `upstream` are handed out and not yet known spent or unusable.
    pub fn handed_out_count(&self, upstream: &str) -> usize {
        self.with(false, |d| d.handed_out.get(upstream).map_or(0, Vec::len))
    }

    /// Gives a reservation back.
    pub fn cancel(&self, upstream: &str, r: &Reservation, now: u64) {
        self.with(true, |d| {
            if let Some(c) = d.budgets.get_mut(upstream) {
                c.cancel(r, now);
            }
        });
    }

    /// The counters of `upstream` as of `now`.
    pub fn budget(&self, upstream: &str, now: u64) -> BudgetCounters {
        let mut c = self.with(false, |d| {
            d.budgets.get(upstream).cloned().unwrap_or_default()
        });
        c.roll(now);
        c
    }

    /// The state as written to disk.
    pub fn to_json(&self) -> Vec<u8> {
        self.with(false, |d| serde_json::to_vec(d).unwrap_or_default())
    }

    /// Writes every change made so far, unless a concurrent call already did.
    pub async fn persist(&self) -> Result<(), StateError> {
        let wanted = self.generation.load(Ordering::SeqCst);
        let mut written = self.written.lock().await;
        if *written >= wanted {
            return Ok(());
        }
        let (bytes, generation) = self.with(false, |d| {
            (
                serde_json::to_vec(d).unwrap_or_default(),
                self.generation.load(Ordering::SeqCst),
            )
        });
        let path = self.path.clone();
        let result = tokio::task::spawn_blocking(move || write_durably(&path, &bytes))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        match result {
            Ok(()) => {
                *written = generation;
                Ok(())
            }
            Err(detail) => Err(StateError::Write {
                path: self.path.display().to_string(),
                detail,
            }),
        }
    }
}

/// Temp file + fsync + rename (mode 0600), then fsync of the directory so the rename survives
/// a power loss.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), String> {
    write_private_file(path, bytes).map_err(|e| match e {
        crate::buyer::keystore::KeystoreError::Write { source, .. } => source.to_string(),
        other => other.to_string(),
    })?;
    #[cfg(unix)]
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const NOW: u64 = 1_795_391_990;

    #[tokio::test]
    async fn round_trips_atomically_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/buyer-state.json");
        let s = StateStore::open(&path).unwrap();
        assert_eq!(s.consumed_count("a"), 0);
        s.mark_consumed("a", "k1");
        s.mark_consumed("a", "k2");
        s.mark_consumed("b", "k3");
        s.unconsume("b", "k3");
        let limits = BudgetLimits {
            max_spend_per_day: Some(U256::from(100u64)),
            max_total: None,
        };
        s.reserve("a", &limits, U256::from(40u64), NOW).unwrap();
        s.persist().await.unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["consumed"], serde_json::json!({"a": ["k1", "k2"]}));
        assert_eq!(json["budgets"]["a"]["spentToday"], "40");
        assert_eq!(json["budgets"]["a"]["day"], "2026-11-22");

        let again = StateStore::open(&path).unwrap();
        assert_eq!(
            again.consumed_keys("a"),
            HashSet::from(["k1".to_owned(), "k2".to_owned()])
        );
        assert_eq!(again.budget("a", NOW).spent_today, U256::from(40u64));
        assert!(
            again.reserve("a", &limits, U256::from(61u64), NOW).is_err(),
            "the budget survives a restart"
        );

        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["buyer-state.json"], "no temp file left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn reads_the_obol_stack_format_and_refuses_a_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consumed.json");
        std::fs::write(&path, r#"{"consumed":{"qwen":["0xabc","0xdef"]}}"#).unwrap();
        let s = StateStore::open(&path).unwrap();
        assert_eq!(s.consumed_count("qwen"), 2);
        assert_eq!(s.budget("qwen", NOW).payments_total, 0);

        std::fs::write(&path, r#"{"consumed":{"qwen":"#).unwrap();
        let err = StateStore::open(&path).unwrap_err().to_string();
        assert!(err.contains("forget spent authorizations"), "{err}");
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(StateStore::open(&path).unwrap().consumed_count("qwen"), 0);
    }

    #[tokio::test]
    async fn a_failed_write_is_an_error_and_is_retried_by_the_next_persist() {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().join("d");
        let s = StateStore::open(&parent.join("state.json")).unwrap();
        // The parent "directory" becomes a regular file: the write must fail.
        std::fs::write(&parent, "x").unwrap();
        s.mark_consumed("a", "k");
        assert!(s.persist().await.is_err());
        assert!(s.persist().await.is_err(), "still unwritten, still tried");
    }

    #[tokio::test]
    async fn concurrent_reservations_admit_exactly_the_budget_and_persist_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let s = Arc::new(StateStore::open(&path).unwrap());
        let limits = BudgetLimits {
            max_spend_per_day: None,
            max_total: Some(10),
        };
        let mut tasks = Vec::new();
        for i in 0..100 {
            let s = Arc::clone(&s);
            tasks.push(tokio::spawn(async move {
                let r = s.reserve("up", &limits, U256::from(1000u64), NOW);
                if r.is_ok() {
                    s.mark_consumed("up", &format!("k{i}"));
                    s.persist().await.unwrap();
                }
                r.is_ok()
            }));
        }
        let mut admitted = 0;
        for t in tasks {
            admitted += usize::from(t.await.unwrap());
        }
        assert_eq!(admitted, 10);
        let on_disk = StateStore::open(&path).unwrap();
        assert_eq!(on_disk.budget("up", NOW).payments_total, 10);
        assert_eq!(on_disk.consumed_count("up"), 10);
    }

    #[test]
    fn cancel_gives_budget_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateStore::open(&dir.path().join("s.json")).unwrap();
        let limits = BudgetLimits {
            max_spend_per_day: None,
            max_total: Some(1),
        };
        let r = s.reserve("a", &limits, U256::from(5u64), NOW).unwrap();
        assert!(s.reserve("a", &limits, U256::from(5u64), NOW).is_err());
        s.cancel("a", &r, NOW);
        assert!(s.reserve("a", &limits, U256::from(5u64), NOW).is_ok());
    }
}
