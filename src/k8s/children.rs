//! The routing objects of a ServiceOffer, owned by it (deleting the offer deletes them). Which
//! ones depends on the offer's gate mode (`obol.org/gate`, [`GateMode`]):
//!
//! - **proxy** (default): Gateway API `HTTPRoute` `so-<name>` (gateway.networking.k8s.io/v1):
//!   `PathPrefix` of the offer's path on the `traefik-gateway`, to the **verifier's** Service.
//!   The verifier matches the offer, takes the payment, forwards to the upstream (prefix
//!   stripped, `upstreamAuth` injected) and settles only after the upstream answered 2xx. A
//!   `ReferenceGrant` in the verifier's namespace lets the route reach its Service.
//! - **forward-auth**: Traefik `Middleware` `x402-<name>` (traefik.io/v1alpha1): forwardAuth to
//!   the verifier's `/verify`, copying `Authorization` (the upstream's key) and the payment
//!   headers into the request sent upstream; the `HTTPRoute` goes through it, prefix rewritten
//!   to `/`, to the upstream Service (a `ReferenceGrant` in the upstream's namespace when that
//!   is another one).
//!
//! An owner reference cannot cross namespaces, so a ReferenceGrant is found by its labels and
//! deleted explicitly.
//!
//! Pausing (`obol.org/paused: "true"`): [`paused_patch`] builds the merge patch.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

use super::types::{GateMode, PAUSED_ANNOTATION, ServiceOffer};

/// Where Traefik asks whether a request is paid: the verifier's internal listener.
pub const VERIFIER_VERIFY_URL: &str = "http://x402-verifier.x402.svc.cluster.local:9090/verify";

/// Headers of the verifier's 200 answer that Traefik copies into the upstream request.
pub const AUTH_RESPONSE_HEADERS: &[&str] = &[
    "X-Payment-Status",
    "X-Payment-Tx",
    "Authorization",
    "X-Payment-Payer",
    "Payment-Response",
    "X-Payment-Response",
];

/// Label keys on every child.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_OFFER_NAMESPACE: &str = "obol.org/serviceoffer-namespace";
pub const LABEL_OFFER_NAME: &str = "obol.org/serviceoffer-name";

/// The verifier's Service: the backend of proxy-mode HTTPRoutes.
pub const VERIFIER_SERVICE: &str = "x402-verifier";
pub const VERIFIER_NAMESPACE: &str = "x402";
/// Its public (proxy) port.
pub const VERIFIER_PROXY_PORT: i64 = 8080;

/// Gateway and verifier the children point at (the obol stack's defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteOptions {
    /// ForwardAuth address (forward-auth mode).
    pub verifier_url: String,
    /// The verifier's Service, namespace and proxy port (proxy mode).
    pub verifier_service: String,
    pub verifier_namespace: String,
    pub verifier_port: i64,
    pub gateway_name: String,
    pub gateway_namespace: String,
    /// Listener of the gateway (`web`); `None` attaches to every listener.
    pub section_name: Option<String>,
}

impl Default for RouteOptions {
    fn default() -> Self {
        RouteOptions {
            verifier_url: VERIFIER_VERIFY_URL.to_string(),
            verifier_service: VERIFIER_SERVICE.to_string(),
            verifier_namespace: VERIFIER_NAMESPACE.to_string(),
            verifier_port: VERIFIER_PROXY_PORT,
            gateway_name: "traefik-gateway".to_string(),
            gateway_namespace: "traefik".to_string(),
            section_name: Some("web".to_string()),
        }
    }
}

/// Why the children of an offer cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChildError {
    #[error("ServiceOffer {0} has no uid yet (apply it first, then its children)")]
    NotApplied(String),
    #[error("ServiceOffer {0} has no namespace")]
    NoNamespace(String),
    #[error("ServiceOffer {0} names no upstream Service (spec.upstream.service)")]
    NoUpstream(String),
    #[error(
        "ServiceOffer {offer} has annotation obol.org/gate: {value:?}; use \"proxy\" or \"forward-auth\""
    )]
    BadGate { offer: String, value: String },
}

