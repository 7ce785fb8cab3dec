//! The `obol auth` operations, built from the other modules: the end of `login` (after the
//! browser handed over a code), `refresh` (once, or `--watch`), `status` and `logout`.
//!
//! Nothing is written anywhere (store, Secret, Deployment, session) until the issuer's answer
//! and the ID token have been checked. The one exception is a rotated refresh token: the issuer
//! retired the old one when it answered, so the new one is stored first, whatever happens next.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use super::SecretString;
use super::discovery::{self, DiscoveryError, ProviderMetadata};
use super::idtoken::{self, Claims, Expectations, IdTokenError, Jwks};
use super::pkce::AuthRequest;
use super::restart::{self, RestartOutcome};
use super::schedule::{self, Backoff};
use super::secret::{self, RefreshSecret, RefreshSecretError, SecretToken};
use super::session::{Session, SessionError};
use super::store::{RefreshLock, StoreError, StoredGrant, TokenStore};
use super::tokens::{self, ClientCredentials, TokenError};
use crate::buyer::keystore::KeyLocation;
use crate::k8s::{ClientOptions, K8sError, KubeClient};

/// Where the token goes and what is restarted.
#[derive(Debug, Clone)]
pub struct Target {
    pub kube: ClientOptions,
    pub secret_namespace: String,
    pub secret_name: String,
    pub deployment: String,
    /// `false` with `--no-restart`.
    pub restart: bool,
}

/// An issuer, discovered, with the client that talks to it.
#[derive(Debug, Clone)]
pub struct IssuerClient {
    pub issuer: String,
    pub meta: ProviderMetadata,
    pub creds: ClientCredentials,
}

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("{0}; nothing was written")]
    IdToken(#[from] IdTokenError),
    #[error("{message}")]
    Kube {
        message: String,
        hint: String,
        transient: bool,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("{0}")]
    RefreshSecret(String),
    #[error("not signed in: no refresh token is stored on this machine")]
    NotSignedIn,
    #[error("{0}")]
    Config(String),
}

impl FlowError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            FlowError::Discovery(DiscoveryError::Unreachable { .. }) => {
                "check --issuer and the network (a proxy goes in HTTPS_PROXY)".into()
            }
            FlowError::Discovery(_) => "check --issuer: it must be the issuer's base URL".into(),
            FlowError::Token(TokenError::InvalidGrant { .. }) => {
                "the sign-in expired or was revoked (or the code was already used): run `obol auth login`".into()
            }
            FlowError::Token(TokenError::InvalidClient { .. }) => {
                "check --client-id and --client-secret (OBOL_OAUTH_CLIENT_ID, OBOL_OAUTH_CLIENT_SECRET)".into()
            }
            FlowError::Token(TokenError::NoIdToken) => {
                "the issuer must grant the `openid` scope; check the OAuth client's settings".into()
            }
            FlowError::Token(t) if t.is_transient() => "the issuer had a problem; try again".into(),
            FlowError::IdToken(IdTokenError::WrongAudience { .. }) => {
                "the token was issued to another client: check --client-id".into()
            }
            FlowError::IdToken(IdTokenError::Expired { .. })
            | FlowError::IdToken(IdTokenError::IssuedInFuture { .. }) => {
                "check this machine's clock".into()
            }
            FlowError::IdToken(_) => {
                "the issuer's answer did not check out; run `obol auth login` again, and report it if it persists".into()
            }
            FlowError::Kube { hint, .. } => hint.clone(),
            FlowError::NotSignedIn => "run `obol auth login` first".into(),
            FlowError::RefreshSecret(_) => {
                "create it with keys client_id, refresh_token (and client_secret, issuer if needed)".into()
            }
            _ => return None,
        })
    }

    /// Worth retrying later (network trouble, 5xx, an unreachable cluster).
    pub fn is_transient(&self) -> bool {
        match self {
            FlowError::Discovery(d) => d.is_transient(),
            FlowError::Token(t) => t.is_transient(),
            FlowError::Kube { transient, .. } => *transient,
            _ => false,
        }
    }
}

/// Turns a failed cluster call into a [`FlowError`] naming the cluster, with `secrets` scrubbed
/// from the API server's words.
fn kube_error(
    kc: &KubeClient,
    (action, err): (String, kube::Error),
    secrets: &[&str],
) -> FlowError {
    let e = kc.error(action, err);
    let transient = match &e {
        K8sError::Unreachable { .. } => true,
        K8sError::Api { code, .. } => *code >= 500 || *code == 409 || *code == 429,
        _ => false,
    };
    FlowError::Kube {
        message: super::scrub(&e.to_string(), secrets),
        hint: e.hint(),
        transient,
    }
}

