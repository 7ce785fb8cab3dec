//! Where the refresh token (and the client secret, if any) is kept on this machine: the OS
//! keyring entry `obol` / `oauth-refresh-token`, or, when the keyring is missing, locked or
//! hangs, the 0600 file `$XDG_DATA_HOME/obol/oauth-refresh-token.json` in a 0700 directory (the
//! caller announces which, with the reason). The mechanism is [`crate::buyer::keystore`]'s, with
//! a different entry and file.
//!
//! [`RefreshLock`] serialises refreshes on one machine: with rotating refresh tokens, two
//! concurrent refreshes would use the same token twice, which issuers treat as theft (they
//! revoke the grant).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::SecretString;
use crate::buyer::keystore::{Deleted, KeyLocation, Keystore, KeystoreError};

/// Keyring user name (service `obol`).
pub const KEYRING_USER: &str = "oauth-refresh-token";
/// Fallback file name under `$XDG_DATA_HOME/obol`.
pub const FALLBACK_FILE: &str = "oauth-refresh-token.json";

/// The long-lived part of a sign-in.
#[derive(Clone, Debug)]
pub struct StoredGrant {
    pub issuer: String,
    pub client_id: String,
    pub refresh_token: SecretString,
    pub client_secret: Option<SecretString>,
}

#[derive(Serialize, Deserialize)]
struct Record {
    issuer: String,
    client_id: String,
    refresh_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    #[error(
        "the stored sign-in in {location} is unreadable; run `obol auth logout`, then log in again"
    )]
    Corrupt { location: String },
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The refresh-token store.
#[derive(Debug, Clone)]
pub struct TokenStore {
    keystore: Keystore,
}

impl Default for TokenStore {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenStore {
    /// Keyring first, the fallback file second. `OBOL_KEYRING=off` skips the keyring.
    pub fn new() -> Self {
        TokenStore {
            keystore: Keystore::for_secret(KEYRING_USER, FALLBACK_FILE),
        }
    }

    /// Only the file (`--insecure-storage`-style; tests).
    pub fn file_only(self) -> Self {
        TokenStore {
            keystore: self.keystore.file_only(),
        }
    }

    pub fn with_keystore(keystore: Keystore) -> Self {
        TokenStore { keystore }
    }

    pub fn fallback_file(&self) -> &Path {
        self.keystore.fallback_file()
    }

    /// Stores `grant`; returns where it went (the file location carries the reason).
    pub async fn save(&self, grant: &StoredGrant) -> Result<KeyLocation, StoreError> {
        let record = Record {
            issuer: grant.issuer.clone(),
            client_id: grant.client_id.clone(),
            refresh_token: grant.refresh_token.expose().to_owned(),
            client_secret: grant.client_secret.as_ref().map(|s| s.expose().to_owned()),
        };
        let text = serde_json::to_string(&record).unwrap_or_default();
        let ks = self.keystore.clone();
        Ok(blocking(move || ks.store(&text)).await?)
    }

    /// The stored grant and where it was found; `None` when there is none.
    pub async fn load(&self) -> Result<Option<(StoredGrant, KeyLocation)>, StoreError> {
        let ks = self.keystore.clone();
        let Some((text, location)) = blocking(move || ks.load()).await? else {
            return Ok(None);
        };
        let record: Record = serde_json::from_str(&text).map_err(|_| StoreError::Corrupt {
            location: location.to_string(),
        })?;
        Ok(Some((
            StoredGrant {
                issuer: record.issuer,
                client_id: record.client_id,
                refresh_token: SecretString::new(record.refresh_token),
                client_secret: record.client_secret.map(SecretString::new),
            },
            location,
        )))
    }

    /// Removes the grant from the keyring and the file. Idempotent.
    pub async fn delete(&self) -> Result<Deleted, StoreError> {
        let ks = self.keystore.clone();
        Ok(blocking(move || ks.delete()).await?)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KeystoreError> + Send + 'static,
) -> Result<T, KeystoreError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(KeystoreError::Read {
            path: PathBuf::from("<keyring>"),
            source: std::io::Error::other(e.to_string()),
        }),
    }
}

/// An exclusive advisory lock on `$XDG_STATE_HOME/obol/auth.lock`, held while refreshing.
#[derive(Debug)]
pub struct RefreshLock {
    _file: std::fs::File,
}

impl RefreshLock {
    /// Waits for the lock (another `obol auth refresh` may hold it for a few seconds).
    pub async fn acquire() -> Result<RefreshLock, StoreError> {
        let path = crate::paths::state_dir().join("auth.lock");
        let p = path.clone();
        let result = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&p)?;
            file.lock()?;
            Ok(file)
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r);
        result
            .map(|file| RefreshLock { _file: file })
            .map_err(|source| StoreError::Lock { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn grants_round_trip_through_the_file_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::with_keystore(
            Keystore::for_secret(KEYRING_USER, FALLBACK_FILE)
                .file_only()
                .with_fallback_file(dir.path().join("obol").join(FALLBACK_FILE)),
        );
        assert!(store.load().await.unwrap().is_none());
        let grant = StoredGrant {
            issuer: "http://127.0.0.1:9400".into(),
            client_id: "obol-cli".into(),
            refresh_token: SecretString::new("rt-1"),
            client_secret: Some(SecretString::new("cs")),
        };
        let loc = store.save(&grant).await.unwrap();
        assert!(matches!(loc, KeyLocation::File { .. }));
        let (back, _) = store.load().await.unwrap().unwrap();
        assert_eq!(back.refresh_token.expose(), "rt-1");
        assert_eq!(back.client_secret.unwrap().expose(), "cs");
        assert_eq!(back.client_id, "obol-cli");
        store.delete().await.unwrap();
        assert!(store.load().await.unwrap().is_none());
        // Debug never shows the token.
        assert!(!format!("{grant:?}").contains("rt-1"));
    }
}
