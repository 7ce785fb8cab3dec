//! Making eRPC pick up a new token. eRPC expands `${OBOL_OAUTH_TOKEN}` once, at start-up, so
//! its pods must be replaced:
//!
//! - When the Deployment carries a Stakater Reloader annotation that covers the token Secret
//!   (`secret.reloader.stakater.com/reload` listing it, `reloader.stakater.com/auto: "true"` or
//!   `secret.reloader.stakater.com/auto: "true"`), Reloader rolls it on the Secret change and obol
//!   does nothing (two restarts per token would be wasteful).
//! - Otherwise obol merge-patches the pod-template annotation [`super::TOKEN_HASH_ANNOTATION`]
//!   with a hash of the token ([`crate::k8s::apply::rollout_restart_with`]): a rolling restart
//!   exactly when the token changed, none when the template already has that hash.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;

use super::TOKEN_HASH_ANNOTATION;
use crate::k8s::KubeClient;
use crate::k8s::apply::rollout_restart_with;

/// Which path was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartOutcome {
    /// obol patched the pod template: a rolling restart.
    Restarted { deployment: String, hash: String },
    /// The template already has this token's hash: nothing to do.
    AlreadyCurrent { deployment: String },
    /// Reloader watches the Secret and restarts eRPC itself.
    Reloader {
        deployment: String,
        annotation: String,
    },
    /// No such Deployment (eRPC not installed here, or another name).
    NoDeployment { deployment: String },
    /// `--no-restart`.
    Disabled,
}

impl RestartOutcome {
    /// A short machine-readable name for JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            RestartOutcome::Restarted { .. } => "restarted",
            RestartOutcome::AlreadyCurrent { .. } => "already-current",
            RestartOutcome::Reloader { .. } => "reloader",
            RestartOutcome::NoDeployment { .. } => "no-deployment",
            RestartOutcome::Disabled => "disabled",
        }
    }
}

impl fmt::Display for RestartOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartOutcome::Restarted { deployment, hash } => write!(
                f,
                "restarting Deployment {deployment} (pod-template annotation {TOKEN_HASH_ANNOTATION}={hash})"
            ),
            RestartOutcome::AlreadyCurrent { deployment } => write!(
                f,
                "Deployment {deployment} already runs with this token; not restarted"
            ),
            RestartOutcome::Reloader {
                deployment,
                annotation,
            } => write!(
                f,
                "Deployment {deployment} has the Reloader annotation {annotation}: Stakater Reloader restarts it; obol did not"
            ),
            RestartOutcome::NoDeployment { deployment } => write!(
                f,
                "no Deployment {deployment} in this namespace: nothing restarted (is eRPC installed?)"
            ),
            RestartOutcome::Disabled => f.write_str(
                "not restarted (--no-restart): eRPC uses the new token after its next restart",
            ),
        }
    }
}

/// The Reloader annotation (as `key=value`) on a Deployment's own metadata that makes Reloader
/// restart it when Secret `secret_name` changes.
pub fn reloader_annotation(
    annotations: &BTreeMap<String, String>,
    secret_name: &str,
) -> Option<String> {
    if let Some(list) = annotations.get("secret.reloader.stakater.com/reload")
        && list.split(',').any(|n| n.trim() == secret_name)
    {
        return Some(format!("secret.reloader.stakater.com/reload={list}"));
    }
    for key in [
        "reloader.stakater.com/auto",
        "secret.reloader.stakater.com/auto",
    ] {
        if annotations
            .get(key)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        {
            return Some(format!("{key}=true"));
        }
    }
    None
}

/// Restarts Deployment `namespace/deployment` for a token with hash `hash`, unless Reloader
/// does it or the template already carries the hash.
pub async fn restart_for_token(
    kc: &KubeClient,
    namespace: &str,
    deployment: &str,
    secret_name: &str,
    hash: &str,
) -> Result<RestartOutcome, (String, kube::Error)> {
    let api: Api<Deployment> = Api::namespaced(kc.client().clone(), namespace);
    let action = |verb: &str| format!("{verb} Deployment {namespace}/{deployment}");
    let Some(d) = api
        .get_opt(deployment)
        .await
        .map_err(|e| (action("reading"), e))?
    else {
        return Ok(RestartOutcome::NoDeployment {
            deployment: format!("{namespace}/{deployment}"),
        });
    };
    let name = format!("{namespace}/{deployment}");
    if let Some(annotation) = d
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| reloader_annotation(a, secret_name))
    {
        return Ok(RestartOutcome::Reloader {
            deployment: name,
            annotation,
        });
    }
    let current = d
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(TOKEN_HASH_ANNOTATION));
    if current.map(String::as_str) == Some(hash) {
        return Ok(RestartOutcome::AlreadyCurrent { deployment: name });
    }
    rollout_restart_with(&api, deployment, TOKEN_HASH_ANNOTATION, hash)
        .await
        .map_err(|e| (action("restarting"), e))?;
    Ok(RestartOutcome::Restarted {
        deployment: name,
        hash: hash.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reloader_annotations_are_recognised() {
        let s = "obol-oauth-token";
        assert!(
            reloader_annotation(
                &ann(&[("secret.reloader.stakater.com/reload", "a, obol-oauth-token")]),
                s
            )
            .is_some()
        );
        assert!(
            reloader_annotation(
                &ann(&[(
                    "secret.reloader.stakater.com/reload",
                    "obol-oauth-token-old"
                )]),
                s
            )
            .is_none()
        );
        assert!(reloader_annotation(&ann(&[("reloader.stakater.com/auto", "true")]), s).is_some());
        assert!(
            reloader_annotation(&ann(&[("secret.reloader.stakater.com/auto", "True")]), s)
                .is_some()
        );
        assert!(reloader_annotation(&ann(&[("reloader.stakater.com/auto", "false")]), s).is_none());
        assert!(reloader_annotation(&ann(&[]), s).is_none());
    }
}
