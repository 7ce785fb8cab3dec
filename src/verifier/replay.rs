//! The replay guard: one payment, one service.
//!
//! The chain's EIP-3009 nonce only protects a payment once it is settled. Between verification
//! and settlement (and forever in verify-only ForwardAuth) the verifier itself must make sure an
//! authorization `(chain, asset, from, nonce)` is accepted once. A request **claims** the key
//! atomically before anything else happens; the [`Claim`] then ends in one of three ways:
//!
//! - [`Claim::consume`]: the payment bought something (granted or settled). The key stays
//!   taken until the authorization's `validBefore`, after which the token contract refuses it
//!   anyway, and is pruned.
//! - [`Claim::mark_unsettled`]: settlement was attempted and its outcome is unknown. The key
//!   is kept, but the **same** payment may be presented again (once at a time); that retry is
//!   told so ([`Claim::retry_of_unsettled`]) and finishes the settlement.
//!
//! Every entry remembers the [`Binding`] of the payment that claimed it: a digest of the exact
//! payment header, the route and the requirement it was checked against. Only a claim with the
//! same binding may resume an unsettled payment; another authorization that reuses the nonce
//! (for a dearer offer, or re-signed) is refused, so a payment buys only what it paid for.
//! - dropped: the request was refused for a reason that did not use the payment (facilitator
//!   unreachable, upstream error, client gone). The key is released so the buyer can retry with
//!   the same header.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use alloy_primitives::{Address, B256};

const SHARDS: usize = 16;

/// What identifies one authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplayKey {
    pub chain_id: u64,
    pub asset: Address,
    pub from: Address,
    pub nonce: B256,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A request is working with this payment right now.
    InFlight,
    /// Settlement was attempted, outcome unknown; a retry may take it.
    Unsettled,
    /// Used; held until `expires`.
    Used,
}

/// What one payment was presented for: `keccak256` of the payment header's bytes, the route
/// and the requirement (see [`Binding::of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Binding(pub B256);

impl Binding {
    /// The binding of `header` (the payment header value, as received) presented for the route
    /// `route` (its identity: offer and pattern) under `requirement` (its JSON).
    pub fn of(header: &[u8], route: &str, requirement: &str) -> Binding {
        let mut h = alloy_primitives::Keccak256::new();
        for part in [header, route.as_bytes(), requirement.as_bytes()] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        Binding(h.finalize())
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    state: State,
    binding: Binding,
    /// `validBefore` (unix seconds).
    expires: u64,
}

/// Why a claim was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Replayed {
    #[error("this payment is being used by another request")]
    InFlight,
    #[error("this payment has already been used")]
    Used,
    /// Another payment with this authorization's nonce is unsettled (outcome unknown).
    #[error("this authorization is held by another payment whose settlement is unresolved")]
    Unresolved,
}

