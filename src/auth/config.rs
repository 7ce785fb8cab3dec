//! The optional settings file `$XDG_CONFIG_HOME/obol/auth.yaml`, for values one would otherwise
//! repeat on every `obol auth login`:
//!
//! ```yaml
//! issuer: https://accounts.google.com
//! clientId: 1234-abc.apps.googleusercontent.com
//! clientSecret: GOCSPX-...        # a Desktop-app client's secret (keep the file 0600)
//! secretNamespace: erpc
//! secretName: obol-oauth-token
//! ```
//!
//! Flags and `OBOL_OAUTH_*` environment variables win over the file.

use std::path::PathBuf;

use serde::Deserialize;

use super::SecretString;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthConfig {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    #[serde(default, deserialize_with = "secret_opt")]
    pub client_secret: Option<SecretString>,
    pub secret_namespace: Option<String>,
    pub secret_name: Option<String>,
}

fn secret_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .filter(|s| !s.is_empty())
        .map(SecretString::new))
}

#[derive(Debug, thiserror::Error)]
#[error("cannot use {path}: {detail}")]
pub struct ConfigError {
    pub path: PathBuf,
    pub detail: String,
}

/// `$XDG_CONFIG_HOME/obol/auth.yaml`.
pub fn path() -> PathBuf {
    crate::paths::config_dir().join("auth.yaml")
}

impl AuthConfig {
    /// The file's settings; empty when it does not exist. A file holding a client secret must
    /// not be readable by others.
    pub fn load() -> Result<AuthConfig, ConfigError> {
        let p = path();
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AuthConfig::default()),
            Err(e) => {
                return Err(ConfigError {
                    path: p,
                    detail: e.to_string(),
                });
            }
        };
        let cfg = AuthConfig::parse(&text).map_err(|detail| ConfigError {
            path: p.clone(),
            detail,
        })?;
        if cfg.client_secret.is_some() {
            crate::buyer::keystore::check_private_mode(&p).map_err(|e| ConfigError {
                path: p.clone(),
                detail: e.to_string(),
            })?;
        }
        Ok(cfg)
    }

    /// Parses the file's text (empty text: no settings).
    pub fn parse(text: &str) -> Result<AuthConfig, String> {
        if text.trim().is_empty() {
            return Ok(AuthConfig::default());
        }
        // serde_yaml_ng errors name the field and the position.
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_unknown_keys_are_refused() {
        let c = AuthConfig::parse(
            "issuer: https://id.example.com\nclientId: obol-cli\nclientSecret: s3cret-value\nsecretName: tok\n",
        )
        .unwrap();
        assert_eq!(c.issuer.as_deref(), Some("https://id.example.com"));
        assert_eq!(c.client_id.as_deref(), Some("obol-cli"));
        assert_eq!(c.client_secret.as_ref().unwrap().expose(), "s3cret-value");
        assert_eq!(c.secret_name.as_deref(), Some("tok"));
        assert!(!format!("{c:?}").contains("s3cret-value"));
        assert!(AuthConfig::parse("").unwrap().client_id.is_none());
        let err = AuthConfig::parse("client_id: x\n").unwrap_err();
        assert!(err.contains("client_id"), "{err}");
    }
}
