//! Offers as ServiceOffers in a cluster: `obol sell create|list|delete|pause|resume` when a
//! cluster is selected.
//!
//! - create: the offer is checked on the client first (the CRD's rules, then the same route
//!   resolution the verifier does: price against the asset's decimals, payTo, known network),
//!   so bad input never reaches the cluster; then the ServiceOffer is server-side applied
//!   (field manager `obol`), its routing children (Traefik Middleware, HTTPRoute, and a
//!   ReferenceGrant for an upstream in another namespace) applied with the offer as owner,
//!   and `status.endpoint` plus `RoutePublished=True` written. Creating an existing offer
//!   updates it in place; options not given keep their value.
//! - delete: the ServiceOffer (owned children go with it) and the ReferenceGrant, found by its
//!   labels.
//! - pause/resume: annotation `obol.org/paused: "true"` set/removed with a merge patch (so a
//!   later `create` never removes it).

use std::time::Duration;

use kube::api::{Api, ApiResource, ListParams, Patch, PatchParams};
use serde::Serialize;
use serde_json::json;

use super::config::PricingConfig;
use super::declared::{RouteEntry, RoutePrice, RouteView};
use super::kube::{self as kube_offer, parse_service_upstream, price_of};
use super::resolve::{resolve_rule, valid_name};
use super::store::Created;
use crate::k8s::apply::{self, set_conditions};
use crate::k8s::children::{self, RouteOptions};
use crate::k8s::crd;
use crate::k8s::types::{
    GATE_ANNOTATION, GateMode, OfferPayment, OfferPrice, OfferRegistration, OfferRoute,
    OfferUpstream, ServiceOffer, ServiceOfferSpec, condition,
};
use crate::k8s::{Condition, K8sError, KubeClient};
use crate::x402::networks::Registry;

/// A placeholder payTo used to check an offer that leaves payTo to the verifier's wallet.
const PLACEHOLDER_PAY_TO: &str = "0x000000000000000000000000000000000000dEaD";

/// What `obol sell create` asks for on a cluster. `None` keeps the current value on update.
#[derive(Debug, Clone, Default)]
pub struct ClusterOfferSpec {
    pub name: String,
    /// `SERVICE[.NAMESPACE]:PORT` or `http://SERVICE.NAMESPACE.svc.cluster.local:PORT`.
    pub upstream: String,
    pub price: String,
    pub chain: Option<String>,
    pub pay_to: Option<String>,
    pub path: Option<String>,
    pub description: Option<String>,
    pub max_timeout_seconds: Option<u64>,
    /// `spec.routes` (replacing the offer's; `Some(vec![])` removes them).
    pub routes: Option<Vec<RouteEntry>>,
    /// How paid requests reach the upstream (`obol.org/gate`); `None` keeps the offer's, or
    /// proxy for a new one.
    pub gate: Option<GateMode>,
}

/// Why a cluster offer operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterOfferError {
    #[error("offer name {0:?} must be 1-63 characters of a-z, 0-9 and '-'")]
    BadName(String),
    #[error("--upstream {0}")]
    BadUpstream(String),
    #[error("path {0:?} must start with '/' and use only letters, digits and / _ . -")]
    BadPath(String),
    #[error("the offer would be invalid: {0}")]
    Invalid(String),
    #[error(transparent)]
    Kube(Box<K8sError>),
    #[error("no ServiceOffer {name} in namespace {namespace}")]
    NotFound { namespace: String, name: String },
    #[error(
        "ServiceOffer {namespace}/{name} was saved, but its routing objects were not (it stays unpublished): {source}"
    )]
    Children {
        namespace: String,
        name: String,
        /// The child that failed, as `Kind/name`.
        child: String,
        source: Box<K8sError>,
    },
}

