//! The buyer side: wallets (keyring, key file, env, remote-signer), the spending policy, the
//! payment ledger, the `buy pay` client and the `buy request` pieces (probe, balance, pre-signing,
//! the PurchaseRequest).

pub mod keystore;
pub mod ledger;
pub mod pay;
pub mod policy;
pub mod purchase;
pub mod rpc;
pub mod sidecar;
pub mod wallet;

pub use keystore::{KeyLocation, Keystore};
pub use ledger::{Ledger, LedgerEntry, PaymentStatus};
pub use policy::{Choice, Refusal, SpendingPolicy};
pub use wallet::{Wallet, WalletError, WalletOrigin, WalletSource};
