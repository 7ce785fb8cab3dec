//! `obol buy request`: the pieces that turn a seller's price into a `PurchaseRequest` holding a
//! bounded pool of pre-signed authorizations, in the order the command runs them:
//!
//! 1. [`chat_endpoint`] + [`probe_offer`]: POST a minimal chat body for the model to the seller
//!    and read its 402 (as the obol-stack controller and `buy.py buy` do); the
//!    [`SpendingPolicy`] picks the option (known network, the registry's asset, price under the
//!    per-request cap);
//! 2. [`token_balance`]: `balanceOf(payer)` on the network's RPC, so the pool is covered;
//! 3. [`Caps::to_auto_refill`]: the spend caps the sidecar enforces, in atomic units;
//! 4. [`presign`]: N EIP-3009 authorizations (`validAfter = 0`, random nonces, `validBefore` =
//!    now + TTL), each as `{id: <nonce>, payment: {x402Version: 2, payload}}` (the form the
//!    sidecar reads; see [`presign`] for why `accepted` is left out);
//! 5. [`merge_pool`] + [`purchase_request`]: the object to server-side apply; a top-up keeps the
//!    existing auths that are still valid and adds the new ones;
//! 6. [`readiness`]: what the sidecar reported for the applied generation.
//!
//! Nothing here prints or logs a signature or a key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, U256};
use futures_util::{StreamExt as _, TryStreamExt as _};
use serde::Serialize;

use super::pay::{self, PayError, PayRequest, Probe};
use super::policy::{Choice, Refusal, SpendingPolicy};
use super::sidecar::config::PreSignedAuth as SidecarAuth;
use super::sidecar::pool::EXPIRY_MARGIN_SECS;
use super::wallet::{Wallet, WalletError};
use crate::k8s::crd::MAX_PURCHASE_COUNT;
use crate::k8s::types::{
    PreSignedAuth, PurchaseAutoRefill, PurchasePayment, PurchaseRequest, PurchaseRequestSpec,
    PurchaseRequestStatus, condition,
};
use crate::x402::amount::{self, Rounding};
use crate::x402::eip3009::{self, TransferWithAuthorization};
use crate::x402::networks::{Network, Registry};
use crate::x402::wire::{ExactEvmPayload, PaymentRequired};

/// The path appended to an endpoint given as a bare base URL.
pub const CHAT_PATH: &str = "/v1/chat/completions";
/// Default validity of a pre-signed authorization: 30 days (as `buy.py`).
pub const DEFAULT_AUTH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Shortest validity accepted for a pre-signed authorization (as `buy.py`).
pub const MIN_AUTH_TTL: Duration = Duration::from_secs(600);
/// Time limit of the probe (the obol-stack controller's).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(15);
/// How many signatures are asked of a remote signer at once.
pub const REMOTE_SIGNING_CONCURRENCY: usize = 8;
/// The transfer method obol signs (`assetTransferMethod`).
pub const TRANSFER_METHOD: &str = "eip3009";

/// Why a purchase cannot go ahead. Nothing was signed or applied when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum PurchaseError {
    #[error("--endpoint {given:?}: {detail}")]
    BadEndpoint { given: String, detail: String },
    #[error(transparent)]
    Probe(#[from] PayError),
    #[error(
        "the seller at {url} answered HTTP {status} without asking for payment: it is not x402-gated"
    )]
    NotPaymentGated { url: String, status: u16 },
    #[error("{}", .0.message)]
    Policy(Refusal),
    #[error("cannot check the balance on {network}: no RPC endpoint is known for it")]
    NoRpc { network: String },
    #[error("cannot read the {symbol} balance of {owner} on {network} from {rpc}: {detail}")]
    Rpc {
        network: String,
        rpc: String,
        symbol: String,
        owner: String,
        detail: String,
    },
    #[error(
        "the wallet {} holds {} {} on {}, but the pool needs {} {} ({} × {} {})",
        .0.owner, .0.have, .0.symbol, .0.network, .0.need, .0.symbol, .0.count, .0.price, .0.symbol
    )]
    InsufficientBalance(Box<Shortfall>),
    #[error("--max-spend-per-day {given:?}: {detail}")]
    BadDailyCap { given: String, detail: String },
    #[error(
        "--max-total {max_total} is below --count {count}: the sidecar could never spend the whole pool"
    )]
    MaxTotalBelowCount { max_total: u64, count: u64 },
    #[error(
        "the PurchaseRequest {name} pays {existing}; the seller now asks {new}: refusing to top up a pool with other payment terms"
    )]
    TermsChanged {
        name: String,
        existing: String,
        new: String,
    },
    #[error(
        "the pool would hold {kept} kept + {new} new = {total} authorizations, more than the {max} a PurchaseRequest allows"
    )]
    PoolTooLarge {
        kept: usize,
        new: u64,
        total: usize,
        max: i64,
    },
    #[error(transparent)]
    Wallet(#[from] WalletError),
}

