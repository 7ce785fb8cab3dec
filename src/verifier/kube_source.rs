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
use crate::offers::Route;
use crate::offers::kube::{OfferProblem, Rendered, reason, render};
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
    let err = client.watch_error("watching ServiceOffers", e);
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
    let mut last_counts: Option<(usize, usize)> = None;

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
            let result = tokio::task::spawn_blocking(move || src.set_offers(view, &tbl)).await;
            match result {
                Ok(Ok(Some(n))) => {
                    // Status writes come back as events: log only what changes the counts.
                    if last_counts != Some((n, offers.len())) {
                        tracing::info!(
                            routes = n,
                            offers = offers.len(),
                            "routes rebuilt from ServiceOffers"
                        );
                    } else {
                        tracing::debug!(routes = n, "routes rebuilt from ServiceOffers");
                    }
                    last_counts = Some((n, offers.len()));
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
                            format!(
                                "writing the status of ServiceOffer {}/{}",
                                r.namespace, r.name
                            ),
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::k8s::children::set_paused;
    use crate::k8s::types::{
        OfferPayment, OfferPrice, OfferUpstream, ServiceOfferSpec, ServiceOfferStatus,
    };
    use crate::offers::{PricingConfig, RouteRule};
    use crate::verifier::metrics::Metrics;
    use crate::verifier::routes::{Lookup, SourceKind, SourceState, not_loaded};
    use crate::x402::facilitator::{FacilitatorClient, FacilitatorConfig};

    const PAY: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    const WALLET: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

    fn source(kind: SourceKind) -> (Arc<RouteSource>, ArcSwap<RouteTable>) {
        let http = reqwest::Client::new();
        let config = FacilitatorConfig::default();
        let placeholder = FacilitatorClient::with_client(
            http.clone(),
            "https://x402.gcp.obol.tech",
            config.clone(),
        )
        .unwrap();
        let src = Arc::new(RouteSource {
            path: PathBuf::from("/nonexistent/pricing.yaml"),
            registry: Registry::builtin(),
            facilitator_override: None,
            facilitator_config: config,
            http,
            verify_only: None,
            metrics: Arc::new(Metrics::new()),
            kind,
            state: SourceState::default(),
        });
        (
            src,
            ArcSwap::from_pointee(not_loaded(Arc::new(placeholder))),
        )
    }

    fn base(chain: &str, routes: Vec<RouteRule>) -> PricingConfig {
        PricingConfig {
            wallet: Some(WALLET.into()),
            chain: Some(chain.into()),
            routes,
            ..Default::default()
        }
    }

    fn so(ns: &str, name: &str, price: &str, network: Option<&str>) -> ServiceOffer {
        let mut o = ServiceOffer::new(
            name,
            ServiceOfferSpec {
                upstream: Some(OfferUpstream {
                    service: "web".into(),
                    port: Some(8080),
                    ..Default::default()
                }),
                payment: OfferPayment {
                    network: network.map(String::from),
                    price: OfferPrice {
                        per_request: Some(price.into()),
                        ..Default::default()
                    },
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        o.metadata.namespace = Some(ns.into());
        o.metadata.generation = Some(3);
        o.metadata.resource_version = Some("7".into());
        o
    }

    fn view(offers: &[ServiceOffer]) -> Vec<KubeOffer> {
        let mut v: Vec<KubeOffer> = offers
            .iter()
            .map(|o| KubeOffer::from_offer(o, &Registry::builtin()))
            .collect();
        v.sort_by_key(KubeOffer::key);
        v
    }

    fn route_at<'a>(t: &'a RouteTable, path: &str) -> Option<&'a Route> {
        match t.lookup(path) {
            Lookup::Route(r) => Some(&r.route),
            _ => None,
        }
    }

    #[test]
    fn ready_only_once_the_file_and_the_first_list_are_in() {
        let (src, table) = source(SourceKind::Kube);
        assert_eq!(src.set_base(base("base", vec![]), &table).unwrap(), None);
        assert!(!table.load().loaded, "waits for the ServiceOffers");
        assert_eq!(src.set_offers(vec![], &table).unwrap(), Some(0));
        assert!(table.load().loaded, "an empty list is a complete one");

        let (src, table) = source(SourceKind::Kube);
        assert_eq!(
            src.set_offers(view(&[so("a", "x", "1", None)]), &table)
                .unwrap(),
            None
        );
        assert!(!table.load().loaded, "waits for the offers file");
        assert_eq!(src.set_base(base("base", vec![]), &table).unwrap(), Some(1));
        assert!(table.load().loaded);
    }

    #[test]
    fn offers_come_first_inherit_chain_and_wallet_and_file_routes_follow() {
        let (src, table) = source(SourceKind::Both);
        let file_route = RouteRule {
            pattern: "/services/*".into(),
            price: "9".into(),
            offer_namespace: Some("local".into()),
            offer_name: Some("catchall".into()),
            ..Default::default()
        };
        src.set_base(base("base", vec![file_route]), &table)
            .unwrap();
        let mut named = so("shop", "named", "0.5", Some("base-sepolia"));
        named.spec.payment.pay_to = Some(PAY.into());
        src.set_offers(view(&[so("shop", "plain", "0.01", None), named]), &table)
            .unwrap();
        let t = table.load();
        assert_eq!(t.len(), 3);
        let plain = route_at(&t, "/services/plain/x").unwrap();
        assert_eq!(plain.chain(), "eip155:8453", "the file's chain");
        assert_eq!(
            plain.pay_to,
            WALLET.parse::<alloy_primitives::Address>().unwrap()
        );
        assert_eq!(plain.offer_namespace, "shop");
        assert_eq!(
            plain.upstream_url.as_deref(),
            Some("http://web.shop.svc.cluster.local:8080")
        );
        let named = route_at(&t, "/services/named").unwrap();
        assert_eq!(named.chain(), "eip155:84532");
        assert_eq!(
            named.pay_to,
            PAY.parse::<alloy_primitives::Address>().unwrap()
        );
        // The file's catch-all comes after the offers.
        assert_eq!(
            route_at(&t, "/services/other").unwrap().offer_name,
            "catchall"
        );

        // In kube mode the file's routes are ignored.
        let (src, table) = source(SourceKind::Kube);
        src.set_base(
            base(
                "base",
                vec![RouteRule {
                    pattern: "/f/*".into(),
                    price: "1".into(),
                    ..Default::default()
                }],
            ),
            &table,
        )
        .unwrap();
        src.set_offers(vec![], &table).unwrap();
        assert!(matches!(table.load().lookup("/f/x"), Lookup::None));
    }

    #[test]
    fn paused_unpublished_broken_and_conflicting_offers() {
        let (src, table) = source(SourceKind::Kube);
        src.set_base(base("base-sepolia", vec![]), &table).unwrap();
        let mut paused = so("a", "paused", "1", None);
        set_paused(&mut paused.metadata, true);
        let mut unpublished = so("a", "unpublished", "1", None);
        unpublished.status = Some(ServiceOfferStatus {
            conditions: vec![Condition::new(
                condition::ROUTE_PUBLISHED,
                condition::FALSE,
                "NoGateway",
                "",
            )],
            ..Default::default()
        });
        let broken = so("a", "broken", "1", Some("atlantis"));
        let mut first = so("a", "first", "1", None);
        first.spec.path = Some("/shared".into());
        let mut second = so("b", "second", "2", None);
        second.spec.path = Some("/shared/".into());
        let mut reports = src.state.reports();
        src.set_offers(view(&[paused, unpublished, broken, first, second]), &table)
            .unwrap();
        let t = table.load();
        assert!(route_at(&t, "/services/paused/x").unwrap().paused);
        assert!(matches!(t.lookup("/services/unpublished/x"), Lookup::None));
        match t.lookup("/services/broken/x") {
            Lookup::Unavailable(u) => {
                assert_eq!(u.reason, reason::UNKNOWN_NETWORK);
                assert_eq!(u.offer_name, "broken");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(route_at(&t, "/shared/x").unwrap().offer_name, "first");

        assert!(reports.has_changed().unwrap());
        let batch = reports.borrow_and_update().clone();
        let by = |name: &str| batch.iter().find(|r| r.name == name).cloned();
        assert!(by("unpublished").is_none(), "not touched");
        let gate = |name: &str| by(name).unwrap().desired[0].clone();
        assert_eq!(gate("paused").reason.as_deref(), Some(reason::PAUSED));
        assert_eq!(gate("paused").status, condition::FALSE);
        assert_eq!(
            gate("broken").reason.as_deref(),
            Some(reason::UNKNOWN_NETWORK)
        );
        assert!(gate("broken").message.unwrap().contains("atlantis"));
        assert_eq!(
            gate("second").reason.as_deref(),
            Some(reason::PATH_CONFLICT)
        );
        assert!(gate("second").message.unwrap().contains("a/first"));
        let ok = by("first").unwrap();
        assert_eq!(ok.desired[0].type_, condition::PAYMENT_GATE_READY);
        assert_eq!(ok.desired[0].status, condition::TRUE);
        assert_eq!(ok.desired[0].observed_generation, Some(3));
        assert_eq!(ok.desired[1].type_, condition::READY);
        assert!(!ok.up_to_date());
        let mut done = ok.clone();
        done.current = done.desired.clone();
        assert!(done.up_to_date());
    }

    #[test]
    fn a_broken_offer_blocks_only_paths_it_comes_before() {
        let (src, table) = source(SourceKind::Both);
        let file_route = RouteRule {
            pattern: "/services/*".into(),
            price: "1".into(),
            ..Default::default()
        };
        src.set_base(base("base", vec![file_route]), &table)
            .unwrap();
        let mut good = so("a", "good", "1", None);
        good.spec.path = Some("/services/x/good".into());
        let mut broken = so("b", "broken", "nope", None);
        broken.spec.path = Some("/services/x".into());
        src.set_offers(view(&[good, broken]), &table).unwrap();
        let t = table.load();
        // An earlier offer wins over the broken one.
        assert_eq!(
            route_at(&t, "/services/x/good/1").unwrap().offer_name,
            "good"
        );
        // The broken offer wins over the file's catch-all that comes after it.
        assert!(matches!(t.lookup("/services/x/1"), Lookup::Unavailable(_)));
        // Other paths still reach the file's route.
        assert!(route_at(&t, "/services/y").is_some());
    }

    #[test]
    fn series_of_deleted_offers_and_of_an_old_chain_are_removed() {
        let (src, table) = source(SourceKind::Kube);
        src.set_base(base("base", vec![]), &table).unwrap();
        src.set_offers(
            view(&[so("a", "keep", "1", None), so("a", "gone", "1", None)]),
            &table,
        )
        .unwrap();
        for p in ["/services/keep", "/services/gone"] {
            match table.load().lookup(p) {
                Lookup::Route(r) => r.series.request(),
                other => panic!("{other:?}"),
            }
        }
        let text = src.metrics.encode();
        assert!(
            text.contains(
                r#"obol_x402_verifier_requests_total{chain="eip155:8453",offer_name="gone",offer_namespace="a"} 1"#
            ),
            "{text}"
        );
        // Deleted: every series of the offer goes, with the inherited chain label.
        src.set_offers(view(&[so("a", "keep", "1", None)]), &table)
            .unwrap();
        let text = src.metrics.encode();
        assert!(!text.contains(r#"offer_name="gone""#), "{text}");
        assert!(text.contains(r#"offer_name="keep""#), "{text}");
        // The file's chain changes: the offer's series move to the new chain.
        src.set_base(base("base-sepolia", vec![]), &table).unwrap();
        let text = src.metrics.encode();
        assert!(!text.contains(r#"chain="eip155:8453""#), "{text}");
        assert_eq!(
            route_at(&table.load(), "/services/keep").unwrap().chain(),
            "eip155:84532"
        );
    }

    #[test]
    fn a_broken_base_file_keeps_the_previous_one() {
        let (src, table) = source(SourceKind::Kube);
        src.set_base(base("base", vec![]), &table).unwrap();
        src.set_offers(view(&[so("a", "x", "1", None)]), &table)
            .unwrap();
        let err = src.set_base(base("mars", vec![]), &table).unwrap_err();
        assert!(err.to_string().contains("mars"), "{err}");
        // Still on base, and later offers still resolve against it.
        src.set_offers(view(&[so("a", "y", "1", None)]), &table)
            .unwrap();
        assert_eq!(
            route_at(&table.load(), "/services/y").unwrap().chain(),
            "eip155:8453"
        );
    }

    #[test]
    fn an_object_that_does_not_read_is_an_invalid_offer() {
        let mut obj =
            DynamicObject::new("weird", &ApiResource::erase::<ServiceOffer>(&())).within("a");
        obj.data = json!({"spec": {"upstream": {"service": "web", "port": "eighty"}},
                          "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let o = KubeOffer::from_object(&obj, &Registry::builtin());
        assert_eq!(o.name, "weird");
        assert_eq!(o.conditions.len(), 1);
        match o.rendered {
            Rendered::Invalid { pattern, problem } => {
                assert_eq!(pattern, None);
                assert_eq!(problem.reason, reason::INVALID_SPEC);
            }
            other => panic!("{other:?}"),
        }
    }
}
