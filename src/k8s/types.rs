//! The custom resources of group `obol.org/v1alpha1`: [`ServiceOffer`] (`so`) and
//! [`PurchaseRequest`] (`pr`), with the field names of the obol-stack CRDs so that objects
//! written for the old stack read here and vice versa.
//!
//! The Rust types are deliberately lenient (every field optional or defaulted, strings where
//! the CRD has enums): one broken object in a cluster must deserialize, so that a watcher can
//! report it on its status instead of failing the whole list. The cluster-side validation
//! (patterns, enums, ranges, required fields, defaults) lives in the CRD schema, added in
//! [`super::crd`].

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of obol's custom resources.
pub const GROUP: &str = "obol.org";
/// API version of obol's custom resources.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of obol's custom resources.
pub const API_VERSION: &str = "obol.org/v1alpha1";

/// Annotation that pauses an offer when its value is `"true"`.
pub const PAUSED_ANNOTATION: &str = "obol.org/paused";

/// Annotation that chooses how a paid request reaches the offer's upstream on a cluster:
/// `proxy` (the default: through the verifier, settled after the upstream succeeded) or
/// `forward-auth` (Traefik asks the verifier's `/verify`, then forwards).
pub const GATE_ANNOTATION: &str = "obol.org/gate";

/// How a paid request reaches an offer's upstream on a cluster (`obol.org/gate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum GateMode {
    /// The HTTPRoute's backend is the verifier, which forwards a paid request to the upstream
    /// and settles only after the upstream answered 2xx: the buyer pays for success only.
    #[default]
    Proxy,
    /// The HTTPRoute goes to the upstream through a Traefik forwardAuth Middleware: the
    /// verifier settles before it grants (or, with `verifyOnly: true`, grants without payment).
    ForwardAuth,
}

impl GateMode {
    pub fn as_str(self) -> &'static str {
        match self {
            GateMode::Proxy => "proxy",
            GateMode::ForwardAuth => "forward-auth",
        }
    }

    /// The mode an annotation value names; `None` for anything else.
    pub fn parse(s: &str) -> Option<GateMode> {
        match s {
            "proxy" => Some(GateMode::Proxy),
            "forward-auth" => Some(GateMode::ForwardAuth),
            _ => None,
        }
    }
}

/// Port of the upstream Service when an offer names none (Ollama's).
pub const DEFAULT_UPSTREAM_PORT: i64 = 11434;
/// Health path of the upstream when an offer names none.
pub const DEFAULT_HEALTH_PATH: &str = "/";
/// `payment.maxTimeoutSeconds` when an offer names none (also the CRD default).
pub const DEFAULT_MAX_TIMEOUT_SECONDS: i64 = 300;

/// Condition types on a ServiceOffer's status (those of the obol-stack controller).
pub mod condition {
    pub const MODEL_READY: &str = "ModelReady";
    pub const UPSTREAM_HEALTHY: &str = "UpstreamHealthy";
    pub const PAYMENT_GATE_READY: &str = "PaymentGateReady";
    pub const ROUTE_PUBLISHED: &str = "RoutePublished";
    pub const REGISTERED: &str = "Registered";
    pub const READY: &str = "Ready";

    /// PurchaseRequest conditions.
    pub const PROBED: &str = "Probed";
    pub const AUTHS_SIGNED: &str = "AuthsSigned";
    pub const CONFIGURED: &str = "Configured";

    pub const TRUE: &str = "True";
    pub const FALSE: &str = "False";
    pub const UNKNOWN: &str = "Unknown";
}

// ---------------------------------------------------------------------------------------------
// ServiceOffer

