//! The issuer's token endpoint (code exchange, refresh; the `oauth2` crate) and revocation
//! endpoint (RFC 7009; plain reqwest, because `oauth2` refuses non-https revocation URLs and
//! local test issuers are `http://127.0.0.1`).
//!
//! Errors carry the OAuth error code and the issuer's description (scrubbed of the secrets in
//! play), never a token, code, verifier or client secret, nor a raw response body.

use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

use super::SecretString;
use super::discovery::{ProviderMetadata, error_chain};

/// The OAuth client: id, and the secret when the client has one (Google "Desktop app" clients
/// do; it is sent with HTTP Basic auth).
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: Option<SecretString>,
}

/// What a token response gave obol.
#[derive(Debug)]
pub struct TokenSet {
    pub id_token: Option<SecretString>,
    pub refresh_token: Option<SecretString>,
    pub expires_in: Option<std::time::Duration>,
}

/// The `id_token` field of an OpenID Connect token response.
#[derive(Clone, Deserialize, Serialize)]
pub struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl std::fmt::Debug for IdTokenField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdTokenField([redacted])")
    }
}

impl ExtraTokenFields for IdTokenField {}

type OidcTokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;

/// The `oauth2` client with the authorization and token endpoints set.
pub type OidcClient = oauth2::Client<
    BasicErrorResponse,
    OidcTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the issuer refused the grant (invalid_grant{})", describe(.description))]
    InvalidGrant { description: Option<String> },
    #[error("the issuer does not know this client or its secret (invalid_client{})", describe(.description))]
    InvalidClient { description: Option<String> },
    #[error("the issuer answered {error}{}", describe(.description))]
    Server {
        error: String,
        description: Option<String>,
        /// The HTTP status, when known (5xx and 429 are worth retrying).
        status: Option<u16>,
    },
    #[error("cannot reach the issuer's {endpoint}: {detail}")]
    Transport {
        endpoint: &'static str,
        detail: String,
    },
    #[error("the issuer's {endpoint} answered something that is not an OAuth token response")]
    Unparsable { endpoint: &'static str },
    #[error("the issuer's token response has no id_token (is `openid` among the granted scopes?)")]
    NoIdToken,
    #[error("invalid {what}: {detail}")]
    Config { what: &'static str, detail: String },
}

fn describe(d: &Option<String>) -> String {
    match d {
        Some(d) if !d.is_empty() => format!(": {d}"),
        _ => String::new(),
    }
}

impl TokenError {
    /// Worth retrying with backoff (network trouble, 5xx, 429), as opposed to a refusal.
    pub fn is_transient(&self) -> bool {
        match self {
            TokenError::Transport { .. } => true,
            TokenError::Server { status, error, .. } => {
                status.is_some_and(|s| s >= 500 || s == 429)
                    || error == "temporarily_unavailable"
                    || error == "server_error"
            }
            _ => false,
        }
    }
}

/// Builds the `oauth2` client for `meta` and `creds`.
pub fn client(
    meta: &ProviderMetadata,
    creds: &ClientCredentials,
) -> Result<OidcClient, TokenError> {
    let auth =
        AuthUrl::new(meta.authorization_endpoint.clone()).map_err(|e| TokenError::Config {
            what: "authorization endpoint",
            detail: e.to_string(),
        })?;
    let token = TokenUrl::new(meta.token_endpoint.clone()).map_err(|e| TokenError::Config {
        what: "token endpoint",
        detail: e.to_string(),
    })?;
    let mut c = oauth2::Client::new(ClientId::new(creds.client_id.clone()))
        .set_auth_uri(auth)
        .set_token_uri(token);
    if let Some(secret) = &creds.client_secret {
        c = c.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
    }
    Ok(c)
}

/// Exchanges the authorization `code` (with the PKCE `verifier` and the same `redirect_uri` as
/// the authorization request).
pub async fn exchange_code(
    http: &reqwest::Client,
    meta: &ProviderMetadata,
    creds: &ClientCredentials,
    redirect_uri: &str,
    code: SecretString,
    verifier: PkceCodeVerifier,
) -> Result<TokenSet, TokenError> {
    let client = client(meta, creds)?;
    let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| TokenError::Config {
        what: "redirect URI",
        detail: e.to_string(),
    })?;
    let secrets = secrets_of(creds, Some(code.expose()));
    let resp = client
        .exchange_code(AuthorizationCode::new(code.expose().to_owned()))
        .set_pkce_verifier(verifier)
        .set_redirect_uri(std::borrow::Cow::Owned(redirect))
        .request_async(&|req| send(http, req))
        .await
        .map_err(|e| map_error(e, "token endpoint", &secrets))?;
    Ok(token_set(resp))
}

