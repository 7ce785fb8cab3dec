//! obol: sell and buy HTTP/LLM services for x402 micropayments.
//!
//! The library holds every piece of logic; `src/main.rs` only parses arguments and maps
//! errors to exit codes. Dependencies point one way:
//! `commands -> {offers, verifier, buyer} -> x402`.

pub mod auth;
pub mod buyer;
pub mod cli;
pub mod commands;
pub mod daemon;
pub mod earnings;
pub mod k8s;
pub mod manifests;
pub mod offers;
pub mod paths;
pub mod secret;
pub mod verifier;
pub mod x402;
