//! `--route-source kube|both`: the cluster's ServiceOffers as routes.
//!
//! A kube-rs watcher lists and watches `serviceoffers.obol.org` (every namespace, or the one
//! given) and hands every complete view to [`RouteSource::set_offers`], which renders each
//! offer ([`crate::offers::kube::render`]), resolves it against the offers file's base and
//! swaps the merged table in. Until the first complete list (`InitDone`) the verifier is not
//! ready. A watch that ends (`timeoutSeconds`) is resumed, a failed one is relisted with the
//! default backoff; the route table stays as it is meanwhile, and a relist replaces it only
//! once complete.
//!
//! Objects are watched untyped and converted one by one, so one object that does not even
//! deserialize is reported on its own instead of failing the list.
//!
//! Every rebuild produces one [`OfferReport`] per offer; [`write_statuses`] writes the verdict
//! as the offer's `PaymentGateReady` and `Ready` conditions (reason and message), only when
//! they differ from what the offer already says (RBAC: `serviceoffers/status` patch).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use futures_util::{FutureExt as _, StreamExt as _};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};

use super::routes::{RouteSource, RouteTable};
use crate::k8s::apply::now_rfc3339;
use crate::k8s::types::{Condition, ServiceOffer, condition, upsert_condition};
use crate::k8s::{K8sError, KubeClient};
use crate::offers::kube::{OfferProblem, Rendered, reason, render};
use crate::offers::Route;
use crate::x402::amount::format_atomic;
use crate::x402::networks::Registry;

/// Field manager of the verifier's status writes.
pub const STATUS_MANAGER: &str = "obol-verifier";

/// What to watch.
#[derive(Debug, Clone)]
pub struct KubeWatch {
    pub client: KubeClient,
    /// `None`: every namespace.
    pub namespace: Option<String>,
    /// `timeoutSeconds` of each watch request (kube-rs's default, 290 s, when `None`).
    pub watch_timeout: Option<Duration>,
    /// Write `PaymentGateReady`/`Ready` on the offers' status.
    pub write_status: bool,
}

/// One ServiceOffer as the verifier sees it.
#[derive(Debug, Clone)]
pub struct KubeOffer {
    pub namespace: String,
    pub name: String,
    pub generation: Option<i64>,
    pub resource_version: Option<String>,
    pub rendered: Rendered,
    /// Its status conditions now.
    pub conditions: Vec<Condition>,
}

impl KubeOffer {
    /// Converts a watched object; one that does not deserialize is an invalid offer.
    pub fn from_object(obj: &DynamicObject, registry: &Registry) -> KubeOffer {
        let namespace = obj.metadata.namespace.clone().unwrap_or_default();
        let name = obj.metadata.name.clone().unwrap_or_default();
        let generation = obj.metadata.generation;
        let resource_version = obj.metadata.resource_version.clone();
        match obj.clone().try_parse::<ServiceOffer>() {
            Ok(offer) => KubeOffer::from_offer(&offer, registry),
            Err(e) => KubeOffer {
                namespace,
                name,
                generation,
                resource_version,
                rendered: Rendered::Invalid {
                    pattern: None,
                    problem: OfferProblem::new(
                        reason::INVALID_SPEC,
                        format!("the object does not read as a ServiceOffer: {e}"),
                    ),
                },
                conditions: obj
                    .data
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .map(|cs| {
                        cs.iter()
                            .filter_map(|c| serde_json::from_value(c.clone()).ok())
                            .collect()
                    })
                    .unwrap_or_default(),
            },
        }
    }

    pub fn from_offer(offer: &ServiceOffer, registry: &Registry) -> KubeOffer {
        KubeOffer {
            namespace: offer.metadata.namespace.clone().unwrap_or_default(),
            name: offer.metadata.name.clone().unwrap_or_default(),
            generation: offer.metadata.generation,
            resource_version: offer.metadata.resource_version.clone(),
            rendered: render(offer, registry),
            conditions: offer
                .status
                .as_ref()
                .map(|s| s.conditions.clone())
                .unwrap_or_default(),
        }
    }

    fn key(&self) -> (String, String) {
        (self.namespace.clone(), self.name.clone())
    }
}

/// The verifier's verdict on one offer, for its status.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferReport {
    pub namespace: String,
    pub name: String,
    pub resource_version: Option<String>,
    /// `PaymentGateReady` and `Ready` as they should be.
    pub desired: Vec<Condition>,
    /// The offer's conditions when it was rendered.
    pub current: Vec<Condition>,
}

impl OfferReport {
    pub fn new(offer: &KubeOffer, desired: Vec<Condition>) -> Self {
        OfferReport {
            namespace: offer.namespace.clone(),
            name: offer.name.clone(),
            resource_version: offer.resource_version.clone(),
            desired,
            current: offer.conditions.clone(),
        }
    }