/// Refreshes with `refresh_token`: a new ID token, and a new refresh token when the issuer
/// rotates them (Google does not).
pub async fn refresh(
    http: &reqwest::Client,
    meta: &ProviderMetadata,
    creds: &ClientCredentials,
    refresh_token: &SecretString,
) -> Result<TokenSet, TokenError> {
    let client = client(meta, creds)?;
    let secrets = secrets_of(creds, Some(refresh_token.expose()));
    let rt = RefreshToken::new(refresh_token.expose().to_owned());
    let resp = client
        .exchange_refresh_token(&rt)
        .request_async(&|req| send(http, req))
        .await
        .map_err(|e| map_error(e, "token endpoint", &secrets))?;
    Ok(token_set(resp))
}

/// Revokes `refresh_token` at the issuer's revocation endpoint (RFC 7009). Revoking a refresh
/// token ends the whole grant. An unknown or already revoked token is success (RFC 7009 §2.2).
pub async fn revoke(
    http: &reqwest::Client,
    endpoint: &str,
    creds: &ClientCredentials,
    refresh_token: &SecretString,
) -> Result<(), TokenError> {
    let secrets = secrets_of(creds, Some(refresh_token.expose()));
    let mut form = vec![
        ("token", refresh_token.expose().to_owned()),
        ("token_type_hint", "refresh_token".to_owned()),
    ];
    let mut req = http.post(endpoint).header("accept", "application/json");
    match &creds.client_secret {
        Some(secret) => {
            req = req.basic_auth(
                form_urlencode(&creds.client_id),
                Some(form_urlencode(secret.expose())),
            );
        }
        None => form.push(("client_id", creds.client_id.clone())),
    }
    let resp = req
        .form(&form)
        .send()
        .await
        .map_err(|e| TokenError::Transport {
            endpoint: "revocation endpoint",
            detail: super::scrub(&error_chain(&e), &secrets),
        })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body = resp.bytes().await.unwrap_or_default();
    #[derive(Deserialize)]
    struct ErrBody {
        error: String,
        error_description: Option<String>,
    }
    match serde_json::from_slice::<ErrBody>(&body) {
        // Google answers 400 invalid_token for a token it no longer knows: already revoked.
        Ok(e) if e.error == "invalid_token" => Ok(()),
        Ok(e) if e.error == "invalid_client" => Err(TokenError::InvalidClient {
            description: e.error_description.map(|d| super::scrub(&d, &secrets)),
        }),
        Ok(e) => Err(TokenError::Server {
            error: e.error,
            description: e.error_description.map(|d| super::scrub(&d, &secrets)),
            status: Some(status.as_u16()),
        }),
        Err(_) => Err(TokenError::Server {
            error: format!("HTTP {}", status.as_u16()),
            description: None,
            status: Some(status.as_u16()),
        }),
    }
}

