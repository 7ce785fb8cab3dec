//! What identifies a payment, for the payment-state store ([`super::store`]): the
//! authorization's [`ReplayKey`] `(chain, asset, from, nonce)`, the [`Binding`] of the exact
//! payment it was presented as, and why a claim of it was refused ([`Replayed`]).
//!
//! The chain's EIP-3009 nonce only protects a payment once it is settled. Between verification
//! and settlement (and forever in verify-only ForwardAuth) the verifier itself must make sure
//! an authorization is accepted once; only a claim with the same binding (header bytes, route,
//! requirement) may resume a payment whose settlement outcome was unknown, so another
//! authorization that reuses the nonce (for a dearer offer, or re-signed) buys nothing.

use alloy_primitives::{Address, B256};

/// What identifies one authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplayKey {
    pub chain_id: u64,
    pub asset: Address,
    pub from: Address,
    pub nonce: B256,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_covers_the_header_the_route_and_the_requirement() {
        let b = Binding::of(
            b"header-a",
            "ns/cheap /services/cheap/*",
            "{\"amount\":\"1\"}",
        );
        assert_eq!(
            b,
            Binding::of(
                b"header-a",
                "ns/cheap /services/cheap/*",
                "{\"amount\":\"1\"}"
            )
        );
        for other in [
            Binding::of(
                b"header-b",
                "ns/cheap /services/cheap/*",
                "{\"amount\":\"1\"}",
            ),
            Binding::of(
                b"header-a",
                "ns/dear /services/dear/*",
                "{\"amount\":\"1\"}",
            ),
            Binding::of(
                b"header-a",
                "ns/cheap /services/cheap/*",
                "{\"amount\":\"9\"}",
            ),
            // Lengths are part of the digest: moving bytes between parts changes it.
            Binding::of(
                b"header-an",
                "s/cheap /services/cheap/*",
                "{\"amount\":\"1\"}",
            ),
        ] {
            assert_ne!(b, other);
        }
    }
}
