//! The buyer's wallet: a local private key or the stack's remote-signer.
//!
//! Resolution order, first match wins: `--signer-url`, `--private-key-file`, env
//! `OBOL_PRIVATE_KEY`, the OS keyring, the keyring's fallback file. A private key never appears
//! in a message; a remote signature is checked to recover to the signer's address before use.

use std::path::PathBuf;
use std::time::Duration;

use alloy_primitives::{Address, B256};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::Eip712Domain;

use super::keystore::{KeyLocation, Keystore, KeystoreError, check_private_mode};
use crate::x402::eip3009::{self, TransferWithAuthorization};

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("no wallet is configured")]
    NoWallet,
    #[error("{origin} does not hold a valid private key (expected 32 bytes of hex)")]
    BadKey { origin: String },
    #[error("cannot read the key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    #[error("remote signer {url}: {detail}")]
    Remote { url: String, detail: String },
    #[error("signing failed: {0}")]
    Signing(String),
}

/// Where the active key came from (for `wallet address` and messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalletOrigin {
    RemoteSigner(String),
    KeyFile(PathBuf),
    Env,
    Stored(KeyLocation),
}

impl std::fmt::Display for WalletOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WalletOrigin::RemoteSigner(url) => write!(f, "remote signer {url}"),
            WalletOrigin::KeyFile(path) => write!(f, "key file {}", path.display()),
            WalletOrigin::Env => f.write_str("env OBOL_PRIVATE_KEY"),
            WalletOrigin::Stored(loc) => write!(f, "{loc}"),
        }
    }
}

/// Where to look for the wallet (the `--private-key-file` / `--signer-url` flags).
#[derive(Debug, Clone, Default)]
pub struct WalletSource {
    pub private_key_file: Option<PathBuf>,
    pub signer_url: Option<String>,
}

#[derive(Debug)]
pub enum Wallet {
    Local(PrivateKeySigner),
    Remote(RemoteSigner),
}

impl Wallet {
    /// Finds the wallet following the resolution order above.
    pub async fn open(
        source: &WalletSource,
        keystore: &Keystore,
    ) -> Result<(Wallet, WalletOrigin), WalletError> {
        if let Some(url) = &source.signer_url {
            let remote = RemoteSigner::connect(url).await?;
            return Ok((
                Wallet::Remote(remote),
                WalletOrigin::RemoteSigner(url.clone()),
            ));
        }
        if let Some(path) = &source.private_key_file {
            let text = std::fs::read_to_string(path).map_err(|source| WalletError::KeyFile {
                path: path.clone(),
                source,
            })?;
            check_private_mode(path)?;
            let signer = parse_private_key(&text, &format!("key file {}", path.display()))?;
            return Ok((Wallet::Local(signer), WalletOrigin::KeyFile(path.clone())));
        }
        if let Ok(text) = std::env::var("OBOL_PRIVATE_KEY")
            && !text.trim().is_empty()
        {
            let signer = parse_private_key(&text, "env OBOL_PRIVATE_KEY")?;
            return Ok((Wallet::Local(signer), WalletOrigin::Env));
        }
        let keystore = keystore.clone();
        let loaded = tokio::task::spawn_blocking(move || keystore.load())
            .await
            .map_err(|e| WalletError::Signing(e.to_string()))??;
        match loaded {
            Some((text, location)) => {
                let signer = parse_private_key(&text, &location.to_string())?;
                Ok((Wallet::Local(signer), WalletOrigin::Stored(location)))
            }
            None => Err(WalletError::NoWallet),
        }
    }

    pub fn address(&self) -> Address {
        match self {
            Wallet::Local(signer) => signer.address(),
            Wallet::Remote(remote) => remote.address,
        }
    }

    /// Signs an EIP-3009 authorization; the signature is checked to recover to `address()`.
    pub async fn sign_transfer(
        &self,
        auth: &TransferWithAuthorization,
        domain: &Eip712Domain,
    ) -> Result<[u8; 65], WalletError> {
        let hash = eip3009::signing_hash(auth, domain);
        let signature = match self {
            Wallet::Local(signer) => eip3009::sign_hash_local(signer, hash)
                .map_err(|e| WalletError::Signing(e.to_string()))?,
            Wallet::Remote(remote) => remote.sign(auth, domain).await?,
        };
        verify_own_signature(&signature, hash, self.address())?;
        Ok(signature)
    }
}

fn verify_own_signature(sig: &[u8; 65], hash: B256, expected: Address) -> Result<(), WalletError> {
    match eip3009::recover(sig, hash) {
        Ok(addr) if addr == expected => Ok(()),
        Ok(addr) => Err(WalletError::Signing(format!(
            "the signature recovers to {addr}, not to the wallet {expected}"
        ))),
        Err(e) => Err(WalletError::Signing(format!(
            "the signer produced an unusable signature: {e}"
        ))),
    }
}