/// An offer in the cluster as `sell list` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterOfferView {
    pub name: String,
    pub namespace: String,
    /// The path the offer is sold under.
    pub path: String,
    /// The verifier's route pattern.
    pub pattern: String,
    /// The price per request as the verifier charges it (decimal, asset units); empty when
    /// the offer has none it can charge.
    pub price: String,
    /// perRequest, perMTok or perHour.
    pub price_model: Option<String>,
    /// The price as written, e.g. `1.5` for a perMTok offer.
    pub price_written: Option<String>,
    pub asset_symbol: String,
    /// `payment.network` as written; empty: the verifier's chain.
    pub chain: String,
    /// The CAIP-2 id of `chain`, when known.
    pub network: String,
    /// `payment.payTo`; empty: the verifier's wallet.
    pub pay_to: String,
    pub upstream: Option<String>,
    pub paused: bool,
    /// The `Ready` condition's status (True/False/Unknown), if any.
    pub ready: Option<String>,
    /// Why the verifier does not serve it (`PaymentGateReady` reason: message), if it says so.
    pub problem: Option<String>,
    /// RFC 3339 creation time.
    pub created: Option<String>,
    /// `spec.routes` (empty: the whole path is paid at `price`).
    pub routes: Vec<RouteView>,
}

/// The result of `create`.
#[derive(Debug, Clone)]
pub struct CreateOutcome {
    pub created: Created,
    pub offer: ServiceOffer,
    pub view: ClusterOfferView,
    /// The children applied, as `Kind/name`.
    pub children: Vec<String>,
    /// Things that did not stop the offer (e.g. no permission to write its status).
    pub warnings: Vec<String>,
}

/// Normalises an offer path: `/x/`, `/x/*` → `/x`.
fn check_path(path: &str) -> Result<String, ClusterOfferError> {
    let p = path.trim();
    let p = p.strip_suffix("/*").unwrap_or(p);
    let p = if p.len() > 1 {
        p.trim_end_matches('/')
    } else {
        p
    };
    if p.len() < 2 || !crd::is_offer_path(p) {
        return Err(ClusterOfferError::BadPath(path.to_string()));
    }
    Ok(p.to_string())
}

/// The ServiceOffer `create` applies: `existing`'s spec (when updating) with what `spec`
/// gives, checked like the verifier will check it. Makes no request.
pub fn build_offer(
    spec: &ClusterOfferSpec,
    namespace: &str,
    existing: Option<&ServiceOffer>,
    registry: &Registry,
) -> Result<ServiceOffer, ClusterOfferError> {
    if !valid_name(&spec.name) {
        return Err(ClusterOfferError::BadName(spec.name.clone()));
    }
    let upstream =
        parse_service_upstream(&spec.upstream).map_err(ClusterOfferError::BadUpstream)?;
    let path = spec.path.as_deref().map(check_path).transpose()?;

    let mut s: ServiceOfferSpec = existing.map(|e| e.spec.clone()).unwrap_or_default();
    if s.offer_type.as_deref().is_none_or(str::is_empty) {
        s.offer_type = Some("http".into());
    }
    let health_path = s.upstream.as_ref().and_then(|u| u.health_path.clone());
    s.upstream = Some(OfferUpstream {
        service: upstream.service,
        namespace: upstream.namespace,
        port: Some(i64::from(upstream.port)),
        health_path,
    });
    let pay: &mut OfferPayment = &mut s.payment;
    pay.price = OfferPrice {
        per_request: Some(spec.price.trim().to_string()),
        ..pay.price.clone()
    };
    if let Some(c) = &spec.chain {
        pay.network = Some(c.trim().to_string()).filter(|c| !c.is_empty());
    }
    if let Some(p) = &spec.pay_to {
        pay.pay_to = Some(p.trim().to_string()).filter(|p| !p.is_empty());
    }
    if let Some(t) = spec.max_timeout_seconds {
        pay.max_timeout_seconds = Some(i64::try_from(t).unwrap_or(i64::MAX));
    }
    s.path = Some(
        path.or_else(|| s.path.clone())
            .unwrap_or_else(|| format!("/services/{}", spec.name)),
    );
    if let Some(d) = &spec.description {
        s.registration
            .get_or_insert_with(OfferRegistration::default)
            .description = Some(d.clone()).filter(|d| !d.is_empty());
    }
    if let Some(routes) = &spec.routes {
        s.routes = routes
            .iter()
            .map(|e| {
                let price = e
                    .price
                    .as_ref()
                    .map(|p| {
                        p.per_request().map(|v| OfferPrice {
                            per_request: Some(v.to_string()),
                            ..Default::default()
                        })
                    })
                    .transpose()
                    .map_err(|m| ClusterOfferError::Invalid(format!("route {}: {m}", e.path)))?;
                Ok(OfferRoute {
                    path: e.path.clone(),
                    methods: e.methods.clone(),
                    gate: e.gate.clone(),
                    price,
                    summary: e.summary.clone(),
                    free_quota: None,
                })
            })
            .collect::<Result<_, ClusterOfferError>>()?;
    }

    let gate = spec
        .gate
        .or_else(|| existing.and_then(|e| e.gate_mode().ok()))
        .unwrap_or_default();
    let mut offer = ServiceOffer::new(&spec.name, s);
    offer.metadata.namespace = Some(namespace.to_string());
    // Always written, so the mode is visible (`kubectl get serviceoffer -o yaml`) and stays
    // owned by obol's server-side apply.
    offer.metadata.annotations = Some(std::collections::BTreeMap::from([(
        GATE_ANNOTATION.to_string(),
        gate.as_str().to_string(),
    )]));
    check_offer(&offer, registry)?;
    Ok(offer)
}