/// A cluster client from `target.kube`, checked reachable.
pub async fn connect(target: &Target) -> Result<KubeClient, FlowError> {
    let to_flow = |e: K8sError| FlowError::Kube {
        message: e.to_string(),
        hint: match e {
            K8sError::NoConfig { .. } => {
                "point --kubeconfig (or $KUBECONFIG) at the cluster that runs eRPC".into()
            }
            _ => e.hint(),
        },
        transient: matches!(e, K8sError::Unreachable { .. }),
    };
    let kc = KubeClient::new(&target.kube).await.map_err(to_flow)?;
    kc.check_reachable(Duration::from_secs(10))
        .await
        .map_err(to_flow)?;
    Ok(kc)
}

/// Discovers `issuer` for `creds`.
pub async fn discover(
    http: &reqwest::Client,
    issuer: &str,
    creds: ClientCredentials,
) -> Result<IssuerClient, FlowError> {
    let meta = discovery::discover(http, issuer).await?;
    Ok(IssuerClient {
        issuer: discovery::normalize_issuer(issuer),
        meta,
        creds,
    })
}

/// Checks `token` against the issuer's current JWKS.
pub async fn verify_id_token(
    http: &reqwest::Client,
    ic: &IssuerClient,
    token: &SecretString,
    nonce: Option<&str>,
) -> Result<Claims, FlowError> {
    let jwks: Jwks = discovery::get_json(http, "JWKS", &ic.meta.jwks_uri).await?;
    let claims = idtoken::verify(
        token.expose(),
        &jwks,
        &Expectations {
            issuer: &ic.issuer,
            client_id: &ic.creds.client_id,
            nonce,
            now: super::now_unix(),
        },
    )?;
    Ok(claims)
}

/// Where the refresh token of a login went.
#[derive(Debug, Clone)]
pub enum RefreshStorage {
    Stored(KeyLocation),
    /// The issuer returned none (`obol auth refresh` will not work); any refresh token kept
    /// from an earlier login was deleted.
    NotIssued,
}

/// What a completed login did.
#[derive(Debug)]
pub struct LoginOutcome {
    pub claims: Claims,
    pub token_hash: String,
    pub refresh: RefreshStorage,
    pub restart: RestartOutcome,
}

/// The end of `login`: exchange `code` with the request's PKCE verifier, check the ID token
/// (signature, iss, aud, exp, nonce), then store the refresh token, write the Secret, restart
/// eRPC and record the session.
pub async fn complete_login(
    http: &reqwest::Client,
    kc: &KubeClient,
    ic: &IssuerClient,
    req: &mut AuthRequest,
    code: SecretString,
    target: &Target,
    store: &TokenStore,
) -> Result<LoginOutcome, FlowError> {
    let verifier = req
        .take_verifier()
        .ok_or_else(|| FlowError::Config("this login already exchanged its code".into()))?;
    let set = tokens::exchange_code(
        http,
        &ic.meta,
        &ic.creds,
        req.redirect_uri(),
        code,
        verifier,
    )
    .await?;
    let id_token = set.id_token.ok_or(TokenError::NoIdToken)?;
    let claims = verify_id_token(http, ic, &id_token, Some(req.nonce())).await?;

    let refresh = match &set.refresh_token {
        Some(rt) => {
            let grant = StoredGrant {
                issuer: ic.issuer.clone(),
                client_id: ic.creds.client_id.clone(),
                refresh_token: rt.clone(),
                client_secret: ic.creds.client_secret.clone(),
            };
            RefreshStorage::Stored(store.save(&grant).await?)
        }
        None => {
            // A refresh token kept from an earlier login would refresh someone else's sign-in.
            store.delete().await?;
            RefreshStorage::NotIssued
        }
    };
    let (hash, restart) = publish(
        kc,
        target,
        &id_token,
        &secrets(&id_token, &set.refresh_token),
    )
    .await?;
    save_session(ic, &claims, &hash, target)?;
    Ok(LoginOutcome {
        claims,
        token_hash: hash,
        refresh,
        restart,
    })
}

fn secrets<'a>(id: &'a SecretString, rt: &'a Option<SecretString>) -> Vec<&'a str> {
    let mut v = vec![id.expose()];
    if let Some(rt) = rt {
        v.push(rt.expose());
    }
    v
}