/// An offer to sell an HTTP/LLM service for x402 payments: where the service runs, what it
/// costs, and the URL path it is sold under.
// kube's `printcolumn(...)` entries repeat `type_ = "string"`, which clippy takes for
// duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "obol.org",
    version = "v1alpha1",
    kind = "ServiceOffer",
    plural = "serviceoffers",
    singular = "serviceoffer",
    shortname = "so",
    namespaced,
    status = "ServiceOfferStatus",
    derive = "PartialEq",
    doc = "A service sold for x402 micropayments: upstream, price, chain, payTo and URL path.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Model", type_ = "string", json_path = ".spec.model.name"),
    printcolumn(
        name = "Price",
        type_ = "string",
        json_path = ".spec.payment.price.perRequest"
    ),
    printcolumn(
        name = "Network",
        type_ = "string",
        json_path = ".spec.payment.network"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Path",
        type_ = "string",
        json_path = ".status.endpoint",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceOfferSpec {
    /// Kind of service: inference, fine-tuning, http, agent, dataset or skill. Empty means
    /// inference (obol-stack's rule).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub offer_type: Option<String>,
    /// The model served (inference offers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<OfferModel>,
    /// The in-cluster Service paid requests go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<OfferUpstream>,
    /// What a request costs and who is paid.
    #[serde(default)]
    pub payment: OfferPayment,
    /// URL path the offer is sold under (default `/services/<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Declared routes under `path` (at most 128): per-path prices and free paths. Once any is
    /// declared, the offer's other paths are refused (404). Empty: all of `path` is paid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<OfferRoute>,
    /// Free-form provenance (e.g. where the model came from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<BTreeMap<String, String>>,
    /// ERC-8004 registration of the offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<OfferRegistration>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfferModel {
    /// Model name, e.g. `qwen3:8b`.
    #[serde(default)]
    pub name: String,
    /// Runtime serving it: ollama, vllm or tgi.
    #[serde(default)]
    pub runtime: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfferUpstream {
    /// Name of the Service.
    #[serde(default)]
    pub service: String,
    /// Namespace of the Service (default: the offer's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Port of the Service (default 11434).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    /// Health check path on the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_path: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfferPayment {
    /// x402 scheme; only `exact`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Chain: a name (base, base-sepolia) or a CAIP-2 id (eip155:84532). Empty: the
    /// verifier's default chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Address receiving the payments (0x + 40 hex digits). Empty: the verifier's wallet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_to: Option<String>,
    /// How long a buyer's signed authorization may stay valid, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_timeout_seconds: Option<i64>,
    /// The token paid in (default: the chain's USDC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<OfferAsset>,
    /// The price, as decimal strings in the asset's units (e.g. `"0.001"` USDC).
    #[serde(default)]
    pub price: OfferPrice,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfferAsset {
    /// ERC-20 contract address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimals: Option<i64>,
    /// eip3009 or permit2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_method: Option<String>,
    /// EIP-712 domain name of the token (USDC: "USD Coin").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eip712_name: Option<String>,
    /// EIP-712 domain version of the token (USDC: "2").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eip712_version: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfferPrice {
    /// Price of one request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_request: Option<String>,
    /// Price of one million tokens (the verifier charges perMTok/1000 per request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_m_tok: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_hour: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_epoch: Option<String>,
}

impl OfferPrice {
    /// True when no price field is set.
    pub fn is_empty(&self) -> bool {
        self.per_request.is_none()
            && self.per_m_tok.is_none()
            && self.per_hour.is_none()
            && self.per_epoch.is_none()
    }
}

/// One declared route of an offer (the obol-stack's `spec.routes[]` entry).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfferRoute {
    /// Relative to the offer's path: `/x` is that path only, `/x/*` it and everything under
    /// it, `/*` the whole offer, `/` its root. No `.`/`..` or empty segments.
    #[serde(default)]
    pub path: String,
    /// HTTP methods of the route: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (metadata, not
    /// enforced).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// paid (default), free, or auth (SIWX wallet sign-in; not supported by obol: an offer
    /// with it is not served).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    /// This route's price instead of the offer's (the offer's asset and network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<OfferPrice>,
    /// What the route does (at most 300 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Free calls per signed-in wallet and UTC day (gate auth; not supported by obol: an
    /// offer with it is not served).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_quota: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfferRegistration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<RegistrationService>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supported_trust: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skills: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationService {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// What the cluster says about an offer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceOfferStatus {
    /// ModelReady, UpstreamHealthy, PaymentGateReady, RoutePublished, Registered, Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The path the offer is served under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_tx_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A status condition (`metav1.Condition` shape, every field but `type` optional).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// RFC 3339 time of the last change of `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Condition {
    /// A condition with a status (`"True"`, `"False"`, `"Unknown"`), reason and message; the
    /// transition time is filled in by [`upsert_condition`].
    pub fn new(type_: &str, status: &str, reason: &str, message: impl Into<String>) -> Self {
        Condition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: Some(reason.to_string()),
            message: Some(message.into()),
            last_transition_time: None,
            observed_generation: None,
        }
    }

    pub fn is_true(&self) -> bool {
        self.status == condition::TRUE
    }

    pub fn is_false(&self) -> bool {
        self.status == condition::FALSE
    }
}

/// Sets `new` in `conditions` (replacing the one of the same type). The transition time is
/// kept when the status did not change, else set to `now` (RFC 3339) unless `new` has one.
/// Returns true when anything changed.
pub fn upsert_condition(conditions: &mut Vec<Condition>, mut new: Condition, now: &str) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => {
            if old.status == new.status {
                new.last_transition_time = old.last_transition_time.clone();
            } else if new.last_transition_time.is_none() {
                new.last_transition_time = Some(now.to_string());
            }
            if *old == new {
                return false;
            }
            *old = new;
            true
        }
        None => {
            if new.last_transition_time.is_none() {
                new.last_transition_time = Some(now.to_string());
            }
            conditions.push(new);
            true
        }
    }
}

