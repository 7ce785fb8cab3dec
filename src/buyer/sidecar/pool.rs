//! The pool of pre-signed authorizations of one upstream: hold → confirm (spent) or release
//! (back to the front of the pool).
//!
//! The pool object of an upstream lives across reloads (the sidecar keeps one per name), so an
//! auth held by a request in flight is neither handed out again by a rebuilt pool nor lost when
//! it is released after the reload. Whether an auth was consumed is the state file's business
//! ([`super::state::StateStore`]); [`AuthPool::reconcile`] reads it under the pool's lock.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use crate::x402::wire::ExactEvmPayload;

/// A usable authorization.
#[derive(Clone, PartialEq, Eq)]
pub struct PoolAuth {
    /// The consume key (may be a signature: never log it).
    pub key: String,
    pub payload: ExactEvmPayload,
    pub valid_before: u64,
}

impl std::fmt::Debug for PoolAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolAuth")
            .field("nonce", &self.payload.authorization.nonce)
            .field("valid_before", &self.valid_before)
            .finish_non_exhaustive()
    }
}

/// An auth is not handed out when it expires within this many seconds (the facilitator's
/// `validBefore` buffer plus the time to reach the seller).
pub const EXPIRY_MARGIN_SECS: u64 = 30;

#[derive(Debug, Default)]
struct Inner {
    /// Every auth of the current config, by key.
    known: HashMap<String, Arc<PoolAuth>>,
    /// Usable, in order.
    available: VecDeque<Arc<PoolAuth>>,
    /// Handed out, outcome pending.
    held: HashSet<String>,
    /// Dropped because they expired before use.
    expired: u64,
}

#[derive(Debug, Default)]
pub struct AuthPool {
    inner: Mutex<Inner>,
}

/// Counts for `/status` and the gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolCounts {
    pub remaining: usize,
    pub held: usize,
    pub expired: u64,
}