/// `traefik.io/v1alpha1` `Middleware`.
pub fn middleware_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("traefik.io", "v1alpha1", "Middleware"),
        "middlewares",
    )
}

/// `gateway.networking.k8s.io/v1` `HTTPRoute`.
pub fn http_route_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
        "httproutes",
    )
}

/// `gateway.networking.k8s.io/v1beta1` `ReferenceGrant`.
pub fn reference_grant_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1beta1", "ReferenceGrant"),
        "referencegrants",
    )
}

/// Name of the offer's Middleware: `x402-<name>`.
pub fn middleware_name(offer_name: &str) -> String {
    safe_name("x402-", offer_name, "")
}

/// Name of the offer's HTTPRoute: `so-<name>`.
pub fn http_route_name(offer_name: &str) -> String {
    safe_name("so-", offer_name, "")
}

/// Name of the ReferenceGrant in the verifier's namespace (proxy mode): `so-<ns>-<name>-verifier`.
pub fn verifier_grant_name(offer_namespace: &str, offer_name: &str) -> String {
    safe_name(
        "so-",
        &format!("{offer_namespace}-{offer_name}"),
        "-verifier",
    )
}

/// Name of the ReferenceGrant in the upstream's namespace: `so-<ns>-<name>-backend`.
pub fn reference_grant_name(offer_namespace: &str, offer_name: &str) -> String {
    safe_name(
        "so-",
        &format!("{offer_namespace}-{offer_name}"),
        "-backend",
    )
}

/// `prefix + name + suffix`, shortened with a hash to 63 characters when longer (label-safe,
/// and within every resource's name limit).
pub fn safe_name(prefix: &str, name: &str, suffix: &str) -> String {
    const MAX: usize = 63;
    let full = format!("{prefix}{name}{suffix}");
    if full.len() <= MAX {
        return full;
    }
    let hash = format!("{:016x}", fnv1a(full.as_bytes()));
    let keep = MAX - prefix.len() - suffix.len() - hash.len() - 1;
    let head: String = name.chars().take(keep).collect();
    let head = head.trim_end_matches(['-', '.']);
    format!("{prefix}{head}-{hash}{suffix}")
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// The labels every child carries (selects them, e.g. a ReferenceGrant to delete).
pub fn child_labels(offer: &ServiceOffer) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_string(), "obol".to_string()),
        (
            LABEL_OFFER_NAMESPACE.to_string(),
            offer.namespace().to_string(),
        ),
        (LABEL_OFFER_NAME.to_string(), offer.name().to_string()),
    ])
}

/// `obol.org/serviceoffer-namespace=<ns>,obol.org/serviceoffer-name=<name>`.
pub fn child_label_selector(offer_namespace: &str, offer_name: &str) -> String {
    format!("{LABEL_OFFER_NAMESPACE}={offer_namespace},{LABEL_OFFER_NAME}={offer_name}")
}

/// The controller owner reference to the offer (needs its uid: apply the offer first).
pub fn owner_reference(offer: &ServiceOffer) -> Result<OwnerReference, ChildError> {
    offer
        .controller_owner_ref(&())
        .ok_or_else(|| ChildError::NotApplied(offer_ref(offer)))
}

fn offer_ref(offer: &ServiceOffer) -> String {
    format!("{}/{}", offer.namespace(), offer.name())
}

fn child_meta(
    offer: &ServiceOffer,
    name: String,
    owned: bool,
    namespace: &str,
) -> Result<ObjectMeta, ChildError> {
    Ok(ObjectMeta {
        name: Some(name),
        namespace: Some(namespace.to_string()),
        labels: Some(child_labels(offer)),
        owner_references: if owned {
            Some(vec![owner_reference(offer)?])
        } else {
            None
        },
        ..Default::default()
    })
}

fn offer_namespace(offer: &ServiceOffer) -> Result<&str, ChildError> {
    match offer.namespace() {
        "" => Err(ChildError::NoNamespace(offer.name().to_string())),
        ns => Ok(ns),
    }
}

