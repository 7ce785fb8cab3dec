//! The x402 protocol: wire types, header codec, networks, amounts, EIP-3009 signing and the
//! facilitator client. Nothing here knows about HTTP servers, Kubernetes or the CLI.
//!
//! - [`amount`]: decimal strings <-> atomic `U256` units (never floats).
//! - [`codec`]: the base64-JSON header encoding and the header names of both versions.
//! - [`wire`]: the v1 and v2 JSON shapes, the normalised [`Requirement`] view, payment payloads
//!   and settlement receipts.
//! - [`networks`]: the chain + asset registry (built-in chains plus the `OBOL_NETWORKS` file).
//! - [`eip3009`]: EIP-712 hashing, signing, recovery and the local payment checks.
//! - [`facilitator`]: the `/verify`, `/settle` and `/supported` client.
//! - [`chain`]: what the chain says about one authorization (which transfer used its nonce).

pub mod amount;
pub mod chain;
pub mod codec;
pub mod eip3009;
pub mod facilitator;
pub mod networks;
pub mod wire;

pub use amount::{AmountError, Rounding, format_atomic, parse_atomic, parse_decimal};
pub use codec::{
    DecodeError, MAX_HEADER_BYTES, PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE,
    X_PAYMENT, X_PAYMENT_RESPONSE, decode_header, encode_header,
};
pub use eip3009::{
    CheckError, CheckedAuthorization, Expected, SignatureError, TransferWithAuthorization,
};
pub use facilitator::{FacilitatorClient, FacilitatorConfig, FacilitatorError};
pub use networks::{Asset, Network, NetworkError, Registry};
pub use wire::{
    Authorization, ExactEvmPayload, PaymentPayload, PaymentPayloadV1, PaymentPayloadV2,
    PaymentRequired, PaymentRequiredV1, PaymentRequiredV2, PaymentRequirements,
    PaymentRequirementsV1, Requirement, ResourceInfo, SettleResponse, SupportedKind,
    SupportedResponse, VerifyResponse, read_settlement,
};
