//! The cluster side of the token: Secret `erpc/obol-oauth-token` key `token` (server-side
//! apply by [`crate::k8s::apply::apply_secret`]: `data`, not `stringData`; field manager `obol`,
//! forced; label `app.kubernetes.io/managed-by: obol`), and the Secret an in-cluster
//! `obol auth refresh --from-secret NS/NAME` reads its grant from (keys `client_id`,
//! `client_secret` (optional), `refresh_token`, `issuer` (optional) — the layout of obol-stack's
//! `nodecore-oauth-refresh`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use super::SecretString;
use crate::k8s::KubeClient;
use crate::k8s::apply::apply_secret;

/// Key of the ID token in the token Secret.
pub const TOKEN_KEY: &str = "token";

/// A Secret read failure or an API refusal: `kube::Error` with the action that failed.
pub type KubeResult<T> = Result<T, (String, kube::Error)>;

/// Writes `token` as key `token` of Secret `namespace/name` (creating it if needed).
pub async fn write_token(
    kc: &KubeClient,
    namespace: &str,
    name: &str,
    token: &SecretString,
) -> KubeResult<()> {
    let data = BTreeMap::from([(TOKEN_KEY.to_owned(), token.expose().as_bytes().to_vec())]);
    apply_secret(kc.client(), namespace, name, data)
        .await
        .map(|_| ())
        .map_err(|e| (format!("writing Secret {namespace}/{name}"), e))
}

/// What the token Secret holds.
#[derive(Debug)]
pub enum SecretToken {
    /// No such Secret.
    Missing,
    /// The Secret exists; its `token` key is absent or empty.
    Empty,
    Token(SecretString),
}

/// Reads key `token` of Secret `namespace/name`.
pub async fn read_token(kc: &KubeClient, namespace: &str, name: &str) -> KubeResult<SecretToken> {
    let api: Api<Secret> = Api::namespaced(kc.client().clone(), namespace);
    let secret = api
        .get_opt(name)
        .await
        .map_err(|e| (format!("reading Secret {namespace}/{name}"), e))?;
    let Some(secret) = secret else {
        return Ok(SecretToken::Missing);
    };
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(TOKEN_KEY))
        .map(|b| String::from_utf8_lossy(&b.0).trim().to_owned())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(TOKEN_KEY))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_default();
    Ok(if value.is_empty() {
        SecretToken::Empty
    } else {
        SecretToken::Token(SecretString::new(value))
    })
}

/// Empties key `token` (an empty value: eRPC then sends an empty header). `Ok(false)` when
/// the Secret does not exist or its token was already empty (nothing written).
pub async fn clear_token(kc: &KubeClient, namespace: &str, name: &str) -> KubeResult<bool> {
    match read_token(kc, namespace, name).await? {
        SecretToken::Missing | SecretToken::Empty => Ok(false),
        SecretToken::Token(_) => write_token(kc, namespace, name, &SecretString::new(""))
            .await
            .map(|_| true),
    }
}

/// The grant an in-cluster refresher reads.
#[derive(Debug, Clone)]
pub struct RefreshSecret {
    pub namespace: String,
    pub name: String,
    pub issuer: Option<String>,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub refresh_token: SecretString,
    /// Every key of the Secret, kept when the refresh token is rotated.
    others: BTreeMap<String, Vec<u8>>,
}

/// Why the grant Secret is unusable.
#[derive(Debug, thiserror::Error)]
pub enum RefreshSecretError {
    #[error("{0}")]
    Kube(String, #[source] kube::Error),
    #[error("Secret {namespace}/{name} does not exist")]
    Missing { namespace: String, name: String },
    #[error("Secret {namespace}/{name} has no `{key}` key")]
    MissingKey {
        namespace: String,
        name: String,
        key: &'static str,
    },
}

/// Reads the grant from Secret `namespace/name`.
pub async fn read_refresh_secret(
    kc: &KubeClient,
    namespace: &str,
    name: &str,
) -> Result<RefreshSecret, RefreshSecretError> {
    let api: Api<Secret> = Api::namespaced(kc.client().clone(), namespace);
    let secret = api
        .get_opt(name)
        .await
        .map_err(|e| RefreshSecretError::Kube(format!("reading Secret {namespace}/{name}"), e))?;
    let Some(secret) = secret else {
        return Err(RefreshSecretError::Missing {
            namespace: namespace.into(),
            name: name.into(),
        });
    };
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    for (k, v) in secret.string_data.unwrap_or_default() {
        data.entry(k).or_insert_with(|| v.into_bytes());
    }
    let text = |key: &str| {
        data.get(key)
            .map(|v| String::from_utf8_lossy(v).trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let missing = |key| RefreshSecretError::MissingKey {
        namespace: namespace.into(),
        name: name.into(),
        key,
    };
    Ok(RefreshSecret {
        namespace: namespace.into(),
        name: name.into(),
        issuer: text("issuer"),
        client_id: text("client_id").ok_or_else(|| missing("client_id"))?,
        client_secret: text("client_secret").map(SecretString::new),
        refresh_token: SecretString::new(
            text("refresh_token").ok_or_else(|| missing("refresh_token"))?,
        ),
        others: data,
    })
}

/// Writes a rotated refresh token back into the grant Secret (its other keys unchanged).
pub async fn update_refresh_token(
    kc: &KubeClient,
    grant: &RefreshSecret,
    refresh_token: &SecretString,
) -> KubeResult<()> {
    let mut data = grant.others.clone();
    data.insert(
        "refresh_token".into(),
        refresh_token.expose().as_bytes().to_vec(),
    );
    apply_secret(kc.client(), &grant.namespace, &grant.name, data)
        .await
        .map(|_| ())
        .map_err(|e| {
            (
                format!("writing Secret {}/{}", grant.namespace, grant.name),
                e,
            )
        })
}

/// Splits `NAMESPACE/NAME`.
pub fn parse_ref(s: &str) -> Option<(String, String)> {
    let (ns, name) = s.split_once('/')?;
    let ok = |p: &str| !p.is_empty() && !p.contains('/');
    (ok(ns) && ok(name)).then(|| (ns.to_owned(), name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_refs_parse() {
        assert_eq!(
            parse_ref("erpc/nodecore-oauth-refresh"),
            Some(("erpc".into(), "nodecore-oauth-refresh".into()))
        );
        assert_eq!(parse_ref("erpc"), None);
        assert_eq!(parse_ref("/x"), None);
        assert_eq!(parse_ref("a/b/c"), None);
    }
}