/// A balance that does not cover the pool (amounts as decimals of the asset).
#[derive(Debug)]
pub struct Shortfall {
    pub owner: String,
    pub network: String,
    pub symbol: String,
    pub have: String,
    pub need: String,
    pub count: u64,
    pub price: String,
}

impl PurchaseError {
    /// What the user can do about it.
    pub fn hint(&self) -> String {
        match self {
            PurchaseError::BadEndpoint { .. } => {
                "give the seller's URL, e.g. https://seller.example/services/qwen (the chat path \
                 /v1/chat/completions is added to a URL without a path); nothing was signed"
                    .into()
            }
            PurchaseError::Probe(e) => e.hint().unwrap_or_else(|| "nothing was signed".to_owned()),
            PurchaseError::NotPaymentGated { .. } => {
                "check --endpoint: it must answer 402 Payment Required for --model; nothing was \
                 signed"
                    .into()
            }
            PurchaseError::Policy(r) => r.hint.clone(),
            PurchaseError::NoRpc { network } => format!(
                "add `rpc: https://...` to the entry for {network} in the networks file \
                 (OBOL_NETWORKS or $XDG_CONFIG_HOME/obol/networks.yaml), or skip the balance \
                 check with --force; nothing was signed"
            ),
            PurchaseError::Rpc { .. } => {
                "check the `rpc:` of that network in the networks file, or skip the balance check \
                 with --force; nothing was signed"
                    .into()
            }
            PurchaseError::InsufficientBalance(short) => {
                let Shortfall {
                    owner,
                    symbol,
                    network,
                    ..
                } = short.as_ref();
                format!(
                    "fund {owner} with {symbol} on {network}, lower --count, or sign anyway \
                     with --force (the sidecar's payments then fail once the balance runs out); \
                     nothing was signed"
                )
            }
            PurchaseError::BadDailyCap { .. } => {
                "give the daily cap in USDC, e.g. --max-spend-per-day 0.5; nothing was signed"
                    .into()
            }
            PurchaseError::MaxTotalBelowCount { count, .. } => {
                format!(
                    "raise --max-total to at least {count}, or lower --count; nothing was signed"
                )
            }
            PurchaseError::TermsChanged { name, .. } => format!(
                "pass --replace to drop the old authorizations and start a new pool for \
                 {name} on the new terms, or buy under another NAME; nothing was signed"
            ),
            PurchaseError::PoolTooLarge { .. } => {
                "lower --count, or pass --replace to start a fresh pool (the old authorizations \
                 are dropped); nothing was signed"
                    .into()
            }
            PurchaseError::Wallet(_) => {
                "see `obol wallet --help` for where obol looks for a key".into()
            }
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The chat-completions URL of `endpoint`: as given when it has a path, else with
/// [`CHAT_PATH`] appended (`https://seller` → `https://seller/v1/chat/completions`).
pub fn chat_endpoint(endpoint: &str) -> Result<reqwest::Url, PurchaseError> {
    let bad = |detail: &str| PurchaseError::BadEndpoint {
        given: endpoint.chars().take(200).collect(),
        detail: detail.to_owned(),
    };
    let mut url = reqwest::Url::parse(endpoint.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("use an http:// or https:// URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("the URL has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("the URL must not hold credentials"));
    }
    if url.path().is_empty() || url.path() == "/" {
        url.set_path(CHAT_PATH);
    }
    Ok(url)
}

/// The body of the probe: the smallest chat request for `model`.
pub fn probe_body(model: &str) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "probe"}],
        "max_tokens": 1,
    })
}

/// What the seller asked for and the option the spending policy picked.
#[derive(Debug, Clone)]
pub struct Offer {
    pub required: PaymentRequired,
    pub choice: Choice,
    /// Where the probe ended up (after redirects).
    pub url: String,
}

impl Offer {
    /// The price per request as a decimal (`0.01`).
    pub fn price_decimal(&self) -> String {
        self.choice.amount_decimal()
    }