/// Finds a condition by type.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

impl ServiceOffer {
    /// The offer's name (empty if the object has none).
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    /// The offer's namespace (empty if the object has none).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or_default()
    }

    /// The namespace of the upstream Service: `upstream.namespace`, else the offer's.
    pub fn effective_namespace(&self) -> &str {
        self.spec
            .upstream
            .as_ref()
            .and_then(|u| u.namespace.as_deref())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| self.namespace())
    }

    /// The upstream port: `upstream.port`, else 11434.
    pub fn effective_port(&self) -> i64 {
        self.spec
            .upstream
            .as_ref()
            .and_then(|u| u.port)
            .filter(|p| *p > 0)
            .unwrap_or(DEFAULT_UPSTREAM_PORT)
    }

    /// The upstream health path: `upstream.healthPath`, else `/`.
    pub fn effective_health_path(&self) -> &str {
        self.spec
            .upstream
            .as_ref()
            .and_then(|u| u.health_path.as_deref())
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_HEALTH_PATH)
    }

    /// The URL path the offer is sold under: `spec.path`, else `/services/<name>`.
    pub fn effective_path(&self) -> String {
        match self.spec.path.as_deref().filter(|s| !s.is_empty()) {
            Some(p) => p.to_string(),
            None => format!("/services/{}", self.name()),
        }
    }

    /// The in-cluster URL of the upstream Service, if the offer names one:
    /// `http://<service>.<namespace>.svc.cluster.local:<port>`.
    pub fn upstream_url(&self) -> Option<String> {
        let upstream = self.spec.upstream.as_ref()?;
        if upstream.service.is_empty() {
            return None;
        }
        Some(format!(
            "http://{}.{}.svc.cluster.local:{}",
            upstream.service,
            self.effective_namespace(),
            self.effective_port()
        ))
    }

    /// `"" | "inference"` are inference offers (obol-stack's rule).
    pub fn is_inference(&self) -> bool {
        matches!(
            self.spec.offer_type.as_deref(),
            None | Some("") | Some("inference")
        )
    }

    /// The offer's `obol.org/gate` (absent: [`GateMode::Proxy`]); `Err` with the value when it
    /// names no mode.
    pub fn gate_mode(&self) -> Result<GateMode, String> {
        match self
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(GATE_ANNOTATION))
        {
            None => Ok(GateMode::Proxy),
            Some(v) => GateMode::parse(v).ok_or_else(|| v.clone()),
        }
    }

    /// Annotation `obol.org/paused` is `"true"`.
    pub fn is_paused(&self) -> bool {
        is_paused(&self.metadata)
    }

    /// A status condition by type.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        find_condition(self.status.as_ref()?.conditions.as_slice(), type_)
    }

    /// `Some(true|false)` when the `RoutePublished` condition says so, `None` when absent or
    /// Unknown. The verifier skips offers where this is `Some(false)`.
    pub fn route_published(&self) -> Option<bool> {
        let c = self.condition(condition::ROUTE_PUBLISHED)?;
        if c.is_true() {
            Some(true)
        } else if c.is_false() {
            Some(false)
        } else {
            None
        }
    }
}

