//! OpenID Connect discovery: the issuer's `/.well-known/openid-configuration`.
//!
//! The document must name the issuer obol was given (exactly, up to a trailing `/`), and every
//! endpoint must be `https` (plain `http` only on a loopback address, for local test issuers):
//! tokens never travel in clear text.

use serde::Deserialize;

/// The parts of the provider metadata obol uses.
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("{what} {url} is not https (plain http is allowed only on 127.0.0.1/localhost)")]
    Insecure { what: &'static str, url: String },
    #[error("cannot reach the issuer at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("the issuer answered {status} for {url}")]
    Status { url: String, status: u16 },
    #[error("the issuer's {what} at {url} is not valid: {detail}")]
    Invalid {
        what: &'static str,
        url: String,
        detail: String,
    },
    #[error("the discovery document names issuer {got}, not {expected}")]
    IssuerMismatch { expected: String, got: String },
    #[error("issuer {issuer} does not support PKCE with S256 (it lists {methods})")]
    NoS256 { issuer: String, methods: String },
}

impl DiscoveryError {
    /// Network trouble worth retrying (as opposed to a misconfiguration).
    pub fn is_transient(&self) -> bool {
        match self {
            DiscoveryError::Unreachable { .. } => true,
            DiscoveryError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// The issuer URL without a trailing `/`.
pub fn normalize_issuer(issuer: &str) -> String {
    issuer.trim().trim_end_matches('/').to_owned()
}

/// `https`, or `http` on a loopback host.
pub fn check_secure(what: &'static str, url: &str) -> Result<(), DiscoveryError> {
    let insecure = || DiscoveryError::Insecure {
        what,
        url: url.to_owned(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| DiscoveryError::Invalid {
        what,
        url: url.to_owned(),
        detail: e.to_string(),
    })?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => match parsed.host() {
            Some(oauth2::url::Host::Domain("localhost")) => Ok(()),
            Some(oauth2::url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
            Some(oauth2::url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
            _ => Err(insecure()),
        },
        _ => Err(insecure()),
    }
}

/// Fetches and checks the discovery document of `issuer`.
pub async fn discover(
    http: &reqwest::Client,
    issuer: &str,
) -> Result<ProviderMetadata, DiscoveryError> {
    let issuer = normalize_issuer(issuer);
    check_secure("issuer", &issuer)?;
    let url = format!("{issuer}/.well-known/openid-configuration");
    let meta: ProviderMetadata = get_json(http, "discovery document", &url).await?;
    if normalize_issuer(&meta.issuer) != issuer {
        return Err(DiscoveryError::IssuerMismatch {
            expected: issuer,
            got: meta.issuer,
        });
    }
    check_secure("authorization endpoint", &meta.authorization_endpoint)?;
    check_secure("token endpoint", &meta.token_endpoint)?;
    check_secure("JWKS URI", &meta.jwks_uri)?;
    if let Some(r) = &meta.revocation_endpoint {
        check_secure("revocation endpoint", r)?;
    }
    if let Some(methods) = &meta.code_challenge_methods_supported
        && !methods.iter().any(|m| m == "S256")
    {
        return Err(DiscoveryError::NoS256 {
            issuer,
            methods: methods.join(", "),
        });
    }
    Ok(meta)
}

/// GET `url` as JSON (used for discovery and the JWKS).
pub async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    what: &'static str,
    url: &str,
) -> Result<T, DiscoveryError> {
    let resp = http
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| DiscoveryError::Unreachable {
            url: url.to_owned(),
            detail: error_chain(&e),
        })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(DiscoveryError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
        });
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| DiscoveryError::Unreachable {
            url: url.to_owned(),
            detail: error_chain(&e),
        })?;
    serde_json::from_slice(&body).map_err(|e| DiscoveryError::Invalid {
        what,
        url: url.to_owned(),
        detail: e.to_string(),
    })
}

/// An error and its sources on one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_is_accepted() {
        assert!(check_secure("issuer", "https://accounts.google.com").is_ok());
        assert!(check_secure("issuer", "http://127.0.0.1:9400").is_ok());
        assert!(check_secure("issuer", "http://localhost:9400").is_ok());
        assert!(check_secure("issuer", "http://[::1]:9400").is_ok());
        assert!(check_secure("issuer", "http://example.com").is_err());
        assert!(check_secure("issuer", "http://10.0.0.1").is_err());
        assert!(check_secure("issuer", "ftp://example.com").is_err());
    }

    #[test]
    fn issuer_is_normalised() {
        assert_eq!(
            normalize_issuer("https://accounts.google.com/"),
            "https://accounts.google.com"
        );
    }
}
