//! Writes: server-side apply (field manager `obol`, forced), Secret apply with `data`, status
//! conditions, deletes that tolerate absence, and rollout restarts.
//!
//! Every function returns `kube::Error`; turn it into a message naming the cluster with
//! [`super::KubeClient::error`].

use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::types::{Condition, PurchaseRequest, ServiceOffer, upsert_condition};

/// The field manager of every write obol makes.
pub const FIELD_MANAGER: &str = "obol";

/// Pod-template annotation `kubectl rollout restart` sets; obol sets the same one.
pub const RESTARTED_AT_ANNOTATION: &str = "kubectl.kubernetes.io/restartedAt";

/// `PatchParams` for server-side apply as `manager`, forced (obol owns the fields it writes,
/// also when they were first written by kubectl or Helm).
pub fn apply_params(manager: &str) -> PatchParams {
    PatchParams::apply(manager).force()
}

/// Server-side apply of `obj` (name from its metadata) as field manager `obol`, forced.
/// Fields obol applied before and omits now are removed; fields others own are kept.
pub async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K, kube::Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug,
{
    apply_as(api, obj, FIELD_MANAGER).await
}

/// [`apply`] with another field manager (e.g. the verifier writing conditions).
pub async fn apply_as<K>(api: &Api<K>, obj: &K, manager: &str) -> Result<K, kube::Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    api.patch(&name, &apply_params(manager), &Patch::Apply(obj))
        .await
}

/// Server-side apply of an untyped object (Traefik Middleware, HTTPRoute, ...) in its
/// namespace (cluster-scoped when it has none).
pub async fn apply_dynamic(
    client: &Client,
    resource: &ApiResource,
    obj: &DynamicObject,
) -> Result<DynamicObject, kube::Error> {
    let api = dynamic_api(client, resource, obj.metadata.namespace.as_deref());
    let name = obj.metadata.name.clone().unwrap_or_default();
    api.patch(&name, &apply_params(FIELD_MANAGER), &Patch::Apply(obj))
        .await
}

/// `Api<DynamicObject>` for `resource` in `namespace` (all namespaces / cluster scope when
/// `None`).
pub fn dynamic_api(
    client: &Client,
    resource: &ApiResource,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

/// Deletes `name`; `Ok(false)` when it did not exist.
pub async fn delete_if_exists<K>(api: &Api<K>, name: &str) -> Result<bool, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// An Opaque Secret with `data` (bytes, base64 on the wire). Never `stringData`: it does not
/// work with server-side apply (stale keys linger).
pub fn secret(namespace: &str, name: &str, data: BTreeMap<String, Vec<u8>>) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "obol".to_string(),
            )])),
            ..Default::default()
        },
        type_: Some("Opaque".to_string()),
        data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
        ..Default::default()
    }
}

/// Server-side applies Secret `namespace/name` with exactly `data` (keys obol applied before
/// and left out now are removed). E.g. `erpc/obol-oauth-token` with key `token`.
pub async fn apply_secret(
    client: &Client,
    namespace: &str,
    name: &str,
    data: BTreeMap<String, Vec<u8>>,
) -> Result<Secret, kube::Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    apply(&api, &secret(namespace, name, data)).await
}

/// Merge-patches pod-template annotation `key: value` on Deployment `name`: a rolling
/// restart when the value changes, nothing when it is already set (use a content hash for
/// idempotent restarts, e.g. `obol.org/token-sha256`).
pub async fn rollout_restart_with(
    api: &Api<Deployment>,
    name: &str,
    key: &str,
    value: &str,
) -> Result<Deployment, kube::Error> {
    let patch = json!({
        "spec": {"template": {"metadata": {"annotations": {key: value}}}}
    });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

/// `kubectl rollout restart deployment/NAME`: sets `kubectl.kubernetes.io/restartedAt` to now.
pub async fn rollout_restart(api: &Api<Deployment>, name: &str) -> Result<Deployment, kube::Error> {
    rollout_restart_with(api, name, RESTARTED_AT_ANNOTATION, &now_rfc3339()).await
}

/// The current time in RFC 3339 (UTC, seconds), as Kubernetes timestamps are written.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Resources whose status carries [`Condition`]s.
pub trait HasConditions: Resource + Clone + Serialize + DeserializeOwned + Debug {
    fn conditions(&self) -> &[Condition];
    fn observed_generation(&self) -> Option<i64>;
}

impl HasConditions for ServiceOffer {
    fn conditions(&self) -> &[Condition] {
        self.status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or(&[])
    }

    fn observed_generation(&self) -> Option<i64> {
        self.status.as_ref()?.observed_generation
    }
}

impl HasConditions for PurchaseRequest {
    fn conditions(&self) -> &[Condition] {
        self.status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or(&[])
    }

    fn observed_generation(&self) -> Option<i64> {
        self.status.as_ref()?.observed_generation
    }
}

/// Sets conditions on the status of `name` (replacing those of the same type, keeping the
/// others and the transition time of an unchanged status), optionally with
/// `status.observedGeneration`. Read-modify-write guarded by `resourceVersion`, retried on a
/// conflict. Returns false when nothing changed (no write made).
pub async fn set_conditions<K>(
    api: &Api<K>,
    name: &str,
    new: &[Condition],
    observed_generation: Option<i64>,
) -> Result<bool, kube::Error>
where
    K: HasConditions,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        // `get` on the object, not on `/status`: the verifier's role has only `serviceoffers` get
        // and `serviceoffers/status` patch.
        let obj = api.get(name).await?;
        let mut conditions = obj.conditions().to_vec();
        let now = now_rfc3339();
        let mut changed = false;
        for c in new {
            changed |= upsert_condition(&mut conditions, c.clone(), &now);
        }
        if !changed
            && (observed_generation.is_none() || observed_generation == obj.observed_generation())
        {
            return Ok(false);
        }
        let mut status = json!({"conditions": conditions});
        if let Some(g) = observed_generation {
            status["observedGeneration"] = json!(g);
        }
        let patch = json!({
            "metadata": {"resourceVersion": obj.meta().resource_version},
            "status": status,
        });
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < 5 => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_use_data_not_string_data() {
        let s = secret(
            "erpc",
            "obol-oauth-token",
            BTreeMap::from([("token".to_string(), b"ey.J".to_vec())]),
        );
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["kind"], "Secret");
        assert_eq!(v["type"], "Opaque");
        assert_eq!(v["data"]["token"], "ZXkuSg==");
        assert!(v.get("stringData").is_none());
        assert_eq!(v["metadata"]["namespace"], "erpc");
    }

    #[test]
    fn apply_params_force_the_obol_manager() {
        let p = apply_params(FIELD_MANAGER);
        assert!(p.force);
        assert_eq!(p.field_manager.as_deref(), Some("obol"));
    }

    #[test]
    fn timestamps_are_rfc3339_seconds() {
        let t = now_rfc3339();
        assert_eq!(t.len(), "2026-01-01T00:00:00Z".len(), "{t}");
        assert!(t.ends_with('Z'));
    }
}