impl AuthPool {
    pub fn new() -> AuthPool {
        AuthPool::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the pool's auths with `auths`, minus those consumed (asked under the pool's
    /// lock, so a concurrent hold/release cannot slip between) and those held right now.
    pub fn reconcile(
        &self,
        auths: Vec<PoolAuth>,
        consumed: impl FnOnce() -> HashSet<String>,
        now: u64,
    ) {
        let mut inner = self.lock();
        let consumed = consumed();
        let mut known = HashMap::with_capacity(auths.len());
        let mut available = VecDeque::with_capacity(auths.len());
        let mut expired = 0;
        for auth in auths {
            if known.contains_key(&auth.key) {
                continue;
            }
            let auth = Arc::new(auth);
            known.insert(auth.key.clone(), Arc::clone(&auth));
            if consumed.contains(&auth.key) || inner.held.contains(&auth.key) {
                continue;
            }
            if auth.valid_before <= now + EXPIRY_MARGIN_SECS {
                expired += 1;
                continue;
            }
            available.push_back(auth);
        }
        inner.known = known;
        inner.available = available;
        inner.expired = expired;
    }

    /// Takes the next auth that is still valid at `now`; expired ones are dropped.
    pub fn hold(&self, now: u64) -> Option<Arc<PoolAuth>> {
        let mut inner = self.lock();
        while let Some(auth) = inner.available.pop_front() {
            if auth.valid_before <= now + EXPIRY_MARGIN_SECS {
                inner.expired += 1;
                continue;
            }
            inner.held.insert(auth.key.clone());
            return Some(auth);
        }
        None
    }

    /// The held auth was spent.
    pub fn confirm(&self, key: &str) {
        self.lock().held.remove(key);
    }

    /// The held auth was not spent: it goes back to the front of the pool, unless a reload
    /// removed it from the config meanwhile.
    pub fn release(&self, key: &str) {
        let mut inner = self.lock();
        if inner.held.remove(key)
            && let Some(auth) = inner.known.get(key).cloned()
        {
            inner.available.push_front(auth);
        }
    }

    pub fn counts(&self) -> PoolCounts {
        let inner = self.lock();
        PoolCounts {
            remaining: inner.available.len(),
            held: inner.held.len(),
            expired: inner.expired,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x402::wire::Authorization;

    const NOW: u64 = 1_800_000_000;

    fn auth(key: &str, valid_before: u64) -> PoolAuth {
        PoolAuth {
            key: key.into(),
            payload: ExactEvmPayload {
                signature: "0x00".into(),
                authorization: Authorization {
                    from: "0x1".into(),
                    to: "0x2".into(),
                    value: "1".into(),
                    valid_after: "0".into(),
                    valid_before: valid_before.to_string(),
                    nonce: key.into(),
                },
            },
            valid_before,
        }
    }

    fn pool(keys: &[&str]) -> AuthPool {
        let p = AuthPool::new();
        p.reconcile(
            keys.iter().map(|k| auth(k, NOW + 3600)).collect(),
            HashSet::new,
            NOW,
        );
        p
    }

    #[test]
    fn hold_confirm_release() {
        let p = pool(&["a", "b", "c"]);
        assert_eq!(p.counts().remaining, 3);
        let a = p.hold(NOW).unwrap();
        let b = p.hold(NOW).unwrap();
        assert_eq!((a.key.as_str(), b.key.as_str()), ("a", "b"));
        assert_eq!(
            p.counts(),
            PoolCounts {
                remaining: 1,
                held: 2,
                expired: 0
            }
        );
        p.confirm("a");
        p.release("b");
        assert_eq!(p.counts().remaining, 2);
        assert_eq!(p.counts().held, 0);
        // The released auth is the next one out.
        assert_eq!(p.hold(NOW).unwrap().key, "b");
        assert_eq!(p.hold(NOW).unwrap().key, "c");
        assert!(p.hold(NOW).is_none());
        // Releasing something that is not held does nothing.
        p.release("a");
        p.release("zzz");
        assert_eq!(p.counts().remaining, 0);
    }

    #[test]
    fn reconcile_skips_consumed_held_duplicates_and_expired() {
        let p = pool(&["a", "b"]);
        let held = p.hold(NOW).unwrap();
        assert_eq!(held.key, "a");
        p.reconcile(
            vec![
                auth("a", NOW + 3600),
                auth("b", NOW + 3600),
                auth("b", NOW + 3600),
                auth("c", NOW + 3600),
                auth("d", NOW + 10),
            ],
            || HashSet::from(["c".to_owned()]),
            NOW,
        );
        assert_eq!(
            p.counts(),
            PoolCounts {
                remaining: 1,
                held: 1,
                expired: 1
            }
        );
        // The auth held across the reload comes back on release.
        p.release("a");
        assert_eq!(p.counts().remaining, 2);
        // An auth a reload removed does not come back.
        let a = p.hold(NOW).unwrap();
        p.reconcile(vec![auth("b", NOW + 3600)], HashSet::new, NOW);
        p.release(&a.key);
        assert_eq!(p.counts().remaining, 1);
    }

    #[test]
    fn auths_expiring_while_waiting_are_dropped_at_hold() {
        let p = AuthPool::new();
        p.reconcile(
            vec![auth("soon", NOW + 100), auth("later", NOW + 10_000)],
            HashSet::new,
            NOW,
        );
        assert_eq!(p.counts().remaining, 2);
        assert_eq!(p.hold(NOW + 90).unwrap().key, "later");
        assert_eq!(p.counts().expired, 1);
    }

    #[test]
    fn concurrent_holds_never_hand_out_an_auth_twice() {
        let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
        let p = Arc::new(AuthPool::new());
        p.reconcile(
            keys.iter().map(|k| auth(k, NOW + 3600)).collect(),
            HashSet::new,
            NOW,
        );
        let got: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let p = Arc::clone(&p);
                    s.spawn(move || {
                        let mut mine = Vec::new();
                        while let Some(a) = p.hold(NOW) {
                            mine.push(a.key.clone());
                        }
                        mine
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let unique: HashSet<_> = got.iter().collect();
        assert_eq!(got.len(), 200);
        assert_eq!(unique.len(), 200);
    }
}
