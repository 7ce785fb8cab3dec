//! `obol auth`: sign in to an OpenID Connect issuer (Google by default) from the command line
//! and keep the Kubernetes Secret eRPC reads its upstream token from fresh.
//!
//! The flow (RFC 6749 authorization code + RFC 7636 PKCE S256, with `state` and `nonce`, over a
//! RFC 8252 loopback redirect):
//!
//! 1. [`discovery`]: the issuer's `/.well-known/openid-configuration` (endpoints, JWKS).
//! 2. [`callback`]: an HTTP server on `127.0.0.1` (never another address) that waits for the
//!    browser's redirect, checks `state` (and `iss` when sent), and answers with a plain page.
//! 3. [`pkce`]: the authorization request (scopes per issuer, PKCE challenge, state, nonce).
//! 4. [`tokens`]: code exchange, refresh and revocation at the issuer (the `oauth2` crate).
//! 5. [`idtoken`]: the ID token is checked before use: JWKS signature (RS256, ES256), `iss`,
//!    `aud`, `exp`, `nonce`.
//! 6. [`secret`]: the token is server-side applied to Secret `erpc/obol-oauth-token` key `token`.
//! 7. [`store`]: the refresh token goes to the OS keyring, else a 0600 file (announced).
//! 8. [`restart`]: eRPC reads the token only at start, so its Deployment is rolled (a pod-template
//!    annotation with a hash of the token), unless Stakater Reloader already watches the Secret.
//!
//! [`flow`] strings these together for `login` (after the browser part), `refresh`, `status` and
//! `logout`; [`session`] is the non-secret record of who is signed in; [`schedule`] decides when
//! `refresh --watch` refreshes next.
//!
//! Secrets (ID and refresh tokens, client secret, authorization code, PKCE verifier) are held in
//! [`SecretString`], whose `Debug` is redacted, and never reach logs, errors or JSON output.

pub mod callback;
pub mod config;
pub mod discovery;
pub mod flow;
pub mod idtoken;
pub mod pkce;
pub mod restart;
pub mod schedule;
pub mod secret;
pub mod session;
pub mod store;
pub mod tokens;

use std::fmt;
use std::time::Duration;

/// The issuer `obol auth login` signs in to unless told otherwise.
pub const DEFAULT_ISSUER: &str = "https://accounts.google.com";
/// How long `login` waits for the browser by default.
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(180);
/// Pod-template annotation on the eRPC Deployment: a hash prefix of the token it should run with.
pub const TOKEN_HASH_ANNOTATION: &str = "obol.org/oauth-token-hash";
/// Time limit of every HTTP exchange with the issuer.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A secret string: `Debug` and `Display` print `[redacted]`; read it with [`Self::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        SecretString(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The HTTP client for the issuer: rustls, no redirects followed (an OAuth endpoint that
/// redirects is misconfigured or an SSRF attempt), proxies from the environment, a time limit.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("obol/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Google's issuer needs `access_type=offline` + `prompt=consent` for a refresh token, and also
/// writes `accounts.google.com` (no scheme) into `iss`.
pub fn is_google(issuer: &str) -> bool {
    let trimmed = issuer.trim_end_matches('/');
    trimmed == "https://accounts.google.com" || trimmed == "accounts.google.com"
}

/// The first 16 hex digits of SHA-256(`token`): the value of [`TOKEN_HASH_ANNOTATION`] and what
/// `status` compares. Identifies a token without revealing it.
pub fn token_hash(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares two secrets in time independent of where they differ (digests of both, XOR-folded).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let da = ring::digest::digest(&ring::digest::SHA256, a.as_bytes());
    let db = ring::digest::digest(&ring::digest::SHA256, b.as_bytes());
    da.as_ref()
        .iter()
        .zip(db.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Removes every occurrence of the given secrets from `text` (for messages that quote an
/// issuer's or a server's words, which should never contain them, but might).
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        out = out.replace(*s, "[redacted]");
    }
    out
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A Unix time as RFC 3339 (UTC), e.g. for `status`.
pub fn format_unix(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// "in 42m", "3m ago": a relative time for people.
pub fn relative(t: i64, now: i64) -> String {
    let d = (t - now).abs();
    let s = if d < 120 {
        format!("{d}s")
    } else if d < 7200 {
        format!("{}m", d / 60)
    } else if d < 172_800 {
        format!("{}h", d / 3600)
    } else {
        format!("{}d", d / 86_400)
    };
    if t >= now {
        format!("in {s}")
    } else {
        format!("{s} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug_and_display() {
        let s = SecretString::new("eyJhbGciOi.secret.value");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(s.expose(), "eyJhbGciOi.secret.value");
    }

    #[test]
    fn token_hash_is_a_short_stable_prefix() {
        assert_eq!(token_hash("abc"), "ba7816bf8f01cfea");
        assert_eq!(token_hash("abc").len(), 16);
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq("state-1", "state-1"));
        assert!(!constant_time_eq("state-1", "state-2"));
        assert!(!constant_time_eq("state", "state-longer"));
    }

    #[test]
    fn google_is_recognised_with_or_without_scheme() {
        assert!(is_google("https://accounts.google.com"));
        assert!(is_google("https://accounts.google.com/"));
        assert!(!is_google("http://127.0.0.1:9400"));
    }

    #[test]
    fn scrub_removes_secrets() {
        assert_eq!(
            scrub("bad token abcdefgh123 here", &["abcdefgh123"]),
            "bad token [redacted] here"
        );
    }

    #[test]
    fn relative_times_read_well() {
        assert_eq!(relative(100, 40), "in 60s");
        assert_eq!(relative(0, 600), "10m ago");
        assert_eq!(relative(10_000, 0), "in 2h");
    }
}