/// The CRD's rules, then the verifier's rendering and route resolution (an empty payTo is
/// left to the verifier's wallet, an empty chain to its chain, checked here as base-sepolia).
pub fn check_offer(offer: &ServiceOffer, registry: &Registry) -> Result<(), ClusterOfferError> {
    let rule = kube_offer::from_service_offer(offer, registry)
        .map_err(|p| ClusterOfferError::Invalid(p.message))?;
    let base = PricingConfig {
        wallet: Some(PLACEHOLDER_PAY_TO.to_string()),
        ..Default::default()
    };
    resolve_rule(&base, registry, 0, &rule)
        .map(|_| ())
        .map_err(|problems| ClusterOfferError::Invalid(problems.join("; ")))
}

/// The view of an offer (no request).
pub fn view_of(offer: &ServiceOffer, registry: &Registry) -> ClusterOfferView {
    let pay = &offer.spec.payment;
    let asset = pay.asset.clone().unwrap_or_default();
    let decimals = asset
        .decimals
        .and_then(|d| u8::try_from(d).ok())
        .unwrap_or(6);
    let (price, model) = match price_of(offer, decimals) {
        Ok((p, m)) => (p, Some(m)),
        Err(_) => (String::new(), None),
    };
    let written = model.and_then(|m| match m {
        kube_offer::PriceModel::PerRequest => pay.price.per_request.clone(),
        kube_offer::PriceModel::PerMTok => pay.price.per_m_tok.clone(),
        kube_offer::PriceModel::PerHour => pay.price.per_hour.clone(),
    });
    let chain = pay.network.clone().unwrap_or_default();
    let network = if chain.is_empty() {
        String::new()
    } else {
        registry.caip2_of(&chain).unwrap_or_default()
    };
    let symbol = asset.symbol.clone().unwrap_or_else(|| {
        registry
            .resolve(if chain.is_empty() {
                super::DEFAULT_CHAIN
            } else {
                &chain
            })
            .and_then(|n| n.asset.as_ref())
            .map(|a| a.symbol.clone())
            .unwrap_or_else(|| "USDC".into())
    });
    let path = offer.effective_path();
    // The verifier's verdict, else why the route is not published.
    let gate = offer
        .condition(condition::PAYMENT_GATE_READY)
        .filter(|c| c.is_false())
        .or_else(|| {
            offer
                .condition(condition::ROUTE_PUBLISHED)
                .filter(|c| c.is_false())
        });
    let routes = offer
        .spec
        .routes
        .iter()
        .map(|r| {
            let entry = RouteEntry {
                path: r.path.clone(),
                methods: r.methods.clone(),
                gate: r.gate.clone(),
                price: r
                    .price
                    .as_ref()
                    .and_then(|p| kube_offer::price_of_price(p, "price", decimals).ok())
                    .map(|(p, _)| RoutePrice::Decimal(p)),
                summary: r.summary.clone(),
                extra: Default::default(),
            };
            RouteView::of(&entry, &price)
        })
        .collect();
    ClusterOfferView {
        name: offer.metadata.name.clone().unwrap_or_default(),
        namespace: offer.metadata.namespace.clone().unwrap_or_default(),
        pattern: kube_offer::offer_pattern(&path),
        path,
        price,
        price_model: model.map(|m| m.as_str().to_string()),
        price_written: written,
        asset_symbol: symbol,
        chain,
        network,
        pay_to: pay.pay_to.clone().unwrap_or_default(),
        upstream: offer.upstream_url(),
        paused: offer.is_paused(),
        ready: offer.condition(condition::READY).map(|c| c.status.clone()),
        problem: gate.map(|c| {
            format!(
                "{}: {}",
                c.reason.as_deref().unwrap_or(""),
                c.message.as_deref().unwrap_or("")
            )
        }),
        created: offer
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string()),
        routes,
    }
}