    /// The PurchaseRequest's `spec.payment` for this offer (network as its CAIP-2 id, amounts
    /// atomic, the asset and its EIP-712 domain from the registry).
    pub fn payment(&self) -> PurchasePayment {
        let c = &self.choice;
        PurchasePayment {
            network: c.network.caip2.clone(),
            pay_to: c.pay_to.to_string(),
            price: c.amount.to_string(),
            asset: c.asset.address.to_string(),
            asset_symbol: Some(c.asset.symbol.clone()),
            asset_decimals: Some(i64::from(c.asset.decimals)),
            asset_transfer_method: Some(TRANSFER_METHOD.to_owned()),
            eip712_name: Some(c.asset.eip712_name.clone()),
            eip712_version: Some(c.asset.eip712_version.clone()),
        }
    }

    /// `count × price` in atomic units.
    pub fn cost(&self, count: u64) -> U256 {
        self.choice.amount.saturating_mul(U256::from(count))
    }
}

/// POSTs the probe body for `model` to `url` and picks an option of the 402 under `policy`.
pub async fn probe_offer(
    url: &reqwest::Url,
    model: &str,
    policy: &SpendingPolicy,
    registry: &Registry,
) -> Result<Offer, PurchaseError> {
    let request = PayRequest {
        url: url.to_string(),
        method: reqwest::Method::POST,
        headers: vec![(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        )],
        body: Some(bytes::Bytes::from(probe_body(model).to_string())),
        timeout: PROBE_TIMEOUT,
        retries: 0,
    };
    match pay::probe(&request).await? {
        Probe::Free(response) => Err(PurchaseError::NotPaymentGated {
            url: url.to_string(),
            status: response.status,
        }),
        Probe::PaymentRequired { required, url } => {
            let choice = policy
                .choose(&required, registry)
                .map_err(PurchaseError::Policy)?;
            Ok(Offer {
                required,
                choice,
                url,
            })
        }
    }
}

/// `balanceOf(owner)` of `asset` on `network`, read with `eth_call` from the network's `rpc`.
pub async fn token_balance(
    network: &Network,
    asset: Address,
    symbol: &str,
    owner: Address,
) -> Result<U256, PurchaseError> {
    let rpc = network.rpc.as_deref().ok_or_else(|| PurchaseError::NoRpc {
        network: network.name.clone(),
    })?;
    let fail = |detail: String| PurchaseError::Rpc {
        network: network.name.clone(),
        rpc: rpc.to_owned(),
        symbol: symbol.to_owned(),
        owner: owner.to_string(),
        detail,
    };
    let result = super::rpc::eth_call(rpc, asset, super::rpc::balance_of_call(owner))
        .await
        .map_err(fail)?;
    super::rpc::parse_uint_result(&result).ok_or_else(|| {
        fail(format!(
            "`{}` is not a uint256 (is {asset} a token on this chain?)",
            result.chars().take(80).collect::<String>()
        ))
    })
}

/// Checks that `balance` covers `count` authorizations of the offer's price.
pub fn check_balance(
    offer: &Offer,
    owner: Address,
    balance: U256,
    count: u64,
) -> Result<(), PurchaseError> {
    let need = offer.cost(count);
    if balance >= need {
        return Ok(());
    }
    let c = &offer.choice;
    Err(PurchaseError::InsufficientBalance(Box::new(Shortfall {
        owner: owner.to_string(),
        network: c.network.name.clone(),
        symbol: c.asset.symbol.clone(),
        have: amount::format_atomic(balance, c.asset.decimals),
        need: amount::format_atomic(need, c.asset.decimals),
        count,
        price: c.amount_decimal(),
    })))
}

/// The refill policy and spend caps asked for on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caps {
    pub auto_refill: bool,
    pub refill_threshold: Option<u64>,
    pub refill_count: Option<u64>,
    /// Cap on the number of payments, ever.
    pub max_total: Option<u64>,
    /// Daily cap as a decimal in the asset's units (`"0.5"`).
    pub max_spend_per_day: Option<String>,
}

impl Caps {
    /// Whether any refill or cap flag was given.
    pub fn any(&self) -> bool {
        self.auto_refill
            || self.refill_threshold.is_some()
            || self.refill_count.is_some()
            || self.max_total.is_some()
            || self.max_spend_per_day.is_some()
    }