/// Annotation `obol.org/paused` is `"true"` on this object.
pub fn is_paused(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(PAUSED_ANNOTATION))
        .is_some_and(|v| v == "true")
}

// ---------------------------------------------------------------------------------------------
// PurchaseRequest

/// A bounded pool of pre-signed x402 payments for one remote model, spent by the buyer sidecar.
// kube's `printcolumn(...)` entries repeat `type_ = "string"`, which clippy takes for
// duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "obol.org",
    version = "v1alpha1",
    kind = "PurchaseRequest",
    plural = "purchaserequests",
    singular = "purchaserequest",
    shortname = "pr",
    namespaced,
    status = "PurchaseRequestStatus",
    derive = "PartialEq",
    doc = "Pre-signed x402 payments for one remote model, spent by the buyer sidecar.",
    printcolumn(name = "Endpoint", type_ = "string", json_path = ".spec.endpoint"),
    printcolumn(name = "Model", type_ = "string", json_path = ".spec.model"),
    printcolumn(name = "Price", type_ = "string", json_path = ".spec.payment.price"),
    printcolumn(name = "Remaining", type_ = "integer", json_path = ".status.remaining"),
    printcolumn(name = "Spent", type_ = "integer", json_path = ".status.spent"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseRequestSpec {
    /// Full URL of the x402-gated endpoint (e.g. `<seller>/v1/chat/completions`).
    #[serde(default)]
    pub endpoint: String,
    /// Remote model id (served locally as `paid/<model>`).
    #[serde(default)]
    pub model: String,
    /// Number of pre-signed authorizations to create.
    #[serde(default)]
    pub count: i64,
    /// Pre-signed x402 payments (legacy ERC-3009 fields still read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_signed_auths: Vec<PreSignedAuth>,
    /// Refill policy and spend caps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_refill: Option<PurchaseAutoRefill>,
    /// What one request costs and who is paid.
    #[serde(default)]
    pub payment: PurchasePayment,
}

/// One pre-signed payment: `{id, payment}` (an x402 payment payload), or the legacy ERC-3009
/// fields.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreSignedAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The x402 payment payload, kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// Refill policy and spend caps of a PurchaseRequest.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseAutoRefill {
    #[serde(default)]
    pub enabled: bool,
    /// Refill when fewer than this many authorizations remain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<i64>,
    /// Authorizations to sign per refill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    /// Cap on the authorizations ever signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_total: Option<i64>,
    /// Cap on the spend per day, in micro-USDC (atomic units), as a decimal string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_spend_per_day: Option<String>,
}

/// Payment terms of a PurchaseRequest (amounts in atomic units).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurchasePayment {
    /// Chain name or CAIP-2 id.
    #[serde(default)]
    pub network: String,
    #[serde(default)]
    pub pay_to: String,
    /// Price per request in micro-USDC (atomic units).
    #[serde(default)]
    pub price: String,
    /// ERC-20 contract address.
    #[serde(default)]
    pub asset: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_symbol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_decimals: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_transfer_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eip712_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eip712_version: Option<String>,
}

/// What the buyer side reports about a PurchaseRequest.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseRequestStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// `paid/<model>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_signed: Option<i64>,
    /// Total spent in atomic units, as a decimal string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_spent: Option<String>,
    /// RFC 3339 time of the last probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probed_price: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet_balance: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_address: Option<String>,
}