/// The set of claimed payments. Cheap to share (`Arc`); sharded to keep lock contention low.
#[derive(Debug)]
pub struct ReplayGuard {
    shards: Vec<Mutex<HashMap<ReplayKey, Entry>>>,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        ReplayGuard {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

/// A successful claim. Dropping it releases the payment unless it was consumed or marked
/// unsettled.
#[derive(Debug)]
pub struct Claim {
    guard: Arc<ReplayGuard>,
    key: ReplayKey,
    binding: Binding,
    expires: u64,
    retry_of_unsettled: bool,
    done: bool,
}

impl ReplayGuard {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn shard(&self, key: &ReplayKey) -> &Mutex<HashMap<ReplayKey, Entry>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        &self.shards[(h.finish() as usize) % self.shards.len()]
    }

    fn lock(&self, key: &ReplayKey) -> std::sync::MutexGuard<'_, HashMap<ReplayKey, Entry>> {
        // A panic while holding the lock cannot leave the map inconsistent (single inserts and
        // removes), so a poisoned lock is still usable.
        self.shard(key).lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims `key` for the payment `binding` until `valid_before` (unix seconds), atomically.
    pub fn claim(
        self: &Arc<Self>,
        key: ReplayKey,
        binding: Binding,
        valid_before: u64,
        now: u64,
    ) -> Result<Claim, Replayed> {
        let mut map = self.lock(&key);
        let mut retry = false;
        let mut expires = valid_before;
        if let Some(e) = map.get(&key) {
            match e.state {
                State::InFlight => return Err(Replayed::InFlight),
                State::Used if e.expires > now => return Err(Replayed::Used),
                State::Unsettled if e.binding != binding => return Err(Replayed::Unresolved),
                State::Unsettled => {
                    retry = true;
                    expires = e.expires;
                }
                State::Used => {}
            }
        }
        map.insert(
            key,
            Entry {
                state: State::InFlight,
                binding,
                expires,
            },
        );
        Ok(Claim {
            guard: Arc::clone(self),
            key,
            binding,
            expires,
            retry_of_unsettled: retry,
            done: false,
        })
    }

    /// Forgets used payments whose `validBefore` has passed. In-flight claims are untouched.
    pub fn prune(&self, now: u64) -> usize {
        let mut removed = 0;
        for shard in &self.shards {
            let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
            let before = map.len();
            map.retain(|_, e| e.state == State::InFlight || e.expires > now);
            removed += before - map.len();
        }
        removed
    }

    /// Number of payments held (in flight, unsettled or used).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn finish(&self, key: &ReplayKey, binding: Binding, expires: u64, state: Option<State>) {
        let mut map = self.lock(key);
        match state {
            Some(state) => {
                map.insert(
                    *key,
                    Entry {
                        state,
                        binding,
                        expires,
                    },
                );
            }
            None => {
                map.remove(key);
            }
        }
    }
}

impl Claim {
    pub fn key(&self) -> &ReplayKey {
        &self.key
    }

    /// True when an earlier request with this payment ended with an unknown settlement outcome.
    pub fn retry_of_unsettled(&self) -> bool {
        self.retry_of_unsettled
    }

    /// The payment was used: hold it until `validBefore`.
    pub fn consume(mut self) {
        self.done = true;
        self.guard
            .finish(&self.key, self.binding, self.expires, Some(State::Used));
    }

    /// Settlement outcome unknown: keep the payment, but let one retry of it through.
    pub fn mark_unsettled(mut self) {
        self.done = true;
        self.guard.finish(
            &self.key,
            self.binding,
            self.expires,
            Some(State::Unsettled),
        );
    }

