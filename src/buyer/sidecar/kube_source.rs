//! `--source kube|both`: the PurchaseRequests of one namespace as upstreams, their status
//! written back, and auto-refill. This replaces the obol-stack controller and its ConfigMaps:
//! the sidecar reads the PurchaseRequests itself.
//!
//! A kube-rs watcher lists and watches `purchaserequests.obol.org` in the namespace and keeps
//! the current objects; a change of a spec (or an object added or deleted) asks the sidecar for
//! a prompt reload through its [`ReloadHandle`]. [`PoolSource::load`] turns each object into an
//! [`UpstreamSpec`] (name = the PurchaseRequest's name, url = `spec.endpoint` without its
//! `/v1/chat/completions`, the agreed payment = `spec.payment`, the pool =
//! `spec.preSignedAuths`, the caps = `spec.autoRefill.maxTotal`/`maxSpendPerDay`) once the
//! seller's 402 was probed and matches `spec.payment`; one that cannot be used is a
//! [`SourceIssue`] with the reason.
//!
//! [`PoolSource::report`] writes each object's status (subresource, merge patch, field manager
//! `obol-buyer`) when it differs from what the object says: `observedGeneration`,
//! `publicModel`, `remaining`, `spent`, `totalSpent`, `totalSigned`, `signerAddress` and the
//! conditions `Ready` (reasons in [`reason`]) and, with `autoRefill.enabled`, `Refill`. The
//! same call refills: below `autoRefill.threshold`, with a wallet that is the PurchaseRequest's
//! signer, it signs `autoRefill.count` authorizations (never more than `maxTotal` ever, none
//! while today's `maxSpendPerDay` is spent) and appends them to `spec.preSignedAuths`.
//!
//! Until the first complete list the source cannot be read ([`SourceError`]); the sidecar then
//! serves its other sources and is not ready. The watch retries with backoff meanwhile.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use alloy_primitives::Address;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt as _, StreamExt as _};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};

use super::Clock;
use super::config::{AutoRefillBudget, PreSignedAuth, UpstreamConfig};
use super::payment::{self, Terms};
use super::source::{
    PoolSource, ReloadHandle, SourceError, SourceIssue, SourceSnapshot, UpstreamSpec,
};
use super::status::UpstreamStatus;
use super::upstream::{self, normalize_model};
use crate::buyer::wallet::Wallet;
use crate::k8s::apply::now_rfc3339;
use crate::k8s::types::{
    Condition, PurchaseRequest, PurchaseRequestSpec, PurchaseRequestStatus, condition,
    upsert_condition,
};
use crate::k8s::{K8sError, KubeClient};
use crate::x402::codec::PAYMENT_REQUIRED;
use crate::x402::networks::Registry;
use crate::x402::wire::parse_402;

/// Field manager of the sidecar's writes (status, refilled authorizations).
pub const FIELD_MANAGER: &str = "obol-buyer";
/// Condition type of the auto-refill verdict (only on PurchaseRequests with
/// `autoRefill.enabled`).
pub const REFILL_CONDITION: &str = "Refill";
/// Validity of an authorization signed by a refill: it waits in the pool, so 30 days (the
/// obol-stack `buy.py` default).
pub const REFILL_VALIDITY_SECS: u64 = 30 * 24 * 3600;
/// A probe that failed or did not match is repeated after this long.
pub const PROBE_RETRY_SECS: u64 = 30;
/// How long a load waits for the first list (× 100 ms).
const FIRST_LIST_WAIT_STEPS: usize = 50;
/// Time limit of one probe of a seller.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// Reasons of the `Ready` and `Refill` conditions.
pub mod reason {
    /// Ready=True: loaded, the seller's 402 matches, authorizations (or budget) left.
    pub const RECONCILED: &str = "Reconciled";
    /// The spec cannot be used (endpoint, model, network, payTo, asset, price, caps, auths).
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// `spec.preSignedAuths` holds no usable authorization (none, or all for another payee,
    /// another price, expired).
    pub const NO_AUTHS: &str = "NoAuths";
    /// The seller's 402 does not offer `spec.payment` (price, payTo, asset or network differ).
    pub const PRICING_MISMATCH: &str = "PricingMismatch";
    /// The seller could not be probed (unreachable, or no 402 to an unpaid request); the
    /// upstream is served, the probe repeated.
    pub const PROBE_FAILED: &str = "ProbeFailed";
    /// Every authorization of the pool is spent.
    pub const EXHAUSTED: &str = "Exhausted";
    /// `maxTotal` payments were made, or today's `maxSpendPerDay` is spent.
    pub const BUDGET_EXHAUSTED: &str = "BudgetExhausted";

    /// Refill=True: the sidecar refills when fewer than `threshold` remain.
    pub const ARMED: &str = "Armed";
    /// Refill=True: authorizations were just appended.
    pub const REFILLED: &str = "Refilled";
    /// Refill=False: the sidecar has no wallet.
    pub const NO_SIGNER: &str = "NoSigner";
    /// Refill=False: the sidecar's wallet is not the one that signed the pool.
    pub const SIGNER_MISMATCH: &str = "SignerMismatch";
    /// Refill=False: `maxTotal` authorizations were signed.
    pub const MAX_TOTAL_REACHED: &str = "MaxTotalReached";
    /// Refill=False: today's `maxSpendPerDay` is spent; refills resume after 00:00 UTC.
    pub const DAILY_BUDGET_SPENT: &str = "DailyBudgetSpent";
    /// Refill=False: the terms cannot be signed (unknown network or asset, over the
    /// per-request cap, seller's terms not matching) or the write failed.
    pub const CANNOT_REFILL: &str = "CannotRefill";
}

