//! The authorization request: PKCE S256 challenge, `state` (CSRF), `nonce` (replay), scopes.
//!
//! Scopes are `openid email` plus what the issuer needs to hand out a refresh token: Google
//! wants `access_type=offline` and `prompt=consent` (without the prompt it returns a refresh
//! token only on the first consent); other issuers want the `offline_access` scope, which OpenID
//! Connect Core §11 pairs with `prompt=consent`.
//!
//! The verifier, state and nonce stay in this struct; only the URL (which carries the challenge,
//! state and nonce, as every browser sees them) leaves it.

use oauth2::{CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope};

use super::discovery::ProviderMetadata;
use super::tokens::{ClientCredentials, TokenError};

/// One login attempt's authorization request and the secrets that check its answer.
pub struct AuthRequest {
    url: String,
    redirect_uri: String,
    state: CsrfToken,
    nonce: CsrfToken,
    verifier: Option<PkceCodeVerifier>,
}

impl std::fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthRequest")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

impl AuthRequest {
    /// Builds the request for `meta`'s authorization endpoint, redirecting to `redirect_uri`
    /// (the loopback callback, known only after binding it).
    pub fn new(
        meta: &ProviderMetadata,
        creds: &ClientCredentials,
        redirect_uri: &str,
        login_hint: Option<&str>,
    ) -> Result<AuthRequest, TokenError> {
        let client = super::tokens::client(meta, creds)?.set_redirect_uri(
            RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| TokenError::Config {
                what: "redirect URI",
                detail: e.to_string(),
            })?,
        );
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = CsrfToken::new_random_len(32);
        let mut req = client
            .authorize_url(|| CsrfToken::new_random_len(32))
            .add_scope(Scope::new("openid".into()))
            .add_scope(Scope::new("email".into()))
            .add_extra_param("nonce", nonce.secret().clone())
            .add_extra_param("prompt", "consent")
            .set_pkce_challenge(challenge);
        if super::is_google(&meta.issuer) {
            req = req.add_extra_param("access_type", "offline");
        } else {
            req = req.add_scope(Scope::new("offline_access".into()));
        }
        if let Some(hint) = login_hint {
            req = req.add_extra_param("login_hint", hint.to_owned());
        }
        let (url, state) = req.url();
        Ok(AuthRequest {
            url: url.to_string(),
            redirect_uri: redirect_uri.to_owned(),
            state,
            nonce,
            verifier: Some(verifier),
        })
    }

    /// The URL to open in a browser.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The `state` sent; the callback must return it unchanged.
    pub fn state(&self) -> &str {
        self.state.secret()
    }

    /// The `nonce` sent; the ID token must carry it.
    pub fn nonce(&self) -> &str {
        self.nonce.secret()
    }

    /// Whether `state` is this request's (constant time).
    pub fn state_matches(&self, state: &str) -> bool {
        super::constant_time_eq(state, self.state.secret())
    }

    /// The PKCE verifier, for the one code exchange this request allows.
    pub fn take_verifier(&mut self) -> Option<PkceCodeVerifier> {
        self.verifier.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(issuer: &str) -> ProviderMetadata {
        ProviderMetadata {
            issuer: issuer.into(),
            authorization_endpoint: format!("{issuer}/auth"),
            token_endpoint: format!("{issuer}/token"),
            jwks_uri: format!("{issuer}/jwks"),
            revocation_endpoint: None,
            code_challenge_methods_supported: Some(vec!["S256".into()]),
            id_token_signing_alg_values_supported: vec![],
        }
    }

    fn creds() -> ClientCredentials {
        ClientCredentials {
            client_id: "obol-cli".into(),
            client_secret: None,
        }
    }

    fn params(url: &str) -> std::collections::HashMap<String, String> {
        oauth2::url::Url::parse(url)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect()
    }

    #[test]
    fn generic_issuers_get_offline_access_and_pkce() {
        let mut r = AuthRequest::new(
            &meta("http://127.0.0.1:9400"),
            &creds(),
            "http://127.0.0.1:5555/callback",
            None,
        )
        .unwrap();
        let p = params(r.url());
        assert_eq!(p["response_type"], "code");
        assert_eq!(p["client_id"], "obol-cli");
        assert_eq!(p["redirect_uri"], "http://127.0.0.1:5555/callback");
        assert_eq!(p["code_challenge_method"], "S256");
        assert_eq!(p["scope"], "openid email offline_access");
        assert_eq!(p["prompt"], "consent");
        assert_eq!(p["state"], r.state());
        assert_eq!(p["nonce"], r.nonce());
        assert!(!p.contains_key("access_type"));
        assert!(r.state_matches(&p["state"]));
        assert!(!r.state_matches("forged"));
        // The verifier is not in the URL, and is handed out once.
        let v = r.take_verifier().unwrap();
        assert!(!r.url().contains(v.secret()));
        assert!(r.take_verifier().is_none());
        // Random per request.
        let r2 = AuthRequest::new(
            &meta("http://127.0.0.1:9400"),
            &creds(),
            "http://127.0.0.1:5555/callback",
            None,
        )
        .unwrap();
        assert_ne!(r.state(), r2.state());
        assert_ne!(r.nonce(), r2.nonce());
    }

    #[test]
    fn google_gets_access_type_offline() {
        let r = AuthRequest::new(
            &meta("https://accounts.google.com"),
            &creds(),
            "http://127.0.0.1:5555/callback",
            Some("me@example.com"),
        )
        .unwrap();
        let p = params(r.url());
        assert_eq!(p["scope"], "openid email");
        assert_eq!(p["access_type"], "offline");
        assert_eq!(p["prompt"], "consent");
        assert_eq!(p["login_hint"], "me@example.com");
    }
}