    /// The offer already says what it should.
    pub fn up_to_date(&self) -> bool {
        self.desired.iter().all(|d| {
            self.current.iter().any(|c| {
                c.type_ == d.type_
                    && c.status == d.status
                    && c.reason == d.reason
                    && c.message == d.message
                    && c.observed_generation == d.observed_generation
            })
        })
    }
}

/// `PaymentGateReady` and `Ready` for an offer that resolved to `route` or has `problem`.
pub fn desired_conditions(
    offer: &KubeOffer,
    outcome: Result<&Route, &OfferProblem>,
) -> Vec<Condition> {
    let (status, why, gate_message, ready_message) = match outcome {
        Ok(route) if route.paused => (
            condition::FALSE,
            reason::PAUSED,
            format!(
                "paused by annotation obol.org/paused: requests to {} get 404 offer_paused and are not charged",
                route.pattern
            ),
            "paused".to_string(),
        ),
        Ok(route) => (
            condition::TRUE,
            reason::SERVING,
            format!(
                "the verifier charges {} {} per request on {} to {} for {}",
                format_atomic(route.amount, route.asset.decimals),
                route.asset.symbol,
                route.chain(),
                route.pay_to.to_checksum(None),
                route.pattern
            ),
            "served by the x402 verifier".to_string(),
        ),
        Err(p) => (
            condition::FALSE,
            p.reason,
            p.message.clone(),
            format!("not served: {}", p.message),
        ),
    };
    let with_gen = |mut c: Condition| {
        c.observed_generation = offer.generation;
        c
    };
    vec![
        with_gen(Condition::new(
            condition::PAYMENT_GATE_READY,
            status,
            why,
            truncate(gate_message),
        )),
        with_gen(Condition::new(
            condition::READY,
            status,
            why,
            truncate(ready_message),
        )),
    ]
}

