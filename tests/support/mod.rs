//! Real components for obol's integration tests. Each test file does `mod support;`.
//!
//! Everything binds to 127.0.0.1 on free ports, is polled until ready, and is killed and reaped
//! on drop. Components come from `tests/support/rail/node_modules`, installed by
//! `scripts/setup-test-env.sh`; a missing one is a panic naming that script, never a skip.
//!
//! - [`process`]: `ChildGuard`, `free_port`, `wait_http_ready`, `rail_bin`.
//! - [`chain`]: `Anvil` (chain 31337), `Token` (our EIP-3009 USDC), the dev accounts.
//! - [`x402_rail`]: the npm x402 reference `Facilitator` and `ReferenceSeller`, and `Rail`.
//! - [`payment`]: x402 v2 payments built without obol (cast-signed EIP-3009, base64 headers).
//! - [`paid_llm`]: a paid OpenAI-like upstream behind `@x402/express` (buyer sidecar tests).
//! - [`buyer`]: pre-signed pools and a running `obol serve buyer` (its HTTP API, metrics).
//! - [`remote_signer`]: the stack's remote-signer (`remote_signer.py`, signing with cast).
//! - [`traefik`]: real Traefik with a forwardAuth middleware in front of an upstream.
//! - [`verifier`]: a recording upstream, payer/seller balances, one series of a scrape.
//! - [`redis`]: a real `redis-server` for the shared payment-state store, stoppable.
//! - [`oidc`]: npm `oidc-provider` (OpenID Connect issuer) and a driver for its sign-in forms.

// Not every test file uses every helper.
#![allow(dead_code, unused_imports)]

pub mod buyer;
pub mod chain;
pub mod fake_kube;
pub mod oidc;
pub mod paid_llm;
pub mod payment;
pub mod process;
pub mod redis;
pub mod remote_signer;
pub mod traefik;
pub mod verifier;
pub mod x402_rail;

pub use chain::*;
pub use oidc::*;
pub use paid_llm::*;
pub use payment::*;
pub use process::*;
pub use remote_signer::RemoteSigner;
pub use traefik::*;
pub use verifier::{
    Balances, FaultyFacilitator, RecordingUpstream, Seen, SettleFault, UPSTREAM_BODY, series,
};
pub use x402_rail::*;