    /// Gives the payment back explicitly (same as dropping the claim).
    pub fn release(self) {}
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // A retry of an unsettled payment that fails again leaves it unsettled: the first
        // settlement may still have gone through.
        let state = self.retry_of_unsettled.then_some(State::Unsettled);
        self.guard
            .finish(&self.key, self.binding, self.expires, state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Binding = Binding(B256::ZERO);

    fn key(n: u8) -> ReplayKey {
        ReplayKey {
            chain_id: 31337,
            asset: Address::repeat_byte(0xaa),
            from: Address::repeat_byte(0xbb),
            nonce: B256::repeat_byte(n),
        }
    }

    #[test]
    fn a_consumed_payment_is_refused_until_it_expires() {
        let g = ReplayGuard::new();
        let c = g.claim(key(1), B, 1_000, 100).unwrap();
        assert_eq!(
            g.claim(key(1), B, 1_000, 100).unwrap_err(),
            Replayed::InFlight
        );
        c.consume();
        assert_eq!(g.claim(key(1), B, 1_000, 500).unwrap_err(), Replayed::Used);
        // Another nonce, another asset or another chain is another payment.
        assert!(g.claim(key(2), B, 1_000, 100).is_ok());
        let mut other_chain = key(1);
        other_chain.chain_id = 8453;
        assert!(g.claim(other_chain, B, 1_000, 100).is_ok());
        // After validBefore the token refuses it anyway; the guard lets go.
        assert!(g.claim(key(1), B, 2_000, 1_000).is_ok());
    }

    #[test]
    fn a_dropped_claim_releases_the_payment() {
        let g = ReplayGuard::new();
        {
            let _c = g.claim(key(1), B, 1_000, 100).unwrap();
        }
        assert!(g.is_empty());
        let c = g.claim(key(1), B, 1_000, 100).unwrap();
        assert!(!c.retry_of_unsettled());
        c.release();
        assert!(g.claim(key(1), B, 1_000, 100).is_ok());
    }

    #[test]
    fn an_unsettled_payment_allows_one_retry_at_a_time() {
        let g = ReplayGuard::new();
        g.claim(key(1), B, 1_000, 100).unwrap().mark_unsettled();
        let retry = g.claim(key(1), B, 1_000, 110).unwrap();
        assert!(retry.retry_of_unsettled());
        assert_eq!(
            g.claim(key(1), B, 1_000, 110).unwrap_err(),
            Replayed::InFlight
        );
        // The retry fails again without an answer: still unsettled, still retryable.
        drop(retry);
        let retry = g.claim(key(1), B, 1_000, 120).unwrap();
        assert!(retry.retry_of_unsettled());
        retry.consume();
        assert_eq!(g.claim(key(1), B, 1_000, 130).unwrap_err(), Replayed::Used);
    }

    #[test]
    fn only_the_same_payment_resumes_an_unsettled_one() {
        let g = ReplayGuard::new();
        let first = Binding::of(
            b"header-a",
            "ns/cheap /services/cheap/*",
            "{\"amount\":\"1\"}",
        );
        let dearer = Binding::of(
            b"header-b",
            "ns/dear /services/dear/*",
            "{\"amount\":\"9\"}",
        );
        let same_header_other_route = Binding::of(
            b"header-a",
            "ns/dear /services/dear/*",
            "{\"amount\":\"1\"}",
        );
        g.claim(key(1), first, 1_000, 100).unwrap().mark_unsettled();
        assert_eq!(
            g.claim(key(1), dearer, 1_000, 110).unwrap_err(),
            Replayed::Unresolved
        );
        assert_eq!(
            g.claim(key(1), same_header_other_route, 1_000, 110)
                .unwrap_err(),
            Replayed::Unresolved
        );
        let retry = g.claim(key(1), first, 1_000, 110).unwrap();
        assert!(retry.retry_of_unsettled());
        retry.consume();
        assert_eq!(
            g.claim(key(1), first, 1_000, 120).unwrap_err(),
            Replayed::Used
        );
    }

    #[test]
    fn prune_removes_only_expired_entries() {
        let g = ReplayGuard::new();
        g.claim(key(1), B, 200, 100).unwrap().consume();
        g.claim(key(2), B, 400, 100).unwrap().consume();
        g.claim(key(3), B, 200, 100).unwrap().mark_unsettled();
        let in_flight = g.claim(key(4), B, 200, 100).unwrap();
        assert_eq!(g.prune(300), 2);
        assert_eq!(g.len(), 2);
        assert_eq!(g.claim(key(2), B, 400, 300).unwrap_err(), Replayed::Used);
        drop(in_flight);
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn concurrent_claims_of_one_payment_let_exactly_one_through() {
        for _ in 0..50 {
            let g = ReplayGuard::new();
            let barrier = Arc::new(std::sync::Barrier::new(8));
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let g = Arc::clone(&g);
                    let b = Arc::clone(&barrier);
                    std::thread::spawn(move || {
                        b.wait();
                        match g.claim(key(9), B, 1_000, 100) {
                            Ok(c) => {
                                c.consume();
                                true
                            }
                            Err(_) => false,
                        }
                    })
                })
                .collect();
            let winners = handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|w| *w)
                .count();
            assert_eq!(winners, 1);
        }
    }
}