impl PurchaseRequest {
    /// A status condition by type.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        find_condition(self.status.as_ref()?.conditions.as_slice(), type_)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER_YAML: &str = r#"
apiVersion: obol.org/v1alpha1
kind: ServiceOffer
metadata:
  name: my-qwen
  namespace: llm
  annotations:
    obol.org/paused: "true"
spec:
  type: inference
  model:
    name: qwen3:8b
    runtime: ollama
  upstream:
    service: ollama
    namespace: models
    port: 11434
    healthPath: /api/tags
  payment:
    scheme: exact
    network: base-sepolia
    payTo: "0x1111111111111111111111111111111111111111"
    maxTimeoutSeconds: 300
    asset:
      address: "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
      symbol: USDC
      decimals: 6
      transferMethod: eip3009
      eip712Name: USDC
      eip712Version: "2"
    price:
      perRequest: "0.001"
      perMTok: "1.5"
      perHour: "2"
      perEpoch: "3"
  path: /services/qwen
  routes:
    - path: /v1/chat/completions
      methods: [POST]
      gate: paid
      price: {perRequest: "0.002"}
      summary: chat
    - path: /v1/models
      gate: free
    - path: /reports/*
      gate: auth
      freeQuota: 3
  provenance:
    source: huggingface
  registration:
    enabled: true
    name: Qwen
    description: a model
    image: https://example.com/i.png
    services:
      - name: web
        endpoint: https://example.com
        version: "1"
    supportedTrust: [reputation]
    skills: [chat]
    domains: [example.com]
    metadata:
      k: v
status:
  conditions:
    - type: RoutePublished
      status: "False"
      reason: Paused
      message: paused by annotation
      lastTransitionTime: "2026-01-01T00:00:00Z"
  endpoint: /services/qwen
  observedGeneration: 3
"#;

    #[test]
    fn service_offer_round_trips_with_reference_field_names() {
        let offer: ServiceOffer = serde_yaml_ng::from_str(OFFER_YAML).unwrap();
        assert_eq!(offer.spec.offer_type.as_deref(), Some("inference"));
        assert_eq!(
            offer.spec.payment.price.per_m_tok.as_deref(),
            Some("1.5"),
            "perMTok"
        );
        let asset = offer.spec.payment.asset.as_ref().unwrap();
        assert_eq!(asset.eip712_name.as_deref(), Some("USDC"));
        assert_eq!(asset.transfer_method.as_deref(), Some("eip3009"));
        assert_eq!(
            offer.spec.upstream.as_ref().unwrap().health_path.as_deref(),
            Some("/api/tags")
        );
        assert_eq!(
            offer.spec.registration.as_ref().unwrap().supported_trust,
            vec!["reputation"]
        );
        let routes = &offer.spec.routes;
        assert_eq!(routes.len(), 3);
        assert_eq!(routes[0].methods, ["POST"]);
        assert_eq!(
            routes[0].price.as_ref().unwrap().per_request.as_deref(),
            Some("0.002")
        );
        assert_eq!(routes[1].gate.as_deref(), Some("free"));
        assert_eq!(routes[2].free_quota, Some(3));

        // Every field survives a write and a read, under the reference's names.
        let original: serde_json::Value = serde_yaml_ng::from_str(OFFER_YAML).unwrap();
        let written = serde_json::to_value(&offer).unwrap();
        assert_eq!(written, original);
        let again: ServiceOffer =
            serde_yaml_ng::from_str(&serde_yaml_ng::to_string(&offer).unwrap()).unwrap();
        assert_eq!(again, offer);
    }

    #[test]
    fn effective_helpers_follow_obol_stack() {
        let offer: ServiceOffer = serde_yaml_ng::from_str(OFFER_YAML).unwrap();
        assert!(offer.is_paused());
        assert!(offer.is_inference());
        assert_eq!(offer.effective_path(), "/services/qwen");
        assert_eq!(offer.effective_namespace(), "models");
        assert_eq!(
            offer.upstream_url().as_deref(),
            Some("http://ollama.models.svc.cluster.local:11434")
        );
        assert_eq!(offer.route_published(), Some(false));

        let mut bare = ServiceOffer::new("demo", ServiceOfferSpec::default());
        bare.metadata.namespace = Some("shop".into());
        bare.spec.upstream = Some(OfferUpstream {
            service: "web".into(),
            ..Default::default()
        });
        assert_eq!(bare.effective_path(), "/services/demo");
        assert_eq!(bare.effective_namespace(), "shop");
        assert_eq!(bare.effective_port(), 11434);
        assert_eq!(bare.effective_health_path(), "/");
        assert!(!bare.is_paused());
        assert_eq!(bare.route_published(), None);
    }

    #[test]
    fn a_broken_offer_still_deserializes() {
        // No payment, wrong-looking values: the verifier must be able to read it and report it.
        let offer: ServiceOffer = serde_yaml_ng::from_str(
            "apiVersion: obol.org/v1alpha1\nkind: ServiceOffer\nmetadata: {name: x}\nspec: {path: nope}\n",
        )
        .unwrap();
        assert!(offer.spec.payment.price.is_empty());
        assert_eq!(offer.spec.path.as_deref(), Some("nope"));
    }

    #[test]
    fn purchase_request_round_trips() {
        let yaml = r#"
apiVersion: obol.org/v1alpha1
kind: PurchaseRequest
metadata: {name: buy-qwen, namespace: llm}
spec:
  endpoint: https://seller.example/services/qwen/v1/chat/completions
  model: qwen3:8b
  count: 5
  preSignedAuths:
    - id: a1
      payment: {x402Version: 2, payload: {signature: "0xabc"}}
    - signature: "0xdef"
      from: "0x1111111111111111111111111111111111111111"
      to: "0x2222222222222222222222222222222222222222"
      value: "1000"
      validAfter: "0"
      validBefore: "1999999999"
      nonce: "0x01"
  autoRefill:
    enabled: true
    threshold: 2
    count: 5
    maxTotal: 100
    maxSpendPerDay: "5000000"
  payment:
    network: base-sepolia
    payTo: "0x2222222222222222222222222222222222222222"
    price: "1000"
    asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
    assetSymbol: USDC
    assetDecimals: 6
    assetTransferMethod: eip3009
    eip712Name: USDC
    eip712Version: "2"
status:
  observedGeneration: 1
  publicModel: paid/qwen3:8b
  remaining: 4
  spent: 1
  totalSigned: 5
  totalSpent: "1000"
  probedAt: "2026-01-01T00:00:00Z"
  probedPrice: "1000"
  walletBalance: "9000000"
  signerAddress: "0x1111111111111111111111111111111111111111"
"#;
        let pr: PurchaseRequest = serde_yaml_ng::from_str(yaml).unwrap();
        let refill = pr.spec.auto_refill.as_ref().unwrap();
        assert_eq!(refill.max_total, Some(100));
        assert_eq!(refill.max_spend_per_day.as_deref(), Some("5000000"));
        assert_eq!(pr.spec.pre_signed_auths.len(), 2);
        let original: serde_json::Value = serde_yaml_ng::from_str(yaml).unwrap();
        assert_eq!(serde_json::to_value(&pr).unwrap(), original);
    }

    #[test]
    fn upsert_condition_keeps_transition_time_when_status_is_unchanged() {
        let mut cs = vec![];
        let c = Condition::new(condition::PAYMENT_GATE_READY, "False", "BadPrice", "bad");
        assert!(upsert_condition(&mut cs, c.clone(), "t1"));
        assert_eq!(cs[0].last_transition_time.as_deref(), Some("t1"));
        assert!(
            !upsert_condition(&mut cs, c, "t2"),
            "same condition: no change"
        );
        let c2 = Condition::new(condition::PAYMENT_GATE_READY, "False", "BadPath", "path");
        assert!(upsert_condition(&mut cs, c2, "t3"));
        assert_eq!(cs[0].last_transition_time.as_deref(), Some("t1"));
        assert_eq!(cs[0].reason.as_deref(), Some("BadPath"));
        let c3 = Condition::new(condition::PAYMENT_GATE_READY, "True", "Ok", "");
        assert!(upsert_condition(&mut cs, c3, "t4"));
        assert_eq!(cs[0].last_transition_time.as_deref(), Some("t4"));
        assert_eq!(cs.len(), 1);
    }
}