/// The Traefik Middleware `x402-<name>`: forwardAuth to the verifier.
pub fn middleware(offer: &ServiceOffer, opts: &RouteOptions) -> Result<DynamicObject, ChildError> {
    let ns = offer_namespace(offer)?;
    let mut obj = DynamicObject::new(&middleware_name(offer.name()), &middleware_resource());
    obj.metadata = child_meta(offer, middleware_name(offer.name()), true, ns)?;
    obj.data = json!({
        "spec": {
            "forwardAuth": {
                "address": opts.verifier_url,
                "authResponseHeaders": AUTH_RESPONSE_HEADERS,
            }
        }
    });
    Ok(obj)
}

/// The offer's gate mode, or why its annotation names none.
pub fn gate_mode(offer: &ServiceOffer) -> Result<GateMode, ChildError> {
    offer.gate_mode().map_err(|value| ChildError::BadGate {
        offer: offer_ref(offer),
        value,
    })
}

/// The HTTPRoute `so-<name>`: the offer's path, to the verifier (proxy mode) or through the
/// Middleware to the upstream (forward-auth mode).
pub fn http_route(offer: &ServiceOffer, opts: &RouteOptions) -> Result<DynamicObject, ChildError> {
    let ns = offer_namespace(offer)?;
    let upstream = offer
        .spec
        .upstream
        .as_ref()
        .filter(|u| !u.service.is_empty())
        .ok_or_else(|| ChildError::NoUpstream(offer_ref(offer)))?;
    let mut parent = json!({
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": opts.gateway_name,
        "namespace": opts.gateway_namespace,
    });
    if let Some(section) = &opts.section_name {
        parent["sectionName"] = json!(section);
    }
    let matches = json!([{"path": {"type": "PathPrefix", "value": offer.effective_path()}}]);
    let rule = match gate_mode(offer)? {
        GateMode::Proxy => {
            // The verifier strips the prefix and injects upstreamAuth itself: it must see the
            // path the buyer asked for, the one it prices.
            let mut backend = json!({
                "group": "",
                "kind": "Service",
                "name": opts.verifier_service,
                "port": opts.verifier_port,
            });
            if opts.verifier_namespace != ns {
                backend["namespace"] = json!(opts.verifier_namespace);
            }
            json!({"matches": matches, "backendRefs": [backend]})
        }
        GateMode::ForwardAuth => {
            let mut backend = json!({
                "group": "",
                "kind": "Service",
                "name": upstream.service,
                "port": offer.effective_port(),
            });
            if offer.effective_namespace() != ns {
                backend["namespace"] = json!(offer.effective_namespace());
            }
            json!({
                "matches": matches,
                "filters": [
                    {
                        "type": "ExtensionRef",
                        "extensionRef": {
                            "group": "traefik.io",
                            "kind": "Middleware",
                            "name": middleware_name(offer.name()),
                        }
                    },
                    {
                        "type": "URLRewrite",
                        "urlRewrite": {
                            "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}
                        }
                    }
                ],
                "backendRefs": [backend],
            })
        }
    };
    let mut obj = DynamicObject::new(&http_route_name(offer.name()), &http_route_resource());
    obj.metadata = child_meta(offer, http_route_name(offer.name()), true, ns)?;
    obj.data = json!({"spec": {"parentRefs": [parent], "rules": [rule]}});
    Ok(obj)
}

/// Proxy mode: the ReferenceGrant that lets the offer's HTTPRoute reach the verifier's Service;
/// `None` when the offer lives in the verifier's namespace. Not owner-referenced.
pub fn verifier_grant(
    offer: &ServiceOffer,
    opts: &RouteOptions,
) -> Result<Option<DynamicObject>, ChildError> {
    let ns = offer_namespace(offer)?;
    if opts.verifier_namespace == ns {
        return Ok(None);
    }
    let name = verifier_grant_name(ns, offer.name());
    let mut obj = DynamicObject::new(&name, &reference_grant_resource());
    obj.metadata = child_meta(offer, name, false, &opts.verifier_namespace)?;
    obj.data = json!({
        "spec": {
            "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": ns}],
            "to": [{"group": "", "kind": "Service", "name": opts.verifier_service}],
        }
    });
    Ok(Some(obj))
}

