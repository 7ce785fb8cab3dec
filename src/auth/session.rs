//! The non-secret record of the current sign-in: `$XDG_STATE_HOME/obol/auth.json` (0600).
//!
//! It lets `refresh`, `status` and `logout` work without repeating flags (issuer, client id,
//! Secret, cluster), and lets `status` tell whether the Secret holds the token obol wrote
//! (by hash). It holds no token.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::buyer::keystore::write_private_file;

/// The record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub issuer: String,
    pub client_id: String,
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<i64>,
    pub expires_at: i64,
    /// [`super::token_hash`] of the ID token last written.
    pub token_hash: String,
    pub secret_namespace: String,
    pub secret_name: String,
    pub deployment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Unix time of the last login or refresh.
    pub updated_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot read {path}: {detail}")]
    Read { path: PathBuf, detail: String },
    #[error("cannot write {path}: {detail}")]
    Write { path: PathBuf, detail: String },
}

/// `$XDG_STATE_HOME/obol/auth.json`.
pub fn path() -> PathBuf {
    crate::paths::state_dir().join("auth.json")
}

impl Session {
    /// The record, if there is one.
    pub fn load() -> Result<Option<Session>, SessionError> {
        let p = path();
        match std::fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| SessionError::Read {
                    path: p,
                    detail: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SessionError::Read {
                path: p,
                detail: e.to_string(),
            }),
        }
    }

    pub fn save(&self) -> Result<(), SessionError> {
        let p = path();
        let text = serde_json::to_vec_pretty(self).unwrap_or_default();
        write_private_file(&p, &text).map_err(|e| SessionError::Write {
            path: p,
            detail: e.to_string(),
        })
    }

    /// Removes the record; `Ok(false)` when there was none.
    pub fn delete() -> Result<bool, SessionError> {
        let p = path();
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(SessionError::Write {
                path: p,
                detail: e.to_string(),
            }),
        }
    }
}