    /// Checks the caps against `count` new authorizations of the offer's price and returns the
    /// CRD's `autoRefill` (daily cap converted exactly to atomic units). With `--auto-refill`,
    /// the threshold defaults to `count / 5` and the refill count to `count` (as `buy.py`).
    pub fn to_auto_refill(
        &self,
        offer: &Offer,
        count: u64,
    ) -> Result<PurchaseAutoRefill, PurchaseError> {
        if let Some(max_total) = self.max_total
            && max_total < count
        {
            return Err(PurchaseError::MaxTotalBelowCount { max_total, count });
        }
        let decimals = offer.choice.asset.decimals;
        let max_spend_per_day = match &self.max_spend_per_day {
            None => None,
            Some(given) => {
                let bad = |detail: String| PurchaseError::BadDailyCap {
                    given: given.chars().take(80).collect(),
                    detail,
                };
                let atomic = amount::parse_decimal(given, decimals, Rounding::Exact)
                    .map_err(|e| bad(e.to_string()))?;
                if atomic < offer.choice.amount {
                    return Err(bad(format!(
                        "it is below the price of one request ({} {}): nothing could be spent",
                        offer.price_decimal(),
                        offer.choice.asset.symbol
                    )));
                }
                Some(atomic.to_string())
            }
        };
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        Ok(PurchaseAutoRefill {
            enabled: self.auto_refill,
            threshold: self
                .auto_refill
                .then(|| self.refill_threshold.unwrap_or(count / 5))
                .map(as_i64),
            count: self
                .auto_refill
                .then(|| self.refill_count.unwrap_or(count).max(1))
                .map(as_i64),
            max_total: self.max_total.map(as_i64),
            max_spend_per_day,
        })
    }
}