/// RFC 6749 §2.3.1: client id and secret are form-urlencoded before HTTP Basic encoding.
fn form_urlencode(s: &str) -> String {
    oauth2::url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn secrets_of<'a>(creds: &'a ClientCredentials, extra: Option<&'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::new();
    if let Some(s) = &creds.client_secret {
        v.push(s.expose());
    }
    if let Some(e) = extra {
        v.push(e);
    }
    v
}

fn token_set(resp: OidcTokenResponse) -> TokenSet {
    TokenSet {
        id_token: resp
            .extra_fields()
            .id_token
            .clone()
            .filter(|t| !t.is_empty())
            .map(SecretString::new),
        refresh_token: resp
            .refresh_token()
            .map(|t| SecretString::new(t.secret().clone()))
            .filter(|t| !t.is_empty()),
        expires_in: resp.expires_in(),
    }
}

/// Transport failure, or an answer not worth parsing (5xx, 429: retry later).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Transport(String),
    #[error("HTTP {0}")]
    Status(u16),
}

/// The HTTP client handed to `oauth2`: reqwest, with 5xx and 429 answers turned into errors
/// (oauth2 would try to parse their bodies as OAuth errors and lose the status).
async fn send(
    http: &reqwest::Client,
    req: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, HttpError> {
    let req = reqwest::Request::try_from(req).map_err(|e| HttpError::Transport(error_chain(&e)))?;
    let resp = http
        .execute(req)
        .await
        .map_err(|e| HttpError::Transport(error_chain(&e)))?;
    let status = resp.status();
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(HttpError::Status(status.as_u16()));
    }
    let mut builder = http::Response::builder().status(status);
    for (name, value) in resp.headers() {
        builder = builder.header(name, value);
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| HttpError::Transport(error_chain(&e)))?;
    builder
        .body(body.to_vec())
        .map_err(|e| HttpError::Transport(e.to_string()))
}

fn map_error(
    err: RequestTokenError<HttpError, BasicErrorResponse>,
    endpoint: &'static str,
    secrets: &[&str],
) -> TokenError {
    match err {
        RequestTokenError::ServerResponse(resp) => {
            let description = resp.error_description().map(|d| super::scrub(d, secrets));
            match resp.error() {
                BasicErrorResponseType::InvalidGrant => TokenError::InvalidGrant { description },
                BasicErrorResponseType::InvalidClient => TokenError::InvalidClient { description },
                other => TokenError::Server {
                    error: other.to_string(),
                    description,
                    status: None,
                },
            }
        }
        RequestTokenError::Request(HttpError::Status(status)) => TokenError::Server {
            error: format!("HTTP {status}"),
            description: None,
            status: Some(status),
        },
        RequestTokenError::Request(HttpError::Transport(detail)) => TokenError::Transport {
            endpoint,
            detail: super::scrub(&detail, secrets),
        },
        // The body may hold tokens: never quote it.
        RequestTokenError::Parse(_, _) => TokenError::Unparsable { endpoint },
        // "server returned empty error response": a non-200 answer without a body.
        RequestTokenError::Other(msg) => TokenError::Server {
            error: super::scrub(&msg, secrets),
            description: None,
            status: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_debug_hides_the_secret() {
        let c = ClientCredentials {
            client_id: "id".into(),
            client_secret: Some(SecretString::new("GOCSPX-very-secret")),
        };
        let d = format!("{c:?}");
        assert!(!d.contains("very-secret"), "{d}");
    }

    #[test]
    fn invalid_grant_is_not_transient_but_5xx_is() {
        assert!(!TokenError::InvalidGrant { description: None }.is_transient());
        assert!(
            TokenError::Server {
                error: "x".into(),
                description: None,
                status: Some(503)
            }
            .is_transient()
        );
        assert!(
            TokenError::Transport {
                endpoint: "token endpoint",
                detail: "refused".into()
            }
            .is_transient()
        );
    }

    #[test]
    fn client_ids_are_form_encoded_for_basic_auth() {
        assert_eq!(form_urlencode("a b:c"), "a+b%3Ac");
    }
}