/// The ReferenceGrant that lets the offer's HTTPRoute reach an upstream Service in another
/// namespace; `None` when the upstream is in the offer's namespace. Not owner-referenced
/// (owners cannot cross namespaces): delete it by [`child_label_selector`].
pub fn reference_grant(offer: &ServiceOffer) -> Result<Option<DynamicObject>, ChildError> {
    let ns = offer_namespace(offer)?;
    let target_ns = offer.effective_namespace();
    let Some(upstream) = offer
        .spec
        .upstream
        .as_ref()
        .filter(|u| !u.service.is_empty())
    else {
        return Ok(None);
    };
    if target_ns == ns {
        return Ok(None);
    }
    let name = reference_grant_name(ns, offer.name());
    let mut obj = DynamicObject::new(&name, &reference_grant_resource());
    obj.metadata = child_meta(offer, name, false, target_ns)?;
    obj.data = json!({
        "spec": {
            "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": ns}],
            "to": [{"group": "", "kind": "Service", "name": upstream.service}],
        }
    });
    Ok(Some(obj))
}

/// Every child to apply for `offer`, each with its resource. Proxy mode: the HTTPRoute and the
/// verifier's ReferenceGrant; forward-auth mode: the Middleware, the HTTPRoute, and the
/// ReferenceGrant when the upstream lives in another namespace.
pub fn children(
    offer: &ServiceOffer,
    opts: &RouteOptions,
) -> Result<Vec<(ApiResource, DynamicObject)>, ChildError> {
    let mut out = Vec::with_capacity(3);
    let grant = match gate_mode(offer)? {
        GateMode::Proxy => verifier_grant(offer, opts)?,
        GateMode::ForwardAuth => {
            out.push((middleware_resource(), middleware(offer, opts)?));
            reference_grant(offer)?
        }
    };
    out.push((http_route_resource(), http_route(offer, opts)?));
    if let Some(grant) = grant {
        out.push((reference_grant_resource(), grant));
    }
    Ok(out)
}

/// The owned children of an offer by resource and name, for deleting them (e.g. on pause)
/// without rendering.
pub fn owned_child_names(offer_name: &str) -> Vec<(ApiResource, String)> {
    vec![
        (middleware_resource(), middleware_name(offer_name)),
        (http_route_resource(), http_route_name(offer_name)),
    ]
}

/// Merge patch that sets (`true`) or removes (`false`) `obol.org/paused: "true"`.
pub fn paused_patch(paused: bool) -> Value {
    let value = if paused { json!("true") } else { Value::Null };
    json!({"metadata": {"annotations": {PAUSED_ANNOTATION: value}}})
}