/// ServiceOffers of one cluster.
pub struct ClusterStore {
    client: KubeClient,
    registry: Registry,
    routes: RouteOptions,
}

impl ClusterStore {
    pub fn new(client: KubeClient, registry: Registry) -> Self {
        ClusterStore {
            client,
            registry,
            routes: RouteOptions::default(),
        }
    }

    pub fn client(&self) -> &KubeClient {
        &self.client
    }

    /// The namespace offers are written to and read from.
    pub fn namespace(&self) -> &str {
        self.client.namespace()
    }

    fn api(&self) -> Api<ServiceOffer> {
        self.client.service_offers(None)
    }

    fn err(&self, action: String, e: kube::Error) -> ClusterOfferError {
        ClusterOfferError::Kube(Box::new(self.client.error(action, e)))
    }

    fn offer_ref(&self, name: &str) -> String {
        format!("{}/{name}", self.namespace())
    }

    async fn get(&self, name: &str) -> Result<Option<ServiceOffer>, ClusterOfferError> {
        match self.api().get_opt(name).await {
            Ok(o) => Ok(o),
            Err(e) => Err(self.err(format!("reading ServiceOffer {}", self.offer_ref(name)), e)),
        }
    }

    async fn get_existing(&self, name: &str) -> Result<ServiceOffer, ClusterOfferError> {
        self.get(name)
            .await?
            .ok_or_else(|| ClusterOfferError::NotFound {
                namespace: self.namespace().to_string(),
                name: name.to_string(),
            })
    }