/// Signs `count` EIP-3009 authorizations of the offer's price from the wallet to the seller,
/// valid from 0 until `valid_before`, each with a fresh random nonce, in the domain of the
/// asset the registry lists. Each is `{id: <nonce>, payment: {x402Version: 2, payload:
/// {signature, authorization}}}`: an x402 v2 payment payload without the echo of the
/// requirement (`accepted`, `resource`), which the sidecar takes from each live 402.
/// `progress` is called with the number signed so far.
pub async fn presign(
    wallet: &Wallet,
    offer: &Offer,
    count: u64,
    valid_before: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<PreSignedAuth>, PurchaseError> {
    let c = &offer.choice;
    let domain = eip3009::domain(
        &c.asset.eip712_name,
        &c.asset.eip712_version,
        c.network.chain_id,
        c.asset.address,
    );
    let from = wallet.address();
    let done = std::sync::atomic::AtomicU64::new(0);
    let sign_one = |_| async {
        let auth = TransferWithAuthorization {
            from,
            to: c.pay_to,
            value: c.amount,
            validAfter: U256::ZERO,
            validBefore: U256::from(valid_before),
            nonce: eip3009::random_nonce(),
        };
        let signature = wallet.sign_transfer(&auth, &domain).await?;
        progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
        Ok::<_, PurchaseError>(PreSignedAuth {
            id: Some(auth.nonce.to_string()),
            payment: Some(stored_payment(eip3009::to_wire(&auth, &signature))),
            ..PreSignedAuth::default()
        })
    };
    // A remote signer is asked several at a time; a local key signs in turn either way.
    let auths: Vec<PreSignedAuth> = futures_util::stream::iter(0..count)
        .map(sign_one)
        .buffered(REMOTE_SIGNING_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(auths)
}

/// The stored form of one authorization: an x402 v2 payment payload without `accepted` and
/// `resource`. Both sidecars (this one and the obol-stack `x402-buyer`) answer each 402 with the
/// requirement it asks for and take only `payload` from here; leaving out the echo of the
/// requirement (~370 bytes an auth) keeps a pool of 2500 under the API server's 1.5 MiB object
/// limit.
fn stored_payment(evm: ExactEvmPayload) -> serde_json::Map<String, serde_json::Value> {
    let mut payment = serde_json::Map::new();
    payment.insert("x402Version".into(), 2.into());
    payment.insert(
        "payload".into(),
        serde_json::to_value(evm).unwrap_or(serde_json::Value::Null),
    );
    payment
}

/// The sidecar's reading of a PurchaseRequest auth (the same parser it loads them with).
fn as_sidecar_auth(auth: &PreSignedAuth) -> Option<SidecarAuth> {
    serde_json::to_value(auth)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
}

/// `validBefore` of an auth as the sidecar reads it, `None` when it cannot read it.
pub fn auth_valid_before(auth: &PreSignedAuth) -> Option<u64> {
    let evm = as_sidecar_auth(auth)?.evm_payload().ok()?;
    evm.authorization.valid_before.parse().ok()
}

/// The payer (`from`) of an auth as the sidecar reads it.
pub fn auth_payer(auth: &PreSignedAuth) -> Option<Address> {
    let evm = as_sidecar_auth(auth)?.evm_payload().ok()?;
    evm.authorization.from.parse().ok()
}

/// Whether two payment terms are the same payTo, asset, network and price.
pub fn same_terms(a: &PurchasePayment, b: &PurchasePayment, registry: &Registry) -> bool {
    let addr = |s: &str| s.trim().parse::<Address>().ok();
    let atomic = |s: &str| amount::parse_atomic(s.trim()).ok();
    let chain = |s: &str| {
        registry
            .caip2_of(s)
            .unwrap_or_else(|| s.trim().to_ascii_lowercase())
    };
    addr(&a.pay_to).is_some()
        && addr(&a.pay_to) == addr(&b.pay_to)
        && addr(&a.asset).is_some()
        && addr(&a.asset) == addr(&b.asset)
        && chain(&a.network) == chain(&b.network)
        && atomic(&a.price).is_some()
        && atomic(&a.price) == atomic(&b.price)
}

/// One line describing payment terms, for messages:
/// `10000 (atomic) of 0x… to 0x… on eip155:…`.
pub fn describe_terms(p: &PurchasePayment) -> String {
    format!(
        "{} (atomic) of {} to {} on {}",
        p.price, p.asset, p.pay_to, p.network
    )
}

/// The pool after a top-up: the existing auths still valid `EXPIRY_MARGIN_SECS` from `now`
/// (those the sidecar already spent stay in the list; it skips them by its state file), then
/// the new ones. Returns the pool and how many were kept.
pub fn merge_pool(
    existing: &[PreSignedAuth],
    new: Vec<PreSignedAuth>,
    now: u64,
) -> (Vec<PreSignedAuth>, usize) {
    let mut pool: Vec<PreSignedAuth> = existing
        .iter()
        .filter(|a| auth_valid_before(a).is_some_and(|vb| vb > now + EXPIRY_MARGIN_SECS))
        .cloned()
        .collect();
    let kept = pool.len();
    pool.extend(new);
    (pool, kept)
}

/// How many existing auths a top-up keeps (see [`merge_pool`]), checked against the CRD's limit
/// together with `new` more.
pub fn kept_count(existing: &[PreSignedAuth], new: u64, now: u64) -> Result<usize, PurchaseError> {
    let kept = existing
        .iter()
        .filter(|a| auth_valid_before(a).is_some_and(|vb| vb > now + EXPIRY_MARGIN_SECS))
        .count();
    let total = kept + usize::try_from(new).unwrap_or(usize::MAX);
    if i64::try_from(total).unwrap_or(i64::MAX) > MAX_PURCHASE_COUNT {
        return Err(PurchaseError::PoolTooLarge {
            kept,
            new,
            total,
            max: MAX_PURCHASE_COUNT,
        });
    }
    Ok(kept)
}

/// The PurchaseRequest to apply. `spec.count` is the size of the pool written
/// (`preSignedAuths.len()`, kept + new), as `buy.py` writes it.
pub fn purchase_request(
    name: &str,
    namespace: &str,
    endpoint: &str,
    model: &str,
    payment: PurchasePayment,
    pool: Vec<PreSignedAuth>,
    auto_refill: Option<PurchaseAutoRefill>,
) -> PurchaseRequest {
    let count = i64::try_from(pool.len()).unwrap_or(i64::MAX);
    let mut pr = PurchaseRequest::new(
        name,
        PurchaseRequestSpec {
            endpoint: endpoint.to_owned(),
            model: model.to_owned(),
            count,
            pre_signed_auths: pool,
            auto_refill,
            payment,
        },
    );
    pr.metadata.namespace = Some(namespace.to_owned());
    pr
}

/// `paid/<model>`: the name the sidecar serves a pool under.
pub fn public_model(model: &str) -> String {
    format!("paid/{model}")
}

/// What the sidecar has reported about a PurchaseRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// No status for the current generation yet (`observed`: the generation it last wrote).
    Pending { observed: Option<i64> },
    /// `Ready=True` for the current generation.
    Ready,
    /// `Ready=False` (or `Unknown`) for the current generation.
    NotReady { reason: String, message: String },
}

/// The state of `pr` as far as waiting for it goes.
pub fn readiness(pr: &PurchaseRequest) -> Readiness {
    let generation = pr.metadata.generation;
    let observed = pr.status.as_ref().and_then(|s| s.observed_generation);
    if generation.is_none() || observed != generation {
        return Readiness::Pending { observed };
    }
    match pr.condition(condition::READY) {
        Some(c) if c.is_true() => Readiness::Ready,
        Some(c) => Readiness::NotReady {
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
        },
        None => Readiness::Pending { observed },
    }
}

/// One PurchaseRequest as `obol buy list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolView {
    pub name: String,
    pub namespace: String,
    pub model: String,
    pub public_model: String,
    pub endpoint: String,
    pub network: String,
    /// Price per request as a decimal of the asset (`0.01`).
    pub price: String,
    pub price_atomic: String,
    pub symbol: String,
    /// Authorizations in the spec (`spec.count`).
    pub count: i64,
    pub remaining: Option<i64>,
    pub spent: Option<i64>,
    /// Total spent as a decimal of the asset.
    pub total_spent: Option<String>,
    pub total_spent_atomic: Option<String>,
    pub auto_refill: bool,
    pub max_total: Option<i64>,
    /// Daily cap as a decimal of the asset.
    pub max_spend_per_day: Option<String>,
    pub max_spend_per_day_atomic: Option<String>,
    /// `true`/`false` from the `Ready` condition, `None` before the sidecar reported.
    pub ready: Option<bool>,
    pub reason: Option<String>,
    pub message: Option<String>,
    /// Whether the status is for the current spec (`observedGeneration == generation`).
    pub up_to_date: bool,
}