/// Parses a hex private key (with or without 0x). The error names only where it came from.
pub fn parse_private_key(text: &str, origin: &str) -> Result<PrivateKeySigner, WalletError> {
    let hex = text.trim();
    let hex = hex.strip_prefix("0x").unwrap_or(hex);
    let bad = || WalletError::BadKey {
        origin: origin.to_owned(),
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let bytes: B256 = hex.parse().map_err(|_| bad())?;
    PrivateKeySigner::from_bytes(&bytes).map_err(|_| bad())
}

/// The Obol Stack remote-signer: `GET /api/v1/keys`, `POST /api/v1/sign/<addr>/typed-data`.
#[derive(Debug)]
pub struct RemoteSigner {
    url: String,
    address: Address,
    http: reqwest::Client,
}

impl RemoteSigner {
    /// Connects and takes the first key the signer holds.
    pub async fn connect(url: &str) -> Result<Self, WalletError> {
        let url = url.trim_end_matches('/').to_owned();
        let remote_err = |detail: String| WalletError::Remote {
            url: url.clone(),
            detail,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| remote_err(e.to_string()))?;
        let resp = http
            .get(format!("{url}/api/v1/keys"))
            .send()
            .await
            .map_err(|e| remote_err(format!("unreachable ({})", without_url(&e))))?;
        if !resp.status().is_success() {
            return Err(remote_err(format!(
                "GET /api/v1/keys answered HTTP {}",
                resp.status().as_u16()
            )));
        }
        #[derive(serde::Deserialize)]
        struct Keys {
            keys: Vec<String>,
        }
        let keys: Keys = resp
            .json()
            .await
            .map_err(|e| remote_err(format!("GET /api/v1/keys: unexpected answer ({e})")))?;
        let first = keys
            .keys
            .first()
            .ok_or_else(|| remote_err("holds no keys".to_owned()))?;
        let address = first
            .parse::<Address>()
            .map_err(|_| remote_err(format!("returned an invalid address {first:?}")))?;
        Ok(RemoteSigner { url, address, http })
    }

    async fn sign(
        &self,
        auth: &TransferWithAuthorization,
        domain: &Eip712Domain,
    ) -> Result<[u8; 65], WalletError> {
        let remote_err = |detail: String| WalletError::Remote {
            url: self.url.clone(),
            detail,
        };
        let body = eip3009::typed_data_json(auth, domain);
        let resp = self
            .http
            .post(format!(
                "{}/api/v1/sign/{}/typed-data",
                self.url, self.address
            ))
            .json(&body)
            .send()
            .await
            .map_err(|e| remote_err(format!("unreachable ({})", without_url(&e))))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(remote_err(format!(
                "signing answered HTTP {}",
                status.as_u16()
            )));
        }
        #[derive(serde::Deserialize)]
        struct Signed {
            signature: String,
        }
        let signed: Signed = resp
            .json()
            .await
            .map_err(|e| remote_err(format!("unexpected signing answer ({e})")))?;
        let bytes = eip3009::parse_signature_hex(&signed.signature)
            .map_err(|e| remote_err(format!("returned a malformed signature ({e})")))?;
        let mut sig: [u8; 65] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| remote_err(format!("returned a {}-byte signature", bytes.len())))?;
        // Some signers return v as 0/1; USDC wants 27/28.
        if sig[64] < 27 {
            sig[64] += 27;
        }
        Ok(sig)
    }
}

fn without_url(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(url.as_str(), "");
    }
    text.trim().trim_end_matches(['(', ')', ' ']).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANVIL0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    #[test]
    fn parses_keys_with_and_without_prefix() {
        let a = parse_private_key(ANVIL0, "test").unwrap();
        let b = parse_private_key(&format!("  {}\n", &ANVIL0[2..]), "test").unwrap();
        assert_eq!(a.address(), b.address());
        assert_eq!(
            a.address(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
                .parse::<Address>()
                .unwrap()
        );
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        for bad in [
            "",
            "0x1234",
            "zz0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
            "0x0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            let err = parse_private_key(bad, "key file /k")
                .unwrap_err()
                .to_string();
            assert!(err.contains("key file /k"), "{err}");
            if bad.len() > 6 {
                assert!(!err.contains(&bad[4..20]), "{err}");
            }
        }
    }

    #[tokio::test]
    async fn local_signature_recovers_to_the_wallet() {
        let wallet = Wallet::Local(parse_private_key(ANVIL0, "test").unwrap());
        let auth = TransferWithAuthorization {
            from: wallet.address(),
            to: Address::repeat_byte(0x22),
            value: alloy_primitives::U256::from(10_000u64),
            validAfter: alloy_primitives::U256::from(1u64),
            validBefore: alloy_primitives::U256::from(2u64),
            nonce: B256::repeat_byte(7),
        };
        let domain = eip3009::domain("USD Coin", "2", 31337, Address::repeat_byte(0x33));
        let sig = wallet.sign_transfer(&auth, &domain).await.unwrap();
        let hash = eip3009::signing_hash(&auth, &domain);
        assert_eq!(eip3009::recover(&sig, hash).unwrap(), wallet.address());
    }
}