    /// Creates the offer, or updates it in place. See the module docs.
    pub async fn create(
        &self,
        spec: &ClusterOfferSpec,
    ) -> Result<CreateOutcome, ClusterOfferError> {
        let ns = self.namespace().to_string();
        // Everything the arguments alone can tell, before any request.
        build_offer(spec, &ns, None, &self.registry)?;
        let existing = self.get(&spec.name).await?;
        let offer = build_offer(spec, &ns, existing.as_ref(), &self.registry)?;
        let api = self.api();
        let applied = apply::apply(&api, &offer).await.map_err(|e| {
            self.err(
                format!("applying ServiceOffer {}", self.offer_ref(&spec.name)),
                e,
            )
        })?;
        let mut warnings = Vec::new();

        // The routing children, owned by the offer.
        let rendered = children::children(&applied, &self.routes)
            .map_err(|e| ClusterOfferError::Invalid(e.to_string()))?;
        let mut applied_children = Vec::new();
        for (resource, obj) in &rendered {
            let what = format!(
                "{}/{}",
                resource.kind,
                obj.metadata.name.as_deref().unwrap_or("")
            );
            if let Err(e) = apply::apply_dynamic(self.client.client(), resource, obj).await {
                let source = self.client.error(format!("applying {what}"), e);
                let failed = Condition::new(
                    condition::ROUTE_PUBLISHED,
                    condition::FALSE,
                    "ApplyFailed",
                    source.to_string(),
                );
                let _ = set_conditions(&api, &spec.name, &[failed], None).await;
                return Err(ClusterOfferError::Children {
                    namespace: ns,
                    name: spec.name.clone(),
                    child: what,
                    source: Box::new(source),
                });
            }
            applied_children.push(what);
        }

        // Children of the other gate mode, left behind by a change of mode.
        let mode =
            children::gate_mode(&applied).map_err(|e| ClusterOfferError::Invalid(e.to_string()))?;
        let stale: Vec<(ApiResource, String, String)> = match mode {
            GateMode::Proxy => vec![
                (
                    children::middleware_resource(),
                    ns.clone(),
                    children::middleware_name(&spec.name),
                ),
                (
                    children::reference_grant_resource(),
                    applied.effective_namespace().to_string(),
                    children::reference_grant_name(&ns, &spec.name),
                ),
            ],
            GateMode::ForwardAuth => vec![(
                children::reference_grant_resource(),
                self.routes.verifier_namespace.clone(),
                children::verifier_grant_name(&ns, &spec.name),
            )],
        };
        for (resource, in_ns, name) in stale {
            let api = apply::dynamic_api(self.client.client(), &resource, Some(&in_ns));
            match apply::delete_if_exists(&api, &name).await {
                Ok(_) => {}
                // No such CRD on this cluster: nothing to clean up.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => warnings.push(format!(
                    "could not delete the {} {in_ns}/{name} of the former gate mode: {}",
                    resource.kind,
                    self.client.error("deleting a stale routing object", e)
                )),
            }
        }

        // A ReferenceGrant left behind in the upstream's former namespace.
        if let Some(old) = &existing {
            let old_ns = old.effective_namespace();
            if old_ns != ns && old_ns != applied.effective_namespace() {
                let grants = apply::dynamic_api(
                    self.client.client(),
                    &children::reference_grant_resource(),
                    Some(old_ns),
                );
                if let Err(e) = apply::delete_if_exists(
                    &grants,
                    &children::reference_grant_name(&ns, &spec.name),
                )
                .await
                {
                    warnings.push(format!(
                        "could not delete the old ReferenceGrant in namespace {old_ns}: {}",
                        self.client.error("deleting a ReferenceGrant", e)
                    ));
                }
            }
        }

        // status.endpoint and RoutePublished.
        let path = applied.effective_path();
        let endpoint = json!({"status": {"endpoint": path}});
        if let Err(e) = api
            .patch_status(
                &spec.name,
                &PatchParams::default(),
                &Patch::Merge(&endpoint),
            )
            .await
        {
            warnings.push(format!(
                "could not write status.endpoint: {}",
                self.client.error("patching the ServiceOffer status", e)
            ));
        }
        let published = Condition::new(
            condition::ROUTE_PUBLISHED,
            condition::TRUE,
            "Applied",
            format!(
                "{} applied (gate: {})",
                applied_children.join(", "),
                mode.as_str()
            ),
        );
        if let Err(e) = set_conditions(&api, &spec.name, &[published], None).await {
            warnings.push(format!(
                "could not write the RoutePublished condition: {}",
                self.client.error("patching the ServiceOffer status", e)
            ));
        }
        let latest = api.get(&spec.name).await.unwrap_or(applied);
        Ok(CreateOutcome {
            created: if existing.is_some() {
                Created::Updated
            } else {
                Created::Created
            },
            view: view_of(&latest, &self.registry),
            offer: latest,
            children: applied_children,
            warnings,
        })
    }

    /// The offers of the client's namespace, or of every namespace.
    pub async fn list(
        &self,
        all_namespaces: bool,
    ) -> Result<Vec<ClusterOfferView>, ClusterOfferError> {
        let api: Api<ServiceOffer> = if all_namespaces {
            self.client.all()
        } else {
            self.api()
        };
        let where_ = if all_namespaces {
            "in all namespaces".to_string()
        } else {
            format!("in namespace {}", self.namespace())
        };
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| self.err(format!("listing ServiceOffers {where_}"), e))?;
        let mut views: Vec<ClusterOfferView> = list
            .items
            .iter()
            .map(|o| view_of(o, &self.registry))
            .collect();
        views.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(views)
    }

    /// Deletes the offer; its owned children go with it, the ReferenceGrant is deleted by its
    /// labels. Returns the cleanup warnings.
    pub async fn delete(&self, name: &str) -> Result<Vec<String>, ClusterOfferError> {
        let offer = self.get_existing(name).await?;
        let ns = self.namespace().to_string();
        match apply::delete_if_exists(&self.api(), name).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(ClusterOfferError::NotFound {
                    namespace: ns,
                    name: name.to_string(),
                });
            }
            Err(e) => return Err(self.err(format!("deleting ServiceOffer {ns}/{name}"), e)),
        }
        let mut warnings = Vec::new();
        let mut grant_namespaces = vec![offer.effective_namespace().to_string()];
        grant_namespaces.push(self.routes.verifier_namespace.clone());
        grant_namespaces.dedup();
        for target in grant_namespaces.iter().filter(|t| **t != ns) {
            let target = target.as_str();
            let grants = apply::dynamic_api(
                self.client.client(),
                &children::reference_grant_resource(),
                Some(target),
            );
            let selector = children::child_label_selector(&ns, name);
            match grants.list(&ListParams::default().labels(&selector)).await {
                Ok(list) => {
                    for g in list.items {
                        let gname = g.metadata.name.unwrap_or_default();
                        if let Err(e) = apply::delete_if_exists(&grants, &gname).await {
                            warnings.push(format!(
                                "could not delete ReferenceGrant {target}/{gname}: {}",
                                self.client.error("deleting a ReferenceGrant", e)
                            ));
                        }
                    }
                }
                // No ReferenceGrant CRD: nothing to clean up.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => warnings.push(format!(
                    "could not look for the ReferenceGrant in namespace {target}: {}",
                    self.client.error("listing ReferenceGrants", e)
                )),
            }
        }
        Ok(warnings)
    }

    /// Sets (`true`) or removes (`false`) `obol.org/paused: "true"`. Returns whether anything
    /// changed.
    pub async fn set_paused(&self, name: &str, paused: bool) -> Result<bool, ClusterOfferError> {
        let offer = self.get_existing(name).await?;
        if offer.is_paused() == paused {
            return Ok(false);
        }
        self.api()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(children::paused_patch(paused)),
            )
            .await
            .map_err(|e| {
                self.err(
                    format!(
                        "{} ServiceOffer {}",
                        if paused { "pausing" } else { "resuming" },
                        self.offer_ref(name)
                    ),
                    e,
                )
            })?;
        Ok(true)
    }
}