/// Sets or removes the paused annotation on an object's metadata (for server-side apply).
pub fn set_paused(meta: &mut ObjectMeta, paused: bool) {
    let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
    if paused {
        annotations.insert(PAUSED_ANNOTATION.to_string(), "true".to_string());
    } else {
        annotations.remove(PAUSED_ANNOTATION);
    }
    if annotations.is_empty() {
        meta.annotations = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::types::{OfferUpstream, ServiceOfferSpec};

    fn offer(upstream_ns: Option<&str>) -> ServiceOffer {
        let mut o = ServiceOffer::new(
            "qwen",
            ServiceOfferSpec {
                upstream: Some(OfferUpstream {
                    service: "ollama".into(),
                    namespace: upstream_ns.map(String::from),
                    port: Some(11434),
                    health_path: None,
                }),
                path: Some("/services/qwen".into()),
                ..Default::default()
            },
        );
        o.metadata.namespace = Some("llm".into());
        o.metadata.uid = Some("uid-123".into());
        o
    }

    fn forward_auth(mut o: ServiceOffer) -> ServiceOffer {
        o.metadata.annotations = Some(BTreeMap::from([(
            crate::k8s::types::GATE_ANNOTATION.to_string(),
            "forward-auth".to_string(),
        )]));
        o
    }

    #[test]
    fn proxy_mode_routes_the_offer_path_to_the_verifier_unchanged() {
        let o = offer(Some("models"));
        let v = json_of(&http_route(&o, &RouteOptions::default()).unwrap());
        let rule = &v["spec"]["rules"][0];
        assert_eq!(
            rule["matches"][0]["path"],
            json!({"type": "PathPrefix", "value": "/services/qwen"})
        );
        // No filters: the verifier sees the path the buyer asked for, strips the prefix and
        // injects upstreamAuth itself.
        assert!(rule.get("filters").is_none(), "{rule}");
        assert_eq!(
            rule["backendRefs"][0],
            json!({"group": "", "kind": "Service", "name": "x402-verifier", "namespace": "x402", "port": 8080})
        );
        let all = children(&o, &RouteOptions::default()).unwrap();
        let kinds: Vec<&str> = all.iter().map(|(r, _)| r.kind.as_str()).collect();
        assert_eq!(kinds, ["HTTPRoute", "ReferenceGrant"], "no Middleware");
        let grant = json_of(&all[1].1);
        assert_eq!(grant["metadata"]["namespace"], "x402");
        assert_eq!(grant["metadata"]["name"], "so-llm-qwen-verifier");
        assert_eq!(grant["spec"]["from"][0]["namespace"], "llm");
        assert_eq!(grant["spec"]["to"][0]["name"], "x402-verifier");
        // An offer in the verifier's own namespace needs no grant.
        let mut local = offer(None);
        local.metadata.namespace = Some("x402".into());
        assert_eq!(children(&local, &RouteOptions::default()).unwrap().len(), 1);
    }

    #[test]
    fn an_unknown_gate_annotation_renders_nothing() {
        let mut o = offer(None);
        o.metadata.annotations = Some(BTreeMap::from([(
            crate::k8s::types::GATE_ANNOTATION.to_string(),
            "open".to_string(),
        )]));
        let e = children(&o, &RouteOptions::default()).unwrap_err();
        assert!(e.to_string().contains("\"open\""), "{e}");
    }

    fn json_of(obj: &DynamicObject) -> Value {
        serde_json::to_value(obj).unwrap()
    }

    #[test]
    fn middleware_forwards_auth_to_the_verifier_and_is_owned_by_the_offer() {
        let v = json_of(&middleware(&offer(None), &RouteOptions::default()).unwrap());
        assert_eq!(v["apiVersion"], "traefik.io/v1alpha1");
        assert_eq!(v["kind"], "Middleware");
        assert_eq!(v["metadata"]["name"], "x402-qwen");
        assert_eq!(v["metadata"]["namespace"], "llm");
        let fa = &v["spec"]["forwardAuth"];
        assert_eq!(
            fa["address"],
            "http://x402-verifier.x402.svc.cluster.local:9090/verify"
        );
        let headers: Vec<&str> = fa["authResponseHeaders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect();
        assert!(headers.contains(&"Authorization"));
        assert!(headers.contains(&"X-Payment-Status"));
        let owner = &v["metadata"]["ownerReferences"][0];
        assert_eq!(owner["apiVersion"], "obol.org/v1alpha1");
        assert_eq!(owner["kind"], "ServiceOffer");
        assert_eq!(owner["name"], "qwen");
        assert_eq!(owner["uid"], "uid-123");
        assert_eq!(owner["controller"], true);
        assert_eq!(v["metadata"]["labels"][LABEL_OFFER_NAME], "qwen");
    }

    #[test]
    fn forward_auth_http_route_matches_the_path_through_the_middleware() {
        let v = json_of(&http_route(&forward_auth(offer(None)), &RouteOptions::default()).unwrap());
        assert_eq!(v["apiVersion"], "gateway.networking.k8s.io/v1");
        assert_eq!(v["kind"], "HTTPRoute");
        assert_eq!(v["metadata"]["name"], "so-qwen");
        assert_eq!(v["metadata"]["ownerReferences"][0]["uid"], "uid-123");
        let spec = &v["spec"];
        assert_eq!(spec["parentRefs"][0]["name"], "traefik-gateway");
        assert_eq!(spec["parentRefs"][0]["namespace"], "traefik");
        assert_eq!(spec["parentRefs"][0]["sectionName"], "web");
        let rule = &spec["rules"][0];
        assert_eq!(
            rule["matches"][0]["path"],
            json!({"type": "PathPrefix", "value": "/services/qwen"})
        );
        assert_eq!(rule["filters"][0]["extensionRef"]["name"], "x402-qwen");
        assert_eq!(rule["filters"][0]["extensionRef"]["kind"], "Middleware");
        assert_eq!(
            rule["filters"][1]["urlRewrite"]["path"]["replacePrefixMatch"],
            "/"
        );
        assert_eq!(rule["backendRefs"][0]["name"], "ollama");
        assert_eq!(rule["backendRefs"][0]["port"], 11434);
        assert!(rule["backendRefs"][0].get("namespace").is_none());
        assert_eq!(
            children(&forward_auth(offer(None)), &RouteOptions::default())
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn forward_auth_cross_namespace_upstream_gets_a_labelled_reference_grant() {
        let o = forward_auth(offer(Some("models")));
        let route = json_of(&http_route(&o, &RouteOptions::default()).unwrap());
        assert_eq!(
            route["spec"]["rules"][0]["backendRefs"][0]["namespace"],
            "models"
        );
        let grant = json_of(&reference_grant(&o).unwrap().unwrap());
        assert_eq!(grant["kind"], "ReferenceGrant");
        assert_eq!(grant["metadata"]["namespace"], "models");
        assert_eq!(grant["metadata"]["name"], "so-llm-qwen-backend");
        assert!(grant["metadata"].get("ownerReferences").is_none());
        assert_eq!(grant["spec"]["from"][0]["namespace"], "llm");
        assert_eq!(grant["spec"]["to"][0]["name"], "ollama");
        assert_eq!(children(&o, &RouteOptions::default()).unwrap().len(), 3);
        assert_eq!(
            child_label_selector("llm", "qwen"),
            "obol.org/serviceoffer-namespace=llm,obol.org/serviceoffer-name=qwen"
        );
    }

    #[test]
    fn children_need_an_applied_offer_with_an_upstream() {
        let mut o = offer(None);
        o.metadata.uid = None;
        assert_eq!(
            middleware(&o, &RouteOptions::default()).unwrap_err(),
            ChildError::NotApplied("llm/qwen".into())
        );
        let mut o = offer(None);
        o.spec.upstream = None;
        assert!(matches!(
            http_route(&o, &RouteOptions::default()),
            Err(ChildError::NoUpstream(_))
        ));
    }

    #[test]
    fn long_names_are_shortened_stably() {
        let long = "a".repeat(80);
        let n = http_route_name(&long);
        assert!(n.len() <= 63, "{n}");
        assert!(n.starts_with("so-aaa"));
        assert_eq!(n, http_route_name(&long));
        assert_ne!(n, http_route_name(&"a".repeat(81)));
        assert_eq!(middleware_name("x"), "x402-x");
    }

    #[test]
    fn pause_helpers() {
        assert_eq!(
            paused_patch(true),
            json!({"metadata": {"annotations": {"obol.org/paused": "true"}}})
        );
        assert_eq!(
            paused_patch(false),
            json!({"metadata": {"annotations": {"obol.org/paused": null}}})
        );
        let mut o = offer(None);
        set_paused(&mut o.metadata, true);
        assert!(o.is_paused());
        set_paused(&mut o.metadata, false);
        assert!(!o.is_paused());
        assert_eq!(o.metadata.annotations, None);
    }
}