fn truncate(mut s: String) -> String {
    const MAX: usize = 4096;
    if s.len() > MAX {
        let mut cut = MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// A one-line description of a watch failure and what to do about it.
fn describe(client: &KubeClient, e: &watcher::Error) -> String {
    let api = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => Some(s.as_ref()),
        watcher::Error::WatchError(s) => Some(s.as_ref()),
        _ => None,
    };
    let err = match api {
        Some(s) => K8sError::Api {
            action: "watching ServiceOffers".into(),
            server: client.server().to_string(),
            origin: Box::new(client.source().clone()),
            code: s.code,
            reason: s.reason.clone(),
            message: s.message.clone(),
        },
        None => K8sError::Unreachable {
            server: client.server().to_string(),
            origin: Box::new(client.source().clone()),
            detail: e.to_string(),
        },
    };
    let hint = match &err {
        K8sError::Api { code: 403, .. } => {
            "the verifier needs serviceoffers get/list/watch (`obol manifests` has the ClusterRole)"
                .to_string()
        }
        other => other.hint(),
    };
    format!("{err} (hint: {hint})")
}

/// Watches ServiceOffers until the task is dropped, handing every complete view to `source`.
pub async fn watch_offers(
    watch: KubeWatch,
    source: Arc<RouteSource>,
    table: Arc<ArcSwap<RouteTable>>,
) {
    let resource = ApiResource::erase::<ServiceOffer>(&());
    let client = watch.client.client().clone();
    let api: Api<DynamicObject> = match &watch.namespace {
        Some(ns) => Api::namespaced_with(client, ns, &resource),
        None => Api::all_with(client, &resource),
    };
    let mut config = watcher::Config::default();
    if let Some(t) = watch.watch_timeout {
        config = config.timeout(u32::try_from(t.as_secs().max(1)).unwrap_or(u32::MAX));
    }
    let scope = match &watch.namespace {
        Some(ns) => format!("namespace {ns}"),
        None => "all namespaces".to_string(),
    };
    let mut stream = std::pin::pin!(watcher::watcher(api, config).default_backoff());
    let mut offers: BTreeMap<(String, String), KubeOffer> = BTreeMap::new();
    let mut pending: Option<BTreeMap<(String, String), KubeOffer>> = None;
    let mut listed = false;
    let mut failing: Option<String> = None;

    while let Some(first) = stream.next().await {
        let mut dirty = false;
        let mut next = Some(first);
        // Take every event already waiting, then rebuild once.
        while let Some(item) = next {
            match item {
                Ok(event) => {
                    if failing.take().is_some() {
                        tracing::info!("ServiceOffer watch on {scope} restored");
                    }
                    match event {
                        Event::Init => pending = Some(BTreeMap::new()),
                        Event::InitApply(obj) => {
                            let o = KubeOffer::from_object(&obj, &source.registry);
                            pending.get_or_insert_with(BTreeMap::new).insert(o.key(), o);
                        }
                        Event::InitDone => {
                            offers = pending.take().unwrap_or_default();
                            if !listed {
                                tracing::info!(
                                    offers = offers.len(),
                                    "listed the ServiceOffers of {scope}"
                                );
                            }
                            listed = true;
                            dirty = true;
                        }
                        Event::Apply(obj) => {
                            let o = KubeOffer::from_object(&obj, &source.registry);
                            offers.insert(o.key(), o);
                            dirty = true;
                        }
                        Event::Delete(obj) => {
                            let o = KubeOffer::from_object(&obj, &source.registry);
                            offers.remove(&o.key());
                            dirty = true;
                        }
                    }
                }
                Err(e) => {
                    let msg = describe(&watch.client, &e);
                    if failing.as_deref() != Some(msg.as_str()) {
                        if listed {
                            tracing::warn!(
                                "ServiceOffer watch failed, retrying with backoff; the routes stay as they are: {msg}"
                            );
                        } else {
                            tracing::error!(
                                "cannot list ServiceOffers (not ready until it works; retrying with backoff): {msg}"
                            );
                        }
                    }
                    failing = Some(msg);
                }
            }
            next = stream.next().now_or_never().flatten();
        }
        if dirty && listed {
            let view: Vec<KubeOffer> = offers.values().cloned().collect();
            let (src, tbl) = (Arc::clone(&source), Arc::clone(&table));
            let result =
                tokio::task::spawn_blocking(move || src.set_offers(view, &tbl)).await;
            match result {
                Ok(Ok(Some(n))) => {
                    tracing::info!(routes = n, offers = offers.len(), "routes rebuilt from ServiceOffers");
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::error!("routes not rebuilt, keeping the previous ones: {e}"),
                Err(e) => tracing::error!("route rebuild panicked: {e}"),
            }
        }
    }
}

/// Writes each report's conditions to its offer's status when they differ from what it says.
/// A failed write is logged (once per offer and error) and retried when the offer changes.
pub async fn write_statuses(
    client: KubeClient,
    mut reports: tokio::sync::watch::Receiver<Arc<Vec<OfferReport>>>,
) {
    let resource = ApiResource::erase::<ServiceOffer>(&());
    // What was written for an offer, at which resourceVersion of it.
    let mut written: HashMap<(String, String), (Vec<Condition>, Option<String>)> = HashMap::new();
    let mut failed: HashMap<(String, String), String> = HashMap::new();
    while reports.changed().await.is_ok() {
        let batch = Arc::clone(&reports.borrow_and_update());
        let live: HashSet<(String, String)> = batch
            .iter()
            .map(|r| (r.namespace.clone(), r.name.clone()))
            .collect();
        written.retain(|k, _| live.contains(k));
        failed.retain(|k, _| live.contains(k));
        for r in batch.iter() {
            let key = (r.namespace.clone(), r.name.clone());
            if r.up_to_date() {
                written.remove(&key);
                continue;
            }
            let attempt = (r.desired.clone(), r.resource_version.clone());
            if written.get(&key) == Some(&attempt) {
                continue;
            }
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.client().clone(), &r.namespace, &resource);
            match patch_conditions(&api, r).await {
                Ok(()) => {
                    failed.remove(&key);
                    written.insert(key, attempt);
                }
                // Changed meanwhile: the watch brings the new version and a new report.
                Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {}
                Err(e) => {
                    let msg = client
                        .error(
                            format!("writing the status of ServiceOffer {}/{}", r.namespace, r.name),
                            e,
                        )
                        .to_string();
                    if failed.get(&key) != Some(&msg) {
                        tracing::warn!("{msg}");
                    }
                    failed.insert(key.clone(), msg);
                    // Not again until the offer changes.
                    written.insert(key, attempt);
                }
            }
        }
    }
}

/// Merge-patches `status.conditions` (the offer's, with the report's upserted) guarded by the
/// resourceVersion the report was made from.
async fn patch_conditions(api: &Api<DynamicObject>, r: &OfferReport) -> Result<(), kube::Error> {
    let mut conditions = r.current.clone();
    let now = now_rfc3339();
    for d in &r.desired {
        upsert_condition(&mut conditions, d.clone(), &now);
    }
    let mut patch = json!({"status": {"conditions": conditions}});
    if let Some(rv) = &r.resource_version {
        patch["metadata"] = json!({"resourceVersion": rv});
    }
    let params = PatchParams {
        field_manager: Some(STATUS_MANAGER.to_string()),
        ..Default::default()
    };
    api.patch_status(&r.name, &params, &Patch::Merge(&patch))
        .await
        .map(|_| ())
}