impl PoolView {
    /// The view of `pr`; amounts in decimals of `spec.payment.assetDecimals` (default 6).
    pub fn of(pr: &PurchaseRequest) -> PoolView {
        let spec = &pr.spec;
        let status = pr.status.clone().unwrap_or_default();
        let decimals = spec
            .payment
            .asset_decimals
            .and_then(|d| u8::try_from(d).ok())
            .unwrap_or(6);
        let decimal = |atomic: &str| -> String {
            match amount::parse_atomic(atomic.trim()) {
                Ok(v) => amount::format_atomic(v, decimals),
                Err(_) => atomic.to_owned(),
            }
        };
        let refill = spec.auto_refill.clone().unwrap_or_default();
        let ready = pr.condition(condition::READY);
        let PurchaseRequestStatus {
            remaining,
            spent,
            total_spent,
            public_model: reported_model,
            observed_generation,
            ..
        } = status;
        PoolView {
            name: pr.metadata.name.clone().unwrap_or_default(),
            namespace: pr.metadata.namespace.clone().unwrap_or_default(),
            model: spec.model.clone(),
            public_model: reported_model.unwrap_or_else(|| public_model(&spec.model)),
            endpoint: spec.endpoint.clone(),
            network: spec.payment.network.clone(),
            price: decimal(&spec.payment.price),
            price_atomic: spec.payment.price.clone(),
            symbol: spec
                .payment
                .asset_symbol
                .clone()
                .unwrap_or_else(|| "USDC".into()),
            count: spec.count,
            remaining,
            spent,
            total_spent: total_spent.as_deref().map(decimal),
            total_spent_atomic: total_spent,
            auto_refill: refill.enabled,
            max_total: refill.max_total,
            max_spend_per_day: refill.max_spend_per_day.as_deref().map(decimal),
            max_spend_per_day_atomic: refill.max_spend_per_day,
            ready: ready.map(|c| c.is_true()),
            reason: ready
                .and_then(|c| c.reason.clone())
                .filter(|r| !r.is_empty()),
            message: ready
                .and_then(|c| c.message.clone())
                .filter(|m| !m.is_empty()),
            up_to_date: observed_generation.is_some()
                && observed_generation == pr.metadata.generation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::types::Condition;
    use crate::x402::wire::parse_402;
    use alloy_signer_local::PrivateKeySigner;

    const KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
    const PAY_TO: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
    const BASE_SEPOLIA_USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";

    fn offer(price: u64) -> Offer {
        let body = serde_json::json!({
            "x402Version": 2,
            "resource": {"url": "https://seller.example/v1/chat/completions"},
            "accepts": [{
                "scheme": "exact", "network": "eip155:84532", "amount": price.to_string(),
                "asset": BASE_SEPOLIA_USDC, "payTo": PAY_TO, "maxTimeoutSeconds": 300,
                "extra": {"name": "USDC", "version": "2"}
            }]
        });
        let required = parse_402(None, body.to_string().as_bytes()).unwrap();
        let choice = SpendingPolicy::default()
            .choose(&required, &Registry::builtin())
            .unwrap();
        Offer {
            required,
            choice,
            url: "https://seller.example/v1/chat/completions".into(),
        }
    }

    fn wallet() -> Wallet {
        Wallet::Local(KEY.parse::<PrivateKeySigner>().unwrap())
    }

    #[test]
    fn endpoint_gets_the_chat_path_only_without_a_path() {
        let e = |s: &str| chat_endpoint(s).map(|u| u.to_string());
        assert_eq!(
            e("https://seller.example").unwrap(),
            "https://seller.example/v1/chat/completions"
        );
        assert_eq!(
            e("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080/v1/chat/completions"
        );
        assert_eq!(
            e("https://seller.example/services/qwen/v1/chat/completions").unwrap(),
            "https://seller.example/services/qwen/v1/chat/completions"
        );
        assert!(e("ftp://seller.example").is_err());
        assert!(e("not a url").is_err());
        assert!(e("https://user:pw@seller.example").is_err());
    }

    #[test]
    fn balance_must_cover_the_pool() {
        let o = offer(10_000);
        let owner = wallet().address();
        assert!(check_balance(&o, owner, U256::from(50_000u64), 5).is_ok());
        let err = check_balance(&o, owner, U256::from(49_999u64), 5).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the wallet {owner} holds 0.049999 USDC on base-sepolia, but the pool needs 0.05 USDC (5 × 0.01 USDC)"
            )
        );
        assert!(err.hint().contains("--force"));
    }

    #[test]
    fn caps_convert_exactly_and_check_before_signing() {
        let o = offer(10_000);
        let caps = Caps {
            max_total: Some(10),
            max_spend_per_day: Some("0.05".into()),
            ..Caps::default()
        };
        let refill = caps.to_auto_refill(&o, 10).unwrap();
        assert_eq!(refill.max_spend_per_day.as_deref(), Some("50000"));
        assert_eq!(refill.max_total, Some(10));
        assert!(!refill.enabled);
        assert_eq!((refill.threshold, refill.count), (None, None));

        let err = caps.to_auto_refill(&o, 11).unwrap_err();
        assert!(matches!(
            err,
            PurchaseError::MaxTotalBelowCount {
                max_total: 10,
                count: 11
            }
        ));
        for bad in ["0.0000001", "-1", "1e3", "0.001"] {
            let caps = Caps {
                max_spend_per_day: Some(bad.into()),
                ..Caps::default()
            };
            assert!(
                matches!(
                    caps.to_auto_refill(&o, 1),
                    Err(PurchaseError::BadDailyCap { .. })
                ),
                "{bad}"
            );
        }
        let refill = Caps {
            auto_refill: true,
            ..Caps::default()
        }
        .to_auto_refill(&o, 50)
        .unwrap();
        assert_eq!((refill.threshold, refill.count), (Some(10), Some(50)));
    }

    #[tokio::test]
    async fn presigned_auths_are_read_by_the_sidecar_and_recover_to_the_payer() {
        let o = offer(10_000);
        let w = wallet();
        let now = unix_now();
        let seen = std::sync::atomic::AtomicU64::new(0);
        let auths = presign(&w, &o, 3, now + 3600, &|n| {
            seen.store(n, std::sync::atomic::Ordering::Relaxed)
        })
        .await
        .unwrap();
        assert_eq!(seen.into_inner(), 3);
        assert_eq!(auths.len(), 3);
        let domain = eip3009::domain("USDC", "2", 84532, BASE_SEPOLIA_USDC.parse().unwrap());
        let mut nonces = std::collections::HashSet::new();
        for a in &auths {
            let payment = a.payment.as_ref().unwrap();
            assert_eq!(payment["x402Version"], 2);
            let sidecar = as_sidecar_auth(a).unwrap();
            assert_eq!(sidecar.consume_key(), a.id);
            let evm = sidecar.evm_payload().unwrap();
            let auth = eip3009::parse_authorization(&evm.authorization).unwrap();
            assert_eq!(auth.validAfter, U256::ZERO);
            assert_eq!(auth.validBefore, U256::from(now + 3600));
            assert_eq!(auth.value, U256::from(10_000u64));
            assert_eq!(auth.to, PAY_TO.parse::<Address>().unwrap());
            let sig = eip3009::parse_signature_hex(&evm.signature).unwrap();
            let signer = eip3009::recover(&sig, eip3009::signing_hash(&auth, &domain)).unwrap();
            assert_eq!(signer, w.address());
            assert_eq!(auth_payer(a), Some(w.address()));
            assert!(nonces.insert(auth.nonce));
            assert!(!format!("{a:?}").is_empty());
        }
    }

    #[tokio::test]
    async fn a_top_up_keeps_valid_auths_and_drops_expired_ones() {
        let o = offer(10_000);
        let w = wallet();
        let now = unix_now();
        let old = presign(&w, &o, 2, now + 3600, &|_| {}).await.unwrap();
        let expiring = presign(&w, &o, 1, now + 5, &|_| {}).await.unwrap();
        let new = presign(&w, &o, 3, now + 7200, &|_| {}).await.unwrap();
        let existing: Vec<_> = old.iter().chain(&expiring).cloned().collect();
        assert_eq!(kept_count(&existing, 3, now).unwrap(), 2);
        let (pool, kept) = merge_pool(&existing, new.clone(), now);
        assert_eq!(kept, 2);
        assert_eq!(pool.len(), 5);
        assert_eq!(&pool[..2], &old[..]);
        assert_eq!(&pool[2..], &new[..]);
        let err = kept_count(&existing, 2499, now).unwrap_err();
        assert!(matches!(
            err,
            PurchaseError::PoolTooLarge { total: 2501, .. }
        ));
    }

    #[test]
    fn terms_compare_by_value() {
        let registry = Registry::builtin();
        let a = offer(10_000).payment();
        let mut b = a.clone();
        b.network = "base-sepolia".into();
        b.pay_to = b.pay_to.to_lowercase();
        b.price = "10000".into();
        assert!(same_terms(&a, &b, &registry));
        b.price = "10001".into();
        assert!(!same_terms(&a, &b, &registry));
        let mut c = a.clone();
        c.network = "base".into();
        assert!(!same_terms(&a, &c, &registry));
    }

    #[test]
    fn readiness_waits_for_the_current_generation() {
        let mut pr = purchase_request(
            "qwen",
            "llm",
            "https://seller.example/v1/chat/completions",
            "qwen3:8b",
            offer(10_000).payment(),
            Vec::new(),
            None,
        );
        pr.metadata.generation = Some(2);
        assert_eq!(readiness(&pr), Readiness::Pending { observed: None });
        let mut status = PurchaseRequestStatus {
            observed_generation: Some(1),
            conditions: vec![Condition::new(
                condition::READY,
                condition::TRUE,
                "Loaded",
                "",
            )],
            ..Default::default()
        };
        pr.status = Some(status.clone());
        assert_eq!(readiness(&pr), Readiness::Pending { observed: Some(1) });
        status.observed_generation = Some(2);
        pr.status = Some(status.clone());
        assert_eq!(readiness(&pr), Readiness::Ready);
        status.conditions = vec![Condition::new(
            condition::READY,
            condition::FALSE,
            "NoAuths",
            "no usable authorization",
        )];
        pr.status = Some(status);
        assert_eq!(
            readiness(&pr),
            Readiness::NotReady {
                reason: "NoAuths".into(),
                message: "no usable authorization".into()
            }
        );
    }

    /// etcd's default request limit (`--max-request-bytes`), which bounds an object.
    const ETCD_MAX_REQUEST_BYTES: usize = 1_572_864;

    #[tokio::test]
    async fn a_pool_of_2500_fits_in_one_object() {
        let o = offer(10_000);
        let signed = presign(&wallet(), &o, 10, unix_now() + 30 * 86_400, &|_| {})
            .await
            .unwrap();
        let pool: Vec<_> = signed.iter().cycle().take(2500).cloned().collect();
        let endpoint = "https://seller.example/services/qwen/v1/chat/completions";
        let refill = Caps {
            auto_refill: true,
            max_total: Some(10_000),
            max_spend_per_day: Some("1000".into()),
            ..Caps::default()
        }
        .to_auto_refill(&o, 2500)
        .unwrap();
        let pr = purchase_request(
            "qwen",
            "llm",
            endpoint,
            "qwen3:8b",
            o.payment(),
            pool,
            Some(refill),
        );
        let bytes = serde_json::to_vec(&pr).unwrap().len();
        assert!(bytes < ETCD_MAX_REQUEST_BYTES - 100_000, "{bytes} bytes");
    }

    #[test]
    fn pool_view_shows_decimals_and_atomic() {
        let caps = Caps {
            max_total: Some(100),
            max_spend_per_day: Some("0.5".into()),
            ..Caps::default()
        };
        let o = offer(10_000);
        let mut pr = purchase_request(
            "qwen",
            "llm",
            "https://seller.example/v1/chat/completions",
            "qwen3:8b",
            o.payment(),
            Vec::new(),
            Some(caps.to_auto_refill(&o, 5).unwrap()),
        );
        pr.status = Some(PurchaseRequestStatus {
            remaining: Some(4),
            spent: Some(1),
            total_spent: Some("10000".into()),
            ..Default::default()
        });
        let v = PoolView::of(&pr);
        assert_eq!(v.public_model, "paid/qwen3:8b");
        assert_eq!(
            (v.price.as_str(), v.price_atomic.as_str()),
            ("0.01", "10000")
        );
        assert_eq!(v.total_spent.as_deref(), Some("0.01"));
        assert_eq!(v.max_spend_per_day.as_deref(), Some("0.5"));
        assert_eq!(v.max_spend_per_day_atomic.as_deref(), Some("500000"));
        assert_eq!(v.ready, None);
        assert!(!v.up_to_date);
    }
}