/// What a [`KubeSource`] needs.
#[derive(Clone)]
pub struct KubeSourceConfig {
    pub client: KubeClient,
    /// The one namespace whose PurchaseRequests are served.
    pub namespace: String,
    pub registry: Registry,
    /// Per-request cap of any signature the sidecar makes (refills too), USDC decimal.
    pub max_amount: String,
    /// The wallet for refills; `None`: no refill.
    pub signer: Option<Arc<Wallet>>,
    pub clock: Arc<dyn Clock>,
    /// `timeoutSeconds` of each watch request (kube-rs's default, 290 s, when `None`).
    pub watch_timeout: Option<Duration>,
}

/// The PurchaseRequests of one namespace (see the module docs). Dropping it stops the watch.
pub struct KubeSource {
    shared: Arc<Shared>,
    watch: tokio::task::JoinHandle<()>,
}

impl Drop for KubeSource {
    fn drop(&mut self) {
        self.watch.abort();
    }
}

struct Shared {
    cfg: KubeSourceConfig,
    api: Api<DynamicObject>,
    http: reqwest::Client,
    reload: OnceLock<ReloadHandle>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The first complete list arrived.
    listed: bool,
    /// The watch's current failure.
    watch_error: Option<String>,
    prs: BTreeMap<String, Pr>,
    /// Seller probes, by PurchaseRequest name.
    probes: HashMap<String, Probe>,
    /// Each PurchaseRequest read as an upstream, for the version (uid, generation) read.
    #[allow(clippy::type_complexity)]
    parsed: HashMap<String, (Generation, Result<UpstreamSpec, (&'static str, String)>)>,
    /// What the last load made of each PurchaseRequest, with the (uid, generation) it saw.
    verdicts: HashMap<String, (Generation, Verdict)>,
    /// Status patches sent: (resourceVersion patched, status sent), by name.
    written: HashMap<String, (Option<String>, PurchaseRequestStatus)>,
    /// The last failed write of each name (logged once).
    write_errors: HashMap<String, String>,
    /// The resourceVersion a refill patched, by name: no second refill until a newer version
    /// is seen.
    refilled_at: HashMap<String, Option<String>>,
    /// What the last refill did, by name (in the `Refill` condition's message).
    last_refill: HashMap<String, String>,
    /// Why a refill is not possible, by name, as last logged.
    refill_blocked: HashMap<String, String>,
}

impl Inner {
    fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `(uid, generation)`: which version of an object a verdict is about.
type Generation = (Option<String>, Option<i64>);

/// One watched PurchaseRequest.
#[derive(Debug, Clone)]
struct Pr {
    name: String,
    uid: Option<String>,
    generation: Option<i64>,
    resource_version: Option<String>,
    /// `Err`: the object does not read as a PurchaseRequest.
    spec: Result<PurchaseRequestSpec, String>,
    /// `spec.preSignedAuths` as written (kept verbatim when a refill appends).
    raw_auths: Vec<Value>,
    status: PurchaseRequestStatus,
}

impl Pr {
    fn from_object(obj: &DynamicObject) -> Pr {
        let parsed = obj.clone().try_parse::<PurchaseRequest>();
        let status = obj
            .data
            .get("status")
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or_default();
        Pr {
            name: obj.metadata.name.clone().unwrap_or_default(),
            uid: obj.metadata.uid.clone(),
            generation: obj.metadata.generation,
            resource_version: obj.metadata.resource_version.clone(),
            spec: parsed
                .map(|p| p.spec)
                .map_err(|e| format!("the object does not read as a PurchaseRequest: {e}")),
            raw_auths: obj
                .data
                .pointer("/spec/preSignedAuths")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            status,
        }
    }

    /// Something the upstream is built from changed (not just the status).
    fn same_source(&self, other: &Pr) -> bool {
        self.uid == other.uid && self.generation == other.generation && self.spec == other.spec
    }

    /// `from` of the first authorization: the wallet that signed the pool.
    fn signer(&self) -> Option<Address> {
        let spec = self.spec.as_ref().ok()?;
        let first = spec.pre_signed_auths.first()?;
        let from = first.from.clone().or_else(|| {
            let payload = first.payment.as_ref()?.get("payload")?;
            ["authorization", "permit2Authorization"]
                .iter()
                .find_map(|k| payload.get(*k)?.get("from")?.as_str().map(str::to_owned))
        })?;
        from.trim().parse().ok()
    }
}

/// A probe of a seller: the spec's endpoint, unpaid, must answer 402 offering `spec.payment`.
#[derive(Debug, Clone)]
struct Probe {
    /// The terms probed (endpoint, model, payment), to tell when they change.
    key: String,
    state: ProbeState,
    at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ProbeState {
    Running,
    Matched,
    Mismatch(String),
    Failed(String),
}

/// What a load made of a PurchaseRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Served; `probe_failed` says why the seller could not be probed.
    Loaded { probe_failed: Option<String> },
    /// Served, the first probe of these terms is under way (a mismatch then keeps the
    /// upstream as it is, refusing to pay: nothing is spent).
    Probing,
    Issue {
        reason: &'static str,
        message: String,
    },
}

/// `spec.endpoint` without a trailing `/v1/chat/completions` or `/chat/completions`: the base
/// the sidecar appends request paths to.
pub fn endpoint_base(endpoint: &str) -> String {
    let e = endpoint.trim().trim_end_matches('/');
    e.strip_suffix("/v1/chat/completions")
        .or_else(|| e.strip_suffix("/chat/completions"))
        .unwrap_or(e)
        .to_owned()
}

/// The upstream a PurchaseRequest describes.
pub fn upstream_spec(
    namespace: &str,
    name: &str,
    spec: &PurchaseRequestSpec,
    raw_auths: &[Value],
) -> Result<UpstreamSpec, String> {
    let p = &spec.payment;
    let refill = spec.auto_refill.as_ref();
    let max_total = refill
        .and_then(|a| a.max_total)
        .map(|v| u64::try_from(v).map_err(|_| format!("`autoRefill.maxTotal` {v} is negative")))
        .transpose()?;
    let asset_decimals = p
        .asset_decimals
        .map(|d| {
            u8::try_from(d).map_err(|_| format!("`payment.assetDecimals` {d} is out of range"))
        })
        .transpose()?;
    let auths: Vec<PreSignedAuth> = raw_auths
        .iter()
        .enumerate()
        .map(|(i, a)| {
            serde_json::from_value(a.clone()).map_err(|e| {
                format!(
                    "`preSignedAuths[{i}]`: {}",
                    crate::x402::codec::DecodeError::json(&e)
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(UpstreamSpec {
        name: name.to_owned(),
        config: UpstreamConfig {
            url: endpoint_base(&spec.endpoint),
            remote_model: spec.model.clone(),
            network: p.network.clone(),
            pay_to: p.pay_to.clone(),
            asset: p.asset.clone(),
            asset_symbol: p.asset_symbol.clone(),
            asset_decimals,
            asset_transfer_method: p.asset_transfer_method.clone(),
            eip712_name: p.eip712_name.clone(),
            eip712_version: p.eip712_version.clone(),
            price: p.price.clone(),
            max_spend_per_day: None,
            max_total: None,
            live_signing: false,
            auto_refill: refill.map(|a| AutoRefillBudget {
                max_total,
                max_spend_per_day: a.max_spend_per_day.clone(),
            }),
        },
        auths,
        origin: format!("purchaserequest {namespace}/{name}"),
    })
}

/// A description of the terms a probe checks; a change means a new probe.
fn probe_key(spec: &PurchaseRequestSpec) -> String {
    json!([spec.endpoint, spec.model, spec.payment]).to_string()
}

/// The URL a probe posts to: the endpoint as written when it names the chat route, else the
/// base's `/v1/chat/completions`.
fn probe_url(endpoint: &str) -> String {
    let e = endpoint.trim().trim_end_matches('/');
    if e.ends_with("/chat/completions") {
        e.to_owned()
    } else {
        format!("{e}/v1/chat/completions")
    }
}

/// One unpaid request to the seller (as the obol-stack controller did): a 402 must offer the
/// agreed terms. Nothing is signed or paid.
async fn probe(
    http: &reqwest::Client,
    registry: &Registry,
    endpoint: &str,
    model: &str,
    terms: Terms<'_>,
) -> ProbeState {
    let url = probe_url(endpoint);
    let body = json!({"model": model, "messages": [{"role": "user", "content": "probe"}], "max_tokens": 1});
    let resp = match http
        .post(&url)
        .json(&body)
        .timeout(PROBE_TIMEOUT)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return ProbeState::Failed(format!(
                "cannot reach the seller at {url}: {}",
                error_chain(&e)
            ));
        }
    };
    let status = resp.status();
    if status != reqwest::StatusCode::PAYMENT_REQUIRED {
        return ProbeState::Failed(format!(
            "the seller answered {status} to an unpaid request to {url}, not 402 Payment Required"
        ));
    }
    let header = resp
        .headers()
        .get(PAYMENT_REQUIRED)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.bytes().await.unwrap_or_default();
    let required = match parse_402(header.as_deref(), &body) {
        Ok(r) => r,
        Err(e) => {
            return ProbeState::Failed(format!("the seller's 402 at {url} cannot be read: {e}"));
        }
    };
    match payment::pick_terms(&terms, &required, registry) {
        Ok(_) => ProbeState::Matched,
        Err(m) => ProbeState::Mismatch(
            m.message_for(&terms)
                .trim_end_matches("; nothing was paid")
                .to_owned(),
        ),
    }
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let part = e.to_string();
        if !s.contains(&part) {
            s = format!("{s}: {part}");
        }
        cur = e.source();
    }
    s
}

impl KubeSource {
    /// Starts watching the namespace's PurchaseRequests. Must run inside a tokio runtime.
    pub fn start(cfg: KubeSourceConfig) -> KubeSource {
        let resource = ApiResource::erase::<PurchaseRequest>(&());
        let api = Api::namespaced_with(cfg.client.client().clone(), &cfg.namespace, &resource);
        let shared = Arc::new(Shared {
            cfg,
            api,
            http: super::upstream_client(),
            reload: OnceLock::new(),
            inner: Mutex::new(Inner::default()),
        });
        let watch = tokio::spawn(watch(Arc::clone(&shared)));
        KubeSource { shared, watch }
    }

    /// The namespace served.
    pub fn namespace(&self) -> &str {
        &self.shared.cfg.namespace
    }
}

impl Shared {
    fn trigger(&self) {
        if let Some(r) = self.reload.get() {
            r.trigger();
        }
    }

    fn source_error(&self, message: String) -> SourceError {
        SourceError {
            source_name: "kube".into(),
            message,
        }
    }

    fn describe(&self, e: &watcher::Error) -> String {
        let action = format!(
            "watching PurchaseRequests in namespace {}",
            self.cfg.namespace
        );
        let err = self.cfg.client.watch_error(action, e);
        let hint = match &err {
            K8sError::Api { code: 403, .. } => format!(
                "the buyer's service account needs purchaserequests get/list/watch/patch and purchaserequests/status get/patch/update in namespace {} (`obol manifests` has the Role)",
                self.cfg.namespace
            ),
            K8sError::Api { code: 404, .. } => {
                "is the PurchaseRequest CRD installed? (`obol manifests | kubectl apply -f -`)"
                    .to_string()
            }
            other => other.hint(),
        };
        format!("{err} (hint: {hint})")
    }

    /// Classifies every PurchaseRequest, starting probes where needed.
    fn snapshot(self: &Arc<Self>) -> Result<SourceSnapshot, SourceError> {
        let now = self.cfg.clock.now();
        let ns = &self.cfg.namespace;
        let mut inner = Inner::lock(&self.inner);
        if !inner.listed {
            let why = inner.watch_error.clone().unwrap_or_else(|| {
                format!("the PurchaseRequests of namespace {ns} are not listed yet")
            });
            return Err(self.source_error(why));
        }
        let mut snapshot = SourceSnapshot::default();
        let mut verdicts = HashMap::new();
        let mut to_probe = Vec::new();
        // Taken out while classifying (which updates the rest of `inner`), put back after.
        let prs = std::mem::take(&mut inner.prs);
        for pr in prs.values() {
            let verdict = match self.classify(pr, &mut inner, now, &mut to_probe) {
                Ok((spec, verdict)) => {
                    if matches!(verdict, Verdict::Loaded { .. } | Verdict::Probing) {
                        snapshot.upstreams.push(spec);
                    }
                    verdict
                }
                Err((reason, message)) => Verdict::Issue { reason, message },
            };
            if let Verdict::Issue { message, .. } = &verdict {
                snapshot.issues.push(SourceIssue {
                    name: pr.name.clone(),
                    origin: format!("purchaserequest {ns}/{}", pr.name),
                    message: message.clone(),
                });
            }
            verdicts.insert(pr.name.clone(), ((pr.uid.clone(), pr.generation), verdict));
        }
        inner.verdicts = verdicts;
        inner.prs = prs;
        let names: HashSet<String> = inner.prs.keys().cloned().collect();
        inner.probes.retain(|name, _| names.contains(name));
        inner.parsed.retain(|name, _| names.contains(name));
        drop(inner);
        for (name, key, endpoint, model, spec) in to_probe {
            let shared = Arc::clone(self);
            tokio::spawn(async move {
                let Ok(resolved) =
                    upstream::resolve(&spec, &shared.cfg.registry, &shared.cfg.max_amount, now)
                else {
                    return;
                };
                let terms = Terms {
                    chain: &resolved.chain,
                    asset: resolved.asset,
                    pay_to: resolved.pay_to,
                    price: resolved.price,
                };
                let state =
                    probe(&shared.http, &shared.cfg.registry, &endpoint, &model, terms).await;
                let changed = {
                    let mut inner = Inner::lock(&shared.inner);
                    match inner.probes.get_mut(&name) {
                        Some(p) if p.key == key => {
                            let changed = p.state != state;
                            p.state = state.clone();
                            p.at = shared.cfg.clock.now();
                            changed
                        }
                        _ => return,
                    }
                };
                if !changed {
                    return;
                }
                match &state {
                    ProbeState::Matched => {
                        tracing::info!(purchaserequest = %name, "the seller's 402 matches the agreed payment")
                    }
                    ProbeState::Mismatch(m) | ProbeState::Failed(m) => {
                        tracing::warn!(purchaserequest = %name, "probe: {m}")
                    }
                    ProbeState::Running => {}
                }
                shared.trigger();
            });
        }
        Ok(snapshot)
    }

    /// The upstream of `pr` and its verdict, or why it cannot be used.
    #[allow(clippy::type_complexity)]
    fn classify(
        &self,
        pr: &Pr,
        inner: &mut Inner,
        now: u64,
        to_probe: &mut Vec<(String, String, String, String, UpstreamSpec)>,
    ) -> Result<(UpstreamSpec, Verdict), (&'static str, String)> {
        // Parsing and resolving thousands of auths is done once per version of the object.
        let seen = (pr.uid.clone(), pr.generation);
        let up = match inner.parsed.get(&pr.name) {
            Some((g, parsed)) if *g == seen => parsed.clone(),
            _ => {
                let parsed = self.parse(pr, now);
                inner.parsed.insert(pr.name.clone(), (seen, parsed.clone()));
                parsed
            }
        }?;
        let spec = pr
            .spec
            .as_ref()
            .map_err(|e| (reason::INVALID_SPEC, e.clone()))?;
        let key = probe_key(spec);
        let stale = match inner.probes.get(&pr.name) {
            None => true,
            Some(p) if p.key != key => true,
            Some(p) => {
                matches!(p.state, ProbeState::Mismatch(_) | ProbeState::Failed(_))
                    && now >= p.at + PROBE_RETRY_SECS
            }
        };
        if stale {
            let previous = inner.probes.get(&pr.name).filter(|p| p.key == key).cloned();
            inner.probes.insert(
                pr.name.clone(),
                Probe {
                    key: key.clone(),
                    // A retry keeps the last verdict until it is done.
                    state: previous.map_or(ProbeState::Running, |p| p.state),
                    at: now,
                },
            );
            to_probe.push((
                pr.name.clone(),
                key,
                spec.endpoint.clone(),
                normalize_model(&spec.model).to_owned(),
                up.clone(),
            ));
        }
        let state = inner
            .probes
            .get(&pr.name)
            .map_or(ProbeState::Running, |p| p.state.clone());
        let verdict = match state {
            ProbeState::Running => Verdict::Probing,
            ProbeState::Matched => Verdict::Loaded { probe_failed: None },
            ProbeState::Failed(why) => Verdict::Loaded {
                probe_failed: Some(why),
            },
            ProbeState::Mismatch(why) => return Err((reason::PRICING_MISMATCH, why)),
        };
        Ok((up, verdict))
    }

    /// The upstream `pr` describes, checked as the sidecar will load it, with at least one
    /// usable authorization.
    fn parse(&self, pr: &Pr, now: u64) -> Result<UpstreamSpec, (&'static str, String)> {
        let invalid = |m: String| (reason::INVALID_SPEC, m);
        let spec = pr.spec.as_ref().map_err(|e| invalid(e.clone()))?;
        if spec.endpoint.trim().is_empty() {
            return Err(invalid("`spec.endpoint` is empty".into()));
        }
        let up =
            upstream_spec(&self.cfg.namespace, &pr.name, spec, &pr.raw_auths).map_err(invalid)?;
        let resolved = upstream::resolve(&up, &self.cfg.registry, &self.cfg.max_amount, now)
            .map_err(invalid)?;
        if resolved.auths.is_empty() {
            let why = if spec.pre_signed_auths.is_empty() {
                "`spec.preSignedAuths` is empty".to_owned()
            } else {
                format!(
                    "none of the {} authorizations of `spec.preSignedAuths` is usable ({})",
                    spec.pre_signed_auths.len(),
                    resolved
                        .unusable_auths
                        .iter()
                        .map(|(r, n)| format!("{n} {r}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err((reason::NO_AUTHS, why));
        }
        Ok(up)
    }
}

impl PoolSource for KubeSource {
    fn name(&self) -> &str {
        "kube"
    }

    fn attach(&self, reload: ReloadHandle) {
        let _ = self.shared.reload.set(reload);
    }

    fn load(&self) -> BoxFuture<'_, Result<SourceSnapshot, SourceError>> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            // The first load (at start) waits briefly for the first list or failure.
            for _ in 0..FIRST_LIST_WAIT_STEPS {
                {
                    let inner = Inner::lock(&shared.inner);
                    if inner.listed || inner.watch_error.is_some() {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            shared.snapshot()
        })
    }

    fn report<'a>(&'a self, statuses: &'a [UpstreamStatus]) -> BoxFuture<'a, ()> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { shared.report(statuses).await })
    }
}

/// A status write or a refill to make.
struct Work {
    name: String,
    resource_version: Option<String>,
    status: PurchaseRequestStatus,
    refill: Option<Refill>,
}

/// Authorizations to sign and append.
struct Refill {
    count: usize,
    existing: Vec<Value>,
    network: crate::x402::networks::Network,
    pay_to: Address,
    price: alloy_primitives::U256,
    total_after: usize,
}

/// The refill decision for one PurchaseRequest: the `Refill` condition, and what to sign.
struct RefillPlan {
    condition: Condition,
    sign: Option<Refill>,
}

impl Shared {
    async fn report(self: &Arc<Self>, statuses: &[UpstreamStatus]) {
        let now = self.cfg.clock.now();
        let by_name: HashMap<&str, &UpstreamStatus> =
            statuses.iter().map(|s| (s.name.as_str(), s)).collect();
        let work: Vec<Work> = {
            let mut inner = Inner::lock(&self.inner);
            if !inner.listed {
                return;
            }
            let live: HashSet<String> = inner.prs.keys().cloned().collect();
            inner.written.retain(|k, _| live.contains(k));
            inner.write_errors.retain(|k, _| live.contains(k));
            inner.refilled_at.retain(|k, _| live.contains(k));
            inner.last_refill.retain(|k, _| live.contains(k));
            inner.refill_blocked.retain(|k, _| live.contains(k));
            let mut work = Vec::new();
            let mut refill_notes: Vec<(String, Condition)> = Vec::new();
            for pr in inner.prs.values() {
                // Only a verdict about this very version: a newer one waits for its reload.
                let Some(verdict) = inner
                    .verdicts
                    .get(&pr.name)
                    .filter(|(seen, _)| *seen == (pr.uid.clone(), pr.generation))
                    .map(|(_, v)| v)
                else {
                    continue;
                };
                let st = by_name.get(pr.name.as_str()).copied();
                let Some(ready) = ready_condition(verdict, st) else {
                    continue;
                };
                let plan = self.refill_plan(pr, verdict, st, &inner, now);
                let mut status = pr.status.clone();
                let stamp = now_rfc3339();
                let mut conditions = status.conditions.clone();
                upsert_condition(&mut conditions, with_generation(ready, pr), &stamp);
                if let Some(p) = &plan {
                    refill_notes.push((pr.name.clone(), p.condition.clone()));
                    upsert_condition(
                        &mut conditions,
                        with_generation(p.condition.clone(), pr),
                        &stamp,
                    );
                }
                status.conditions = conditions;
                status.observed_generation = pr.generation;
                if let Ok(spec) = &pr.spec {
                    status.public_model = Some(format!("paid/{}", normalize_model(&spec.model)));
                    status.total_signed = Some(count_i64(spec.pre_signed_auths.len()));
                }
                status.signer_address = pr.signer().map(|a| a.to_string());
                match st {
                    Some(s) => {
                        status.remaining = Some(count_i64(s.remaining));
                        status.spent = Some(count_i64(s.spent));
                        status.total_spent = Some(s.budget.spent_total.clone());
                    }
                    None => {
                        status.remaining = Some(0);
                        status.spent.get_or_insert(0);
                        status.total_spent.get_or_insert_with(|| "0".into());
                    }
                }
                let sign = plan.and_then(|p| p.sign);
                let unchanged = status == pr.status
                    || inner.written.get(&pr.name)
                        == Some(&(pr.resource_version.clone(), status.clone()));
                if unchanged && sign.is_none() {
                    continue;
                }
                work.push(Work {
                    name: pr.name.clone(),
                    resource_version: pr.resource_version.clone(),
                    status,
                    refill: sign,
                });
            }
            // Say once in the log why a refill is not possible.
            for (name, c) in refill_notes {
                if !c.is_false() {
                    inner.refill_blocked.remove(&name);
                    continue;
                }
                let why = c.reason.clone().unwrap_or_default();
                if inner.refill_blocked.get(&name) != Some(&why) {
                    tracing::warn!(
                        purchaserequest = %name,
                        "auto-refill not possible ({why}): {}",
                        c.message.as_deref().unwrap_or_default()
                    );
                    inner.refill_blocked.insert(name, why);
                }
            }
            work
        };
        for w in work {
            self.write(w, now).await;
        }
    }

    /// Writes a status (and first a refill) for one PurchaseRequest; failures are logged once.
    async fn write(&self, mut w: Work, now: u64) {
        if let Some(refill) = w.refill.take() {
            match self.refill(&w, &refill, now).await {
                Ok(()) => {
                    tracing::info!(
                        purchaserequest = %w.name,
                        "auto-refill: appended {} authorizations ({} signed in all)",
                        refill.count,
                        refill.total_after
                    );
                    let mut inner = Inner::lock(&self.inner);
                    inner
                        .refilled_at
                        .insert(w.name.clone(), w.resource_version.clone());
                    inner.last_refill.insert(
                        w.name.clone(),
                        format!(
                            "appended {} authorizations at {} ({} signed in all)",
                            refill.count,
                            now_rfc3339(),
                            refill.total_after
                        ),
                    );
                    // The status follows the new version (its resourceVersion changed).
                    return;
                }
                Err(message) => {
                    tracing::warn!(purchaserequest = %w.name, "auto-refill failed: {message}");
                    let c = Condition::new(
                        REFILL_CONDITION,
                        condition::FALSE,
                        reason::CANNOT_REFILL,
                        message,
                    );
                    upsert_condition(&mut w.status.conditions, c, &now_rfc3339());
                }
            }
        }
        let mut patch = json!({"status": &w.status});
        if let Some(rv) = &w.resource_version {
            patch["metadata"] = json!({"resourceVersion": rv});
        }
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..Default::default()
        };
        let result = self
            .api
            .patch_status(&w.name, &params, &Patch::Merge(&patch))
            .await;
        let mut inner = Inner::lock(&self.inner);
        match result {
            Ok(_) => {
                inner.write_errors.remove(&w.name);
                inner
                    .written
                    .insert(w.name.clone(), (w.resource_version.clone(), w.status));
            }
            // Changed meanwhile: the watch brings the new version, the next report retries.
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {}
            Err(e) => {
                let msg = self
                    .cfg
                    .client
                    .error(
                        format!(
                            "writing the status of PurchaseRequest {}/{}",
                            self.cfg.namespace, w.name
                        ),
                        e,
                    )
                    .to_string();
                if inner.write_errors.get(&w.name) != Some(&msg) {
                    tracing::warn!("{msg} (retried on the next reload)");
                }
                inner.write_errors.insert(w.name.clone(), msg);
            }
        }
    }

    /// Whether and how `pr` is refilled now.
    fn refill_plan(
        &self,
        pr: &Pr,
        verdict: &Verdict,
        st: Option<&UpstreamStatus>,
        inner: &Inner,
        now: u64,
    ) -> Option<RefillPlan> {
        let spec = pr.spec.as_ref().ok()?;
        let policy = spec.auto_refill.as_ref().filter(|a| a.enabled)?;
        let no = |why: &str, message: String| {
            Some(RefillPlan {
                condition: Condition::new(REFILL_CONDITION, condition::FALSE, why, message),
                sign: None,
            })
        };
        let Some(wallet) = self.cfg.signer.as_deref() else {
            return no(
                reason::NO_SIGNER,
                "auto-refill needs a wallet: run the sidecar with --private-key-file, --signer-url or OBOL_PRIVATE_KEY; nothing is signed".into(),
            );
        };
        if let Some(signer) = pr.signer()
            && signer != wallet.address()
        {
            return no(
                reason::SIGNER_MISMATCH,
                format!(
                    "the pool was signed by {signer}, the sidecar's wallet is {}; nothing is signed",
                    wallet.address()
                ),
            );
        }
        match verdict {
            Verdict::Loaded { probe_failed: None } => {}
            Verdict::Issue {
                reason: reason::NO_AUTHS,
                ..
            } => {}
            Verdict::Loaded {
                probe_failed: Some(why),
            } => {
                return no(
                    reason::CANNOT_REFILL,
                    format!("the seller's terms are not confirmed ({why}); nothing is signed"),
                );
            }
            Verdict::Probing => return None,
            Verdict::Issue { message, .. } => {
                return no(
                    reason::CANNOT_REFILL,
                    format!("{message}; nothing is signed"),
                );
            }
        }
        let threshold = usize::try_from(policy.threshold.unwrap_or(0)).unwrap_or(0);
        let per_refill = policy
            .count
            .filter(|c| *c > 0)
            .or(Some(spec.count).filter(|c| *c > 0))
            .and_then(|c| usize::try_from(c).ok())
            .unwrap_or(0);
        let signed = spec.pre_signed_auths.len();
        let max_total = policy.max_total.and_then(|m| usize::try_from(m).ok());
        let room = max_total.map_or(usize::MAX, |m| m.saturating_sub(signed));
        let remaining = st.map_or(0, |s| s.remaining);
        if room == 0 {
            return no(
                reason::MAX_TOTAL_REACHED,
                format!(
                    "{signed} authorizations were signed, autoRefill.maxTotal is {}; nothing more is signed",
                    max_total.unwrap_or_default()
                ),
            );
        }
        if st.and_then(|s| s.budget_left_today.as_deref()) == Some("0") {
            return no(
                reason::DAILY_BUDGET_SPENT,
                "today's autoRefill.maxSpendPerDay is spent; refills resume after 00:00 UTC".into(),
            );
        }
        let armed = match inner.last_refill.get(&pr.name) {
            Some(last) => Condition::new(
                REFILL_CONDITION,
                condition::TRUE,
                reason::REFILLED,
                last.clone(),
            ),
            None => Condition::new(
                REFILL_CONDITION,
                condition::TRUE,
                reason::ARMED,
                format!(
                    "signs {per_refill} authorizations with {} when fewer than {threshold} remain ({signed} signed{})",
                    wallet.address(),
                    max_total.map_or(String::new(), |m| format!(", at most {m}"))
                ),
            ),
        };
        if remaining >= threshold || per_refill == 0 {
            return Some(RefillPlan {
                condition: armed,
                sign: None,
            });
        }
        if inner.refilled_at.get(&pr.name) == Some(&pr.resource_version) {
            // Already refilled from this version; waiting for the watch to bring the next.
            return Some(RefillPlan {
                condition: armed,
                sign: None,
            });
        }
        let mut up = match upstream_spec(&self.cfg.namespace, &pr.name, spec, &pr.raw_auths) {
            Ok(u) => u,
            Err(e) => return no(reason::CANNOT_REFILL, e),
        };
        // The checks of live signing: a network and asset obol knows, under the per-request cap.
        up.config.live_signing = true;
        let resolved = match upstream::resolve(&up, &self.cfg.registry, &self.cfg.max_amount, now) {
            Ok(r) => r,
            Err(e) => return no(reason::CANNOT_REFILL, e),
        };
        if let Err(why) = resolved.live_check {
            return no(reason::CANNOT_REFILL, format!("{why}; nothing is signed"));
        }
        let network = resolved.network?;
        let count = per_refill.min(room);
        Some(RefillPlan {
            condition: armed,
            sign: Some(Refill {
                count,
                existing: pr.raw_auths.clone(),
                network,
                pay_to: resolved.pay_to,
                price: resolved.price,
                total_after: signed + count,
            }),
        })
    }

    /// Signs `refill.count` authorizations and appends them to `spec.preSignedAuths` (merge
    /// patch guarded by the resourceVersion the plan was made from).
    async fn refill(&self, w: &Work, refill: &Refill, now: u64) -> Result<(), String> {
        let wallet = self.cfg.signer.as_deref().ok_or("no wallet")?;
        let mut auths = refill.existing.clone();
        for _ in 0..refill.count {
            let evm = payment::sign_transfer(
                &refill.network,
                refill.pay_to,
                refill.price,
                wallet,
                now,
                now + REFILL_VALIDITY_SECS,
            )
            .await?;
            let id = format!("{}-{}", w.name, evm.authorization.nonce);
            auths.push(json!({"id": id, "payment": {"x402Version": 2, "payload": evm}}));
        }
        let patch = json!({
            "metadata": {"resourceVersion": w.resource_version},
            "spec": {"preSignedAuths": auths, "count": auths.len()},
        });
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..Default::default()
        };
        match self
            .api
            .patch(&w.name, &params, &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(self
                .cfg
                .client
                .error(
                    format!(
                        "appending authorizations to PurchaseRequest {}/{}",
                        self.cfg.namespace, w.name
                    ),
                    e,
                )
                .to_string()),
        }
    }
}

fn count_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn with_generation(mut c: Condition, pr: &Pr) -> Condition {
    c.observed_generation = pr.generation;
    c
}

/// The `Ready` condition for a verdict and the sidecar's status of the upstream; `None` while
/// there is nothing to say yet (probing, or not reloaded yet).
fn ready_condition(verdict: &Verdict, st: Option<&UpstreamStatus>) -> Option<Condition> {
    let (status, why, message) = match verdict {
        Verdict::Probing => return None,
        Verdict::Issue { reason, message } => (condition::FALSE, *reason, message.clone()),
        Verdict::Loaded { probe_failed } => {
            let st = st?;
            if let Some(e) = &st.error {
                (condition::FALSE, reason::INVALID_SPEC, e.clone())
            } else if st.remaining == 0 && st.in_flight == 0 {
                (
                    condition::FALSE,
                    reason::EXHAUSTED,
                    format!(
                        "all {} authorizations are spent{}; requests for {} get 502 auth_pool_exhausted",
                        st.spent,
                        if st.expired > 0 {
                            format!(" or expired ({} expired)", st.expired)
                        } else {
                            String::new()
                        },
                        st.public_model
                    ),
                )
            } else if st.budget_left_total == Some(0) {
                (
                    condition::FALSE,
                    reason::BUDGET_EXHAUSTED,
                    format!(
                        "autoRefill.maxTotal ({}) payments were made",
                        st.budget.max_total.unwrap_or_default()
                    ),
                )
            } else if st.budget_left_today.as_deref() == Some("0") {
                (
                    condition::FALSE,
                    reason::BUDGET_EXHAUSTED,
                    "today's autoRefill.maxSpendPerDay is spent; payments resume after 00:00 UTC"
                        .to_owned(),
                )
            } else if let Some(why) = probe_failed {
                (
                    condition::FALSE,
                    reason::PROBE_FAILED,
                    format!("{why}; requests are forwarded, the probe is repeated"),
                )
            } else {
                (
                    condition::TRUE,
                    reason::RECONCILED,
                    format!(
                        "serving {} from {} authorizations left",
                        st.public_model, st.remaining
                    ),
                )
            }
        }
    };
    Some(Condition::new(condition::READY, status, why, message))
}

/// Watches the namespace's PurchaseRequests until the task is aborted.
async fn watch(shared: Arc<Shared>) {
    let mut config = watcher::Config::default();
    if let Some(t) = shared.cfg.watch_timeout {
        config = config.timeout(u32::try_from(t.as_secs().max(1)).unwrap_or(u32::MAX));
    }
    let ns = shared.cfg.namespace.clone();
    let mut stream = std::pin::pin!(watcher::watcher(shared.api.clone(), config).default_backoff());
    let mut pending: Option<BTreeMap<String, Pr>> = None;
    while let Some(first) = stream.next().await {
        let mut changed = false;
        let mut next = Some(first);
        // Take every event already waiting, then ask for one reload.
        while let Some(item) = next {
            let mut inner = Inner::lock(&shared.inner);
            match item {
                Ok(event) => {
                    if inner.watch_error.take().is_some() && inner.listed {
                        tracing::info!("PurchaseRequest watch on namespace {ns} restored");
                    }
                    match event {
                        Event::Init => pending = Some(BTreeMap::new()),
                        Event::InitApply(obj) => {
                            let pr = Pr::from_object(&obj);
                            pending
                                .get_or_insert_with(BTreeMap::new)
                                .insert(pr.name.clone(), pr);
                        }
                        Event::InitDone => {
                            let prs = pending.take().unwrap_or_default();
                            if !inner.listed {
                                tracing::info!(
                                    purchase_requests = prs.len(),
                                    "listed the PurchaseRequests of namespace {ns}"
                                );
                            }
                            changed |= !inner.listed
                                || prs.len() != inner.prs.len()
                                || prs.iter().any(|(k, p)| {
                                    inner.prs.get(k).is_none_or(|old| !old.same_source(p))
                                });
                            inner.prs = prs;
                            inner.listed = true;
                        }
                        Event::Apply(obj) => {
                            let pr = Pr::from_object(&obj);
                            changed |= inner
                                .prs
                                .get(&pr.name)
                                .is_none_or(|old| !old.same_source(&pr));
                            inner.prs.insert(pr.name.clone(), pr);
                        }
                        Event::Delete(obj) => {
                            let pr = Pr::from_object(&obj);
                            changed |= inner.prs.remove(&pr.name).is_some();
                        }
                    }
                }
                Err(e) => {
                    let msg = shared.describe(&e);
                    if inner.watch_error.as_deref() != Some(msg.as_str()) {
                        if inner.listed {
                            tracing::warn!(
                                "PurchaseRequest watch failed, retrying with backoff; the upstreams stay as they are: {msg}"
                            );
                        } else {
                            tracing::error!(
                                "cannot list PurchaseRequests (their upstreams are not served and the sidecar is not ready until this works; retrying with backoff): {msg}"
                            );
                        }
                    }
                    inner.watch_error = Some(msg);
                }
            }
            drop(inner);
            next = stream.next().now_or_never().flatten();
        }
        if changed {
            shared.trigger();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_loses_its_chat_route() {
        assert_eq!(
            endpoint_base("https://s/services/q/v1/chat/completions"),
            "https://s/services/q"
        );
        assert_eq!(
            endpoint_base("https://s/q/chat/completions/"),
            "https://s/q"
        );
        assert_eq!(endpoint_base(" https://s/q/ "), "https://s/q");
        assert_eq!(
            probe_url("https://s/q/v1/chat/completions"),
            "https://s/q/v1/chat/completions"
        );
        assert_eq!(probe_url("https://s/q"), "https://s/q/v1/chat/completions");
    }

    fn status(
        remaining: usize,
        left_total: Option<u64>,
        left_today: Option<&str>,
    ) -> UpstreamStatus {
        UpstreamStatus {
            name: "q".into(),
            url: "http://seller".into(),
            remote_model: "m".into(),
            public_model: "paid/m".into(),
            network: "base".into(),
            chain: "eip155:8453".into(),
            price: "1000".into(),
            remaining,
            spent: 3,
            in_flight: 0,
            handed_out: 0,
            expired: 0,
            live_signing: false,
            budget_left_today: left_today.map(str::to_owned),
            budget_left_total: left_total,
            budget: super::super::status::BudgetStatus {
                day: "2026-11-22".into(),
                max_spend_per_day: None,
                spent_today: "3000".into(),
                payments_today: 3,
                max_total: Some(3),
                payments_total: 3,
                spent_total: "3000".into(),
            },
            error: None,
            live_signing_error: None,
        }
    }

    fn reason_of(c: Option<Condition>) -> Option<(String, String)> {
        c.map(|c| (c.status, c.reason.unwrap_or_default()))
    }

    #[test]
    fn ready_follows_the_verdict_the_pool_and_the_budget() {
        let loaded = Verdict::Loaded { probe_failed: None };
        let r = |v: &Verdict, st: Option<&UpstreamStatus>| reason_of(ready_condition(v, st));
        let want = |s: &str, why: &str| Some((s.to_owned(), why.to_owned()));
        assert_eq!(
            r(&loaded, Some(&status(2, None, None))),
            want("True", reason::RECONCILED)
        );
        assert_eq!(
            r(&loaded, Some(&status(0, None, None))),
            want("False", reason::EXHAUSTED)
        );
        assert_eq!(
            r(&loaded, Some(&status(2, Some(0), None))),
            want("False", reason::BUDGET_EXHAUSTED)
        );
        assert_eq!(
            r(&loaded, Some(&status(2, Some(4), Some("0")))),
            want("False", reason::BUDGET_EXHAUSTED)
        );
        let failed = Verdict::Loaded {
            probe_failed: Some("cannot reach the seller".into()),
        };
        let c = ready_condition(&failed, Some(&status(2, None, None))).unwrap();
        assert_eq!(c.reason.as_deref(), Some(reason::PROBE_FAILED));
        assert!(c.message.unwrap().contains("cannot reach the seller"));
        let issue = Verdict::Issue {
            reason: reason::NO_AUTHS,
            message: "`spec.preSignedAuths` is empty".into(),
        };
        assert_eq!(r(&issue, None), want("False", reason::NO_AUTHS));
        // Nothing to say while probing or before the reload that loads it.
        assert_eq!(r(&Verdict::Probing, Some(&status(2, None, None))), None);
        assert_eq!(r(&loaded, None), None);
    }

    #[test]
    fn a_purchase_request_becomes_an_upstream_with_its_caps() {
        let spec: PurchaseRequestSpec = serde_json::from_value(json!({
            "endpoint": "http://seller/v1/chat/completions", "model": "qwen", "count": 1,
            "payment": {"network": "base-sepolia", "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
                        "price": "1000", "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                        "assetDecimals": 6, "eip712Name": "USDC", "eip712Version": "2"},
            "autoRefill": {"enabled": true, "maxTotal": 5, "maxSpendPerDay": "3000"}
        }))
        .unwrap();
        let raw = vec![json!({"id": "a", "payment": {"payload": {}}})];
        let up = upstream_spec("llm", "q", &spec, &raw).unwrap();
        assert_eq!(up.name, "q");
        assert_eq!(up.origin, "purchaserequest llm/q");
        assert_eq!(up.config.url, "http://seller");
        assert_eq!(up.config.remote_model, "qwen");
        assert_eq!(up.config.price, "1000");
        assert_eq!(up.config.effective_max_total(), Some(5));
        assert_eq!(up.config.effective_max_spend_per_day(), Some("3000"));
        assert_eq!(up.auths.len(), 1);
        assert!(!up.config.live_signing);

        let mut bad = spec.clone();
        bad.auto_refill.as_mut().unwrap().max_total = Some(-1);
        assert!(
            upstream_spec("llm", "q", &bad, &raw)
                .unwrap_err()
                .contains("maxTotal")
        );
        let err = upstream_spec("llm", "q", &spec, &[json!({"value": [1]})]).unwrap_err();
        assert!(err.contains("preSignedAuths[0]"), "{err}");
    }
}
