//! What can go wrong with the payment state. Every message says what to do, and none carries a
//! password: Redis URLs appear only redacted, and errors coming back from Redis are scrubbed
//! of the configured password before they are kept (see `redis::Scrubber`).

use std::path::PathBuf;

use super::super::replay::Replayed;

/// Why the payment state could not be read or written. The gate answers such a request with a
/// 503 and grants nothing: when unsure, fail closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// `--state` is not a store this verifier knows.
    #[error("--state: {0}")]
    BadSpec(String),

    /// Another verifier holds the file (redb locks it).
    #[error(
        "the payment-state file {} is in use by another verifier; stop that one, or give each verifier its own --state file (several replicas share state through redis://)",
        path.display()
    )]
    InUse { path: PathBuf },

    /// The file cannot be created, opened, read or written.
    #[error("the payment-state file {}: {detail}", path.display())]
    File { path: PathBuf, detail: String },

    /// The store (Redis) cannot be reached or refused the operation; retry when it is back.
    #[error(
        "the payment-state store {store} is unavailable: {detail}; payments are refused until it answers again"
    )]
    Unavailable { store: String, detail: String },

    /// An entry is in a format this verifier does not understand (written by a newer version,
    /// or damaged). Nothing is overwritten.
    #[error(
        "the payment-state store {store} holds an entry this verifier cannot read ({detail}); use the verifier version that wrote it, or move the state aside"
    )]
    Unreadable { store: String, detail: String },

    /// The claim's entry is no longer this claim's: its lease expired and another request took
    /// it over (Redis), or it was removed. Nothing was written; do not grant or settle.
    #[error(
        "this request no longer holds the payment (its lease expired and another request may have taken it over); do not grant or settle it"
    )]
    LostClaim,

    /// The store was closed (the verifier is shutting down) while the claim was open. Nothing
    /// was recorded; reopening the store recovers the entry (a file store releases an in-flight
    /// claim and keeps an interrupted settlement as unsettled).
    #[error("the payment-state store was closed before this payment was recorded")]
    Closed,

    /// A background task of the store failed (panicked or was cancelled).
    #[error("a payment-state task failed: {0}")]
    Task(String),
}

/// Why [`super::PaymentStore::claim`] did not hand out a claim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// The payment is taken: answer 409.
    #[error(transparent)]
    Replayed(#[from] Replayed),
    /// The store could not tell: answer 503, grant nothing.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<tokio::task::JoinError> for StoreError {
    fn from(err: tokio::task::JoinError) -> StoreError {
        StoreError::Task(err.to_string())
    }
}