/// Writes the token Secret and restarts eRPC (unless disabled); returns the token's hash.
async fn publish(
    kc: &KubeClient,
    target: &Target,
    id_token: &SecretString,
    secrets: &[&str],
) -> Result<(String, RestartOutcome), FlowError> {
    secret::write_token(kc, &target.secret_namespace, &target.secret_name, id_token)
        .await
        .map_err(|e| kube_error(kc, e, secrets))?;
    let hash = super::token_hash(id_token.expose());
    let outcome = restart_erpc(kc, target, &hash, secrets).await?;
    Ok((hash, outcome))
}

async fn restart_erpc(
    kc: &KubeClient,
    target: &Target,
    hash: &str,
    secrets: &[&str],
) -> Result<RestartOutcome, FlowError> {
    if !target.restart {
        return Ok(RestartOutcome::Disabled);
    }
    restart::restart_for_token(
        kc,
        &target.secret_namespace,
        &target.deployment,
        &target.secret_name,
        hash,
    )
    .await
    .map_err(|e| kube_error(kc, e, secrets))
}

fn save_session(
    ic: &IssuerClient,
    claims: &Claims,
    hash: &str,
    target: &Target,
) -> Result<(), FlowError> {
    Session {
        issuer: ic.issuer.clone(),
        client_id: ic.creds.client_id.clone(),
        subject: claims.sub.clone(),
        email: claims.email.clone(),
        issued_at: claims.iat,
        expires_at: claims.exp,
        token_hash: hash.to_owned(),
        secret_namespace: target.secret_namespace.clone(),
        secret_name: target.secret_name.clone(),
        deployment: target.deployment.clone(),
        kubeconfig: target.kube.kubeconfig.clone(),
        context: target.kube.context.clone(),
        updated_at: super::now_unix(),
    }
    .save()?;
    Ok(())
}

/// Where `refresh` finds the grant.
#[derive(Debug, Clone)]
pub enum GrantSource {
    /// This machine's store (keyring or file), under the refresh lock.
    Local(TokenStore),
    /// A Secret in the cluster (`--from-secret NAMESPACE/NAME`).
    Secret { namespace: String, name: String },
}

/// Values given on the command line that win over the stored ones.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
}

/// What one refresh did.
#[derive(Debug)]
pub struct RefreshOutcome {
    pub claims: Claims,
    pub token_hash: String,
    /// The issuer returned a new refresh token, which replaced the old one.
    pub rotated: bool,
    /// Where the refresh token lives (keyring, file path, or `Secret NS/NAME`).
    pub grant_location: String,
    pub restart: RestartOutcome,
}

/// Refreshes once: new ID token (checked), rotated refresh token stored, Secret written, eRPC
/// restarted.
pub async fn refresh_once(
    http: &reqwest::Client,
    kc: &KubeClient,
    source: &GrantSource,
    target: &Target,
    overrides: &Overrides,
) -> Result<RefreshOutcome, FlowError> {
    match source {
        GrantSource::Local(store) => refresh_local(http, kc, store, target, overrides).await,
        GrantSource::Secret { namespace, name } => {
            refresh_from_secret(http, kc, namespace, name, target, overrides).await
        }
    }
}

async fn refresh_local(
    http: &reqwest::Client,
    kc: &KubeClient,
    store: &TokenStore,
    target: &Target,
    overrides: &Overrides,
) -> Result<RefreshOutcome, FlowError> {
    let _lock = RefreshLock::acquire().await?;
    let (grant, location) = store.load().await?.ok_or(FlowError::NotSignedIn)?;
    let issuer = overrides.issuer.clone().unwrap_or(grant.issuer.clone());
    let creds = ClientCredentials {
        client_id: overrides
            .client_id
            .clone()
            .unwrap_or(grant.client_id.clone()),
        client_secret: overrides
            .client_secret
            .clone()
            .or(grant.client_secret.clone()),
    };
    let ic = discover(http, &issuer, creds).await?;
    let set = tokens::refresh(http, &ic.meta, &ic.creds, &grant.refresh_token).await?;
    let (rotated, location) = match &set.refresh_token {
        Some(new) if new != &grant.refresh_token => {
            let loc = store
                .save(&StoredGrant {
                    issuer: ic.issuer.clone(),
                    client_id: ic.creds.client_id.clone(),
                    refresh_token: new.clone(),
                    client_secret: ic.creds.client_secret.clone(),
                })
                .await?;
            (true, loc)
        }
        _ => (false, location),
    };
    let id_token = set.id_token.clone().ok_or(TokenError::NoIdToken)?;
    let claims = verify_id_token(http, &ic, &id_token, None).await?;
    let mut all = secrets(&id_token, &set.refresh_token);
    all.push(grant.refresh_token.expose());
    let (hash, restart) = publish(kc, target, &id_token, &all).await?;
    save_session(&ic, &claims, &hash, target)?;
    Ok(RefreshOutcome {
        claims,
        token_hash: hash,
        rotated,
        grant_location: location.to_string(),
        restart,
    })
}