/// Human age of an RFC 3339 time relative to now: `45s`, `12m`, `5h`, `3d`.
pub fn age(created: &str) -> String {
    let Ok(t) = created.parse::<k8s_openapi::jiff::Timestamp>() else {
        return "-".into();
    };
    let secs = (k8s_openapi::jiff::Timestamp::now().as_second() - t.as_second()).max(0);
    let d = Duration::from_secs(secs as u64).as_secs();
    match d {
        0..=119 => format!("{d}s"),
        120..=7199 => format!("{}m", d / 60),
        7200..=172_799 => format!("{}h", d / 3600),
        _ => format!("{}d", d / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAY: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

    fn spec() -> ClusterOfferSpec {
        ClusterOfferSpec {
            name: "qwen".into(),
            upstream: "ollama.models:11434".into(),
            price: "0.01".into(),
            chain: Some("base-sepolia".into()),
            pay_to: Some(PAY.into()),
            ..Default::default()
        }
    }

    #[test]
    fn build_writes_the_offer_shape() {
        let o = build_offer(&spec(), "llm", None, &Registry::builtin()).unwrap();
        assert_eq!(o.metadata.name.as_deref(), Some("qwen"));
        assert_eq!(o.metadata.namespace.as_deref(), Some("llm"));
        assert_eq!(o.spec.offer_type.as_deref(), Some("http"));
        assert_eq!(o.spec.path.as_deref(), Some("/services/qwen"));
        let u = o.spec.upstream.as_ref().unwrap();
        assert_eq!(
            (u.service.as_str(), u.namespace.as_deref(), u.port),
            ("ollama", Some("models"), Some(11434))
        );
        assert_eq!(o.spec.payment.price.per_request.as_deref(), Some("0.01"));
        assert_eq!(o.spec.payment.network.as_deref(), Some("base-sepolia"));
        assert_eq!(o.spec.payment.pay_to.as_deref(), Some(PAY));
        // The gate is always written (proxy unless asked), nothing else.
        assert_eq!(
            o.metadata.annotations,
            Some(std::collections::BTreeMap::from([(
                GATE_ANNOTATION.to_string(),
                "proxy".to_string()
            )]))
        );
        assert!(o.status.is_none());
    }

    #[test]
    fn update_keeps_what_is_not_given() {
        let mut first = spec();
        first.path = Some("/custom/x/".into());
        first.max_timeout_seconds = Some(60);
        first.description = Some("d".into());
        let existing = build_offer(&first, "llm", None, &Registry::builtin()).unwrap();
        assert_eq!(existing.spec.path.as_deref(), Some("/custom/x"));
        let upd = ClusterOfferSpec {
            name: "qwen".into(),
            upstream: "ollama:8080".into(),
            price: "0.02".into(),
            ..Default::default()
        };
        let o = build_offer(&upd, "llm", Some(&existing), &Registry::builtin()).unwrap();
        assert_eq!(o.spec.path.as_deref(), Some("/custom/x"));
        assert_eq!(o.spec.payment.pay_to.as_deref(), Some(PAY));
        assert_eq!(o.spec.payment.network.as_deref(), Some("base-sepolia"));
        assert_eq!(o.spec.payment.max_timeout_seconds, Some(60));
        assert_eq!(o.spec.payment.price.per_request.as_deref(), Some("0.02"));
        assert_eq!(
            o.spec.registration.as_ref().unwrap().description.as_deref(),
            Some("d")
        );
        assert_eq!(o.spec.upstream.as_ref().unwrap().namespace, None);
    }

    #[test]
    fn bad_input_is_refused_without_a_cluster() {
        let reg = Registry::builtin();
        let bad = |f: &dyn Fn(&mut ClusterOfferSpec)| {
            let mut s = spec();
            f(&mut s);
            build_offer(&s, "llm", None, &reg).unwrap_err()
        };
        assert!(matches!(
            bad(&|s| s.name = "Bad".into()),
            ClusterOfferError::BadName(_)
        ));
        assert!(matches!(
            bad(&|s| s.upstream = "http://127.0.0.1:9000".into()),
            ClusterOfferError::BadUpstream(_)
        ));
        assert!(matches!(
            bad(&|s| s.path = Some("no-slash".into())),
            ClusterOfferError::BadPath(_)
        ));
        assert!(matches!(
            bad(&|s| s.path = Some("/a b".into())),
            ClusterOfferError::BadPath(_)
        ));
        let e = bad(&|s| s.pay_to = Some("0xnothex".into()));
        assert!(e.to_string().contains("payTo"), "{e}");
        let e = bad(&|s| s.price = "abc".into());
        assert!(e.to_string().contains("perRequest"), "{e}");
        let e = bad(&|s| s.price = "0.0000001".into());
        assert!(e.to_string().contains("decimal"), "{e}");
        let e = bad(&|s| s.price = "0".into());
        assert!(e.to_string().contains("greater than 0"), "{e}");
        let e = bad(&|s| s.chain = Some("atlantis".into()));
        assert!(e.to_string().contains("atlantis"), "{e}");
        // payTo may be left to the verifier's wallet.
        let mut s = spec();
        s.pay_to = None;
        assert!(build_offer(&s, "llm", None, &reg).is_ok());
    }

    #[test]
    fn views_show_price_model_and_chain() {
        let mut o = build_offer(&spec(), "llm", None, &Registry::builtin()).unwrap();
        let v = view_of(&o, &Registry::builtin());
        assert_eq!(v.price, "0.01");
        assert_eq!(v.price_model.as_deref(), Some("perRequest"));
        assert_eq!(v.network, "eip155:84532");
        assert_eq!(v.asset_symbol, "USDC");
        assert_eq!(v.pattern, "/services/qwen/*");
        o.spec.payment.price = OfferPrice {
            per_m_tok: Some("2".into()),
            ..Default::default()
        };
        o.spec.payment.network = None;
        let v = view_of(&o, &Registry::builtin());
        assert_eq!(v.price, "0.002");
        assert_eq!(v.price_written.as_deref(), Some("2"));
        assert_eq!(v.chain, "");
        assert_eq!(v.network, "");
    }

    #[test]
    fn ages() {
        let now = k8s_openapi::jiff::Timestamp::now();
        let ago = |s: i64| {
            k8s_openapi::jiff::Timestamp::from_second(now.as_second() - s)
                .unwrap()
                .to_string()
        };
        assert_eq!(age(&ago(5)), "5s");
        assert_eq!(age(&ago(600)), "10m");
        assert_eq!(age(&ago(3 * 3600)), "3h");
        assert_eq!(age(&ago(5 * 86_400)), "5d");
        assert_eq!(age("nope"), "-");
    }
}