async fn refresh_from_secret(
    http: &reqwest::Client,
    kc: &KubeClient,
    namespace: &str,
    name: &str,
    target: &Target,
    overrides: &Overrides,
) -> Result<RefreshOutcome, FlowError> {
    let grant: RefreshSecret = secret::read_refresh_secret(kc, namespace, name)
        .await
        .map_err(|e| match e {
            RefreshSecretError::Kube(action, err) => kube_error(kc, (action, err), &[]),
            other => FlowError::RefreshSecret(other.to_string()),
        })?;
    let issuer = overrides
        .issuer
        .clone()
        .or(grant.issuer.clone())
        .unwrap_or_else(|| super::DEFAULT_ISSUER.to_owned());
    let creds = ClientCredentials {
        client_id: overrides
            .client_id
            .clone()
            .unwrap_or(grant.client_id.clone()),
        client_secret: overrides
            .client_secret
            .clone()
            .or(grant.client_secret.clone()),
    };
    let ic = discover(http, &issuer, creds).await?;
    let set = tokens::refresh(http, &ic.meta, &ic.creds, &grant.refresh_token).await?;
    let mut all = secrets_of_grant(&grant, &set.refresh_token);
    let rotated = match &set.refresh_token {
        Some(new) if new != &grant.refresh_token => {
            // The old token is retired: keep trying to save the new one for a while.
            let mut backoff = Backoff::default();
            let mut attempt = 0;
            loop {
                attempt += 1;
                match secret::update_refresh_token(kc, &grant, new).await {
                    Ok(()) => break,
                    Err(e) if attempt < 5 => {
                        tracing::warn!(
                            "saving the rotated refresh token failed ({}); retrying",
                            super::scrub(&e.1.to_string(), &all)
                        );
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                    Err(e) => return Err(kube_error(kc, e, &all)),
                }
            }
            true
        }
        _ => false,
    };
    let id_token = set.id_token.clone().ok_or(TokenError::NoIdToken)?;
    all.push(id_token.expose());
    let claims = verify_id_token(http, &ic, &id_token, None).await?;
    let (hash, restart) = publish(kc, target, &id_token, &all).await?;
    Ok(RefreshOutcome {
        claims,
        token_hash: hash,
        rotated,
        grant_location: format!("Secret {namespace}/{name}"),
        restart,
    })
}

fn secrets_of_grant<'a>(grant: &'a RefreshSecret, new: &'a Option<SecretString>) -> Vec<&'a str> {
    let mut v = vec![grant.refresh_token.expose()];
    if let Some(s) = &grant.client_secret {
        v.push(s.expose());
    }
    if let Some(n) = new {
        v.push(n.expose());
    }
    v
}

/// What `refresh --watch` reports between refreshes.
#[derive(Debug)]
pub enum WatchEvent {
    Refreshed {
        outcome: Box<RefreshOutcome>,
        next_in: Duration,
    },
    /// A transient failure; the next attempt comes after `retry_in`.
    Failed {
        error: FlowError,
        retry_in: Duration,
    },
}

/// Refreshes now and then again before each token expires, until `stop` resolves (SIGTERM,
/// Ctrl-C) or a permanent error (revoked grant, wrong client, RBAC refusal) ends it.
pub async fn watch(
    http: &reqwest::Client,
    kc: &KubeClient,
    source: &GrantSource,
    target: &Target,
    overrides: &Overrides,
    mut report: impl FnMut(WatchEvent),
    stop: impl Future<Output = ()>,
) -> Result<(), FlowError> {
    tokio::pin!(stop);
    let mut backoff = Backoff::default();
    loop {
        let wait = match refresh_once(http, kc, source, target, overrides).await {
            Ok(outcome) => {
                backoff.reset();
                let next_in = schedule::next_refresh_in(
                    super::now_unix(),
                    outcome.claims.iat,
                    outcome.claims.exp,
                );
                report(WatchEvent::Refreshed {
                    outcome: Box::new(outcome),
                    next_in,
                });
                next_in
            }
            Err(error) if error.is_transient() => {
                let retry_in = backoff.next_delay();
                report(WatchEvent::Failed { error, retry_in });
                retry_in
            }
            Err(error) => return Err(error),
        };
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// `obol auth status`.
#[derive(Debug, Serialize)]
pub struct Status {
    pub signed_in: bool,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub subject: Option<String>,
    pub email: Option<String>,
    /// RFC 3339.
    pub expires_at: Option<String>,
    pub expires_in_seconds: Option<i64>,
    pub expired: Option<bool>,
    pub last_refresh: Option<String>,
    pub secret: SecretStatus,
    pub refresh_token: RefreshTokenStatus,
}

#[derive(Debug, Serialize)]
pub struct SecretStatus {
    pub namespace: String,
    pub name: String,
    /// `same-token` (what obol last wrote), `other-token`, `empty`, `missing`, `unreachable`.
    pub state: &'static str,
    /// Who the Secret's token is for, and until when (read without verification).
    pub subject: Option<String>,
    pub email: Option<String>,
    pub expires_at: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RefreshTokenStatus {
    pub stored: bool,
    /// `keyring` or `file`.
    pub storage: Option<&'static str>,
    pub path: Option<String>,
    /// Why the keyring was not used, or why the store could not be read.
    pub note: Option<String>,
}

/// Gathers `status`. Reads the Secret when the cluster answers; never fails for that.
pub async fn status(target: &Target, store: &TokenStore) -> Result<Status, FlowError> {
    let session = Session::load()?;
    let now = super::now_unix();
    let refresh_token = match store.load().await {
        Ok(Some((_, KeyLocation::Keyring))) => RefreshTokenStatus {
            stored: true,
            storage: Some("keyring"),
            path: None,
            note: None,
        },
        Ok(Some((_, KeyLocation::File { path, why }))) => RefreshTokenStatus {
            stored: true,
            storage: Some("file"),
            path: Some(path.display().to_string()),
            note: Some(why),
        },
        Ok(None) => RefreshTokenStatus {
            stored: false,
            storage: None,
            path: None,
            note: None,
        },
        Err(e) => RefreshTokenStatus {
            stored: false,
            storage: None,
            path: None,
            note: Some(e.to_string()),
        },
    };
    let mut secret = SecretStatus {
        namespace: target.secret_namespace.clone(),
        name: target.secret_name.clone(),
        state: "unreachable",
        subject: None,
        email: None,
        expires_at: None,
        error: None,
    };
    match connect(target).await {
        Err(e) => secret.error = Some(e.to_string()),
        Ok(kc) => {
            match secret::read_token(&kc, &target.secret_namespace, &target.secret_name).await {
                Err(e) => secret.error = Some(kube_error(&kc, e, &[]).to_string()),
                Ok(SecretToken::Missing) => secret.state = "missing",
                Ok(SecretToken::Empty) => secret.state = "empty",
                Ok(SecretToken::Token(t)) => {
                    let same = session
                        .as_ref()
                        .is_some_and(|s| s.token_hash == super::token_hash(t.expose()));
                    secret.state = if same { "same-token" } else { "other-token" };
                    if let Ok(c) = idtoken::decode_unverified(t.expose()) {
                        secret.subject = Some(c.sub);
                        secret.email = c.email;
                        secret.expires_at = Some(super::format_unix(c.exp));
                    }
                }
            }
        }
    }
    Ok(Status {
        signed_in: session.is_some(),
        issuer: session.as_ref().map(|s| s.issuer.clone()),
        client_id: session.as_ref().map(|s| s.client_id.clone()),
        subject: session.as_ref().map(|s| s.subject.clone()),
        email: session.as_ref().and_then(|s| s.email.clone()),
        expires_at: session.as_ref().map(|s| super::format_unix(s.expires_at)),
        expires_in_seconds: session.as_ref().map(|s| s.expires_at - now),
        expired: session.as_ref().map(|s| s.expires_at <= now),
        last_refresh: session.as_ref().map(|s| super::format_unix(s.updated_at)),
        secret,
        refresh_token,
    })
}

/// `obol auth logout`.
#[derive(Debug, Serialize)]
pub struct LogoutOutcome {
    /// `revoked`, `not-supported` (no revocation endpoint), `no-refresh-token`, `skipped`
    /// (`--no-revoke`), `failed`.
    pub revocation: &'static str,
    pub revocation_error: Option<String>,
    /// `cleared`, `already-empty`, `missing`, `failed`.
    pub secret: &'static str,
    pub secret_error: Option<String>,
    /// What happened to eRPC (see [`RestartOutcome::kind`]), when the Secret changed.
    pub restart: Option<&'static str>,
    pub restart_detail: Option<String>,
    /// The refresh token was removed from the keyring / this file.
    pub removed_from_keyring: bool,
    pub removed_file: Option<String>,
    /// The stored refresh token was kept because revoking it failed (run logout again).
    pub kept_refresh_token: bool,
    pub keyring_error: Option<String>,
    pub session_removed: bool,
}

impl LogoutOutcome {
    pub fn failed(&self) -> bool {
        self.revocation == "failed" || self.secret == "failed"
    }
}

/// Revokes the refresh token at the issuer (when it has a revocation endpoint and `revoke`),
/// empties the Secret's token (restarting eRPC unless disabled), deletes the stored refresh
/// token and the session record. Idempotent. A failed revocation keeps the stored refresh token
/// (so that running logout again can retry) but does everything else.
pub async fn logout(
    http: &reqwest::Client,
    target: &Target,
    store: &TokenStore,
    revoke: bool,
    overrides: &Overrides,
) -> Result<LogoutOutcome, FlowError> {
    let mut out = LogoutOutcome {
        revocation: "no-refresh-token",
        revocation_error: None,
        secret: "missing",
        secret_error: None,
        restart: None,
        restart_detail: None,
        removed_from_keyring: false,
        removed_file: None,
        kept_refresh_token: false,
        keyring_error: None,
        session_removed: false,
    };
    let grant = store.load().await?;
    if let Some((grant, _)) = &grant {
        if !revoke {
            out.revocation = "skipped";
        } else {
            let creds = ClientCredentials {
                client_id: overrides
                    .client_id
                    .clone()
                    .unwrap_or(grant.client_id.clone()),
                client_secret: overrides
                    .client_secret
                    .clone()
                    .or(grant.client_secret.clone()),
            };
            let issuer = overrides.issuer.clone().unwrap_or(grant.issuer.clone());
            let result = match discover(http, &issuer, creds).await {
                Ok(ic) => match &ic.meta.revocation_endpoint {
                    None => Ok(false),
                    Some(ep) => tokens::revoke(http, ep, &ic.creds, &grant.refresh_token)
                        .await
                        .map(|_| true)
                        .map_err(FlowError::from),
                },
                Err(e) => Err(e),
            };
            match result {
                Ok(true) => out.revocation = "revoked",
                Ok(false) => out.revocation = "not-supported",
                Err(e) => {
                    out.revocation = "failed";
                    out.revocation_error = Some(super::scrub(
                        &e.to_string(),
                        &[grant.refresh_token.expose()],
                    ));
                }
            }
        }
    }

    match connect(target).await {
        Err(e) => {
            out.secret = "failed";
            out.secret_error = Some(e.to_string());
        }
        Ok(kc) => {
            match secret::clear_token(&kc, &target.secret_namespace, &target.secret_name).await {
                Ok(true) => {
                    out.secret = "cleared";
                    match restart_erpc(&kc, target, &super::token_hash(""), &[]).await {
                        Ok(r) => {
                            out.restart = Some(r.kind());
                            out.restart_detail = Some(r.to_string());
                        }
                        Err(e) => {
                            out.restart = Some("failed");
                            out.restart_detail = Some(e.to_string());
                        }
                    }
                }
                Ok(false) => {
                    out.secret =
                        match secret::read_token(&kc, &target.secret_namespace, &target.secret_name)
                            .await
                        {
                            Ok(SecretToken::Missing) => "missing",
                            _ => "already-empty",
                        }
                }
                Err(e) => {
                    out.secret = "failed";
                    out.secret_error = Some(kube_error(&kc, e, &[]).to_string());
                }
            }
        }
    }

    if out.revocation == "failed" {
        out.kept_refresh_token = true;
    } else {
        let deleted = store.delete().await?;
        out.removed_from_keyring = deleted.keyring;
        out.removed_file = deleted.file.map(|p| p.display().to_string());
        out.keyring_error = deleted.keyring_error;
    }
    out.session_removed = Session::delete()?;
    Ok(out)
}
