//! From the offers file to resolved routes, and the checks every write passes first.
//!
//! A [`Route`] carries everything the payment gate needs, computed once per load: the CAIP-2
//! network (a route without `network` inherits the file's `chain`, default `base-sepolia`),
//! the asset (the network's USDC unless the route overrides it), the atomic price, payTo (the
//! route's or the file's `wallet`) and the x402 v2 requirement.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use alloy_primitives::{Address, U256};

use super::config::{DEFAULT_CHAIN, LOCAL_NAMESPACE, PricingConfig, RouteRule};
use super::declared::{self, Gate, PathKind};
use super::matcher::Pattern;
use crate::secret::Secret;
use crate::x402::amount::{Rounding, parse_decimal};
use crate::x402::networks::{Asset, Network, Registry};
use crate::x402::wire::PaymentRequirements;

/// How long a buyer's authorization may stay valid when the route does not say. Long enough
/// for a slow upstream (an LLM answer) to finish before the settlement that follows it.
pub const DEFAULT_MAX_TIMEOUT_SECONDS: u64 = 300;

/// A route ready to serve.
#[derive(Clone)]
pub struct Route {
    /// Position of its rule in the offers file (every route of one offer has its rule's).
    pub index: usize,
    pub pattern: String,
    /// Metric label; `""` when the rule names none.
    pub offer_namespace: String,
    /// Metric label; `""` when the rule names none.
    pub offer_name: String,
    pub description: String,
    /// Shared by every route on the same chain.
    pub network: Arc<Network>,
    /// Shared by every route with the same asset.
    pub asset: Arc<Asset>,
    /// The price as written (decimal, asset units).
    pub price: String,
    /// The price in atomic units.
    pub amount: U256,
    pub pay_to: Address,
    pub max_timeout_seconds: u64,
    pub upstream_url: Option<String>,
    pub strip_prefix: Option<String>,
    /// A secret: never logged.
    pub upstream_auth: Option<Secret>,
    pub paused: bool,
    /// Paid, free (a declared free route) or undeclared (a path of an offer that declares
    /// routes, but not this one: refused).
    pub gate: Gate,
    /// The methods a declared route lists (metadata, not enforced); empty otherwise.
    pub methods: Vec<http::Method>,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("index", &self.index)
            .field("pattern", &self.pattern)
            .field(
                "offer",
                &format_args!("{}/{}", self.offer_namespace, self.offer_name),
            )
            .field("network", &self.network.caip2)
            .field("asset", &self.asset.address)
            .field("amount", &self.amount)
            .field("pay_to", &self.pay_to)
            .field("upstream_url", &self.upstream_url)
            .field("upstream_auth", &self.upstream_auth)
            .field("paused", &self.paused)
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

impl Route {
    /// The CAIP-2 id: the `chain` metric label.
    pub fn chain(&self) -> &str {
        &self.network.caip2
    }

    /// The v2 requirement (built from the route's fields).
    pub fn requirement(&self) -> PaymentRequirements {
        PaymentRequirements {
            scheme: "exact".to_string(),
            network: self.network.caip2.clone(),
            amount: self.amount.to_string(),
            asset: self.asset.address.to_checksum(None),
            pay_to: self.pay_to.to_checksum(None),
            max_timeout_seconds: self.max_timeout_seconds,
            extra: Some(serde_json::json!({
                "name": self.asset.eip712_name,
                "version": self.asset.eip712_version,
            })),
        }
    }

    /// The v2 requirement as a JSON value (what the facilitator gets).
    pub fn requirement_value(&self) -> serde_json::Value {
        self.requirement().to_value()
    }

    /// The v2 requirement as compact JSON (`accepts[0]` of the route's 402). Built when
    /// asked, not kept: 10,000 routes would hold 2.3 MB of it, twice during a reload, and the
    /// rendered 402 is cached per route anyway.
    pub fn requirement_json(&self) -> String {
        serde_json::to_string(&self.requirement()).unwrap_or_default()
    }

    /// The offer's display name: `offerName`, else the pattern.
    pub fn display_name(&self) -> &str {
        if self.offer_name.is_empty() {
            &self.pattern
        } else {
            &self.offer_name
        }
    }
}

/// One problem in the offers file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `routes[3] (offer demo)` or `wallet`.
    pub at: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// Every problem found in the offers file (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidOffers(pub Vec<Problem>);

impl fmt::Display for InvalidOffers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

fn where_(i: usize, r: &RouteRule) -> String {
    match r.offer_name.as_deref() {
        Some(n) if !n.is_empty() => format!("routes[{i}] (offer {n})"),
        _ => format!("routes[{i}] ({})", r.pattern),
    }
}

/// `0x` + 40 hex digits (any case).
pub fn parse_address(s: &str) -> Option<Address> {
    let t = s.trim();
    let hex = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X"))?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    t.parse().ok()
}

/// An offer name or namespace: `[a-z0-9-]{1,63}`.
pub fn valid_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The chain a route is paid on, as written (route `network`, else file `chain`, else default).
pub fn chain_of<'a>(cfg: &'a PricingConfig, rule: &'a RouteRule) -> &'a str {
    non_empty(&rule.network)
        .or_else(|| non_empty(&cfg.chain))
        .unwrap_or(DEFAULT_CHAIN)
}

/// Checks a facilitator URL: `https://` anywhere, `http://` only on loopback and the local
/// container host names (a plain-http facilitator elsewhere could be impersonated to approve
/// payments that were never made). Decided on the parsed host ([`is_local_host`]), never on
/// how its name starts.
pub fn check_facilitator_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if parsed.host().is_some_and(is_local_host) => Ok(()),
        "http" => Err(format!(
            "{url:?} uses plain http on a non-local host; use https"
        )),
        other => Err(format!("{url:?} has scheme {other:?}; use https")),
    }
}

/// Whether a parsed URL host is this machine or the local container host: a loopback IPv4
/// (127.0.0.0/8) or IPv6 (`::1`, or `::ffff:127.x.y.z`) address, or exactly one of the names
/// `localhost`, `host.k3d.internal`, `host.docker.internal` (`127.attacker.example` is a
/// name like any other).
pub fn is_local_host(host: oauth2::url::Host<&str>) -> bool {
    use oauth2::url::Host;
    match host {
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Host::Domain(name) => {
            let name = name.trim_end_matches('.');
            ["localhost", "host.k3d.internal", "host.docker.internal"]
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n))
        }
    }
}

fn check_upstream_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match parsed.scheme() {
        "http" | "https" if parsed.host_str().is_some() => Ok(()),
        _ => Err(format!("{url:?} must be an http:// or https:// URL")),
    }
}

fn resolve_asset(rule: &RouteRule, network: &Network) -> Result<Asset, String> {
    let override_addr = match non_empty(&rule.asset_address) {
        Some(a) => Some(
            parse_address(a).ok_or_else(|| format!("assetAddress {a:?} is not a 0x address"))?,
        ),
        None => None,
    };
    // Start from the network's asset unless the route names a different token.
    let base = match (&network.asset, override_addr) {
        (Some(a), None) => Some(a.clone()),
        (Some(a), Some(addr)) if a.address == addr => Some(a.clone()),
        _ => None,
    };
    let address = override_addr
        .or(base.as_ref().map(|a| a.address))
        .ok_or_else(|| {
            format!(
                "network {} has no default asset; set assetAddress, assetDecimals, eip712Name and eip712Version",
                network.name
            )
        })?;
    let decimals = rule
        .asset_decimals
        .or(base.as_ref().map(|a| a.decimals))
        .ok_or("assetDecimals is required for a custom asset")?;
    if decimals > 36 {
        return Err(format!("assetDecimals {decimals} is out of range (0-36)"));
    }
    let eip712_name = non_empty(&rule.eip712_name)
        .map(str::to_string)
        .or(base.as_ref().map(|a| a.eip712_name.clone()))
        .ok_or("eip712Name is required for a custom asset")?;
    let eip712_version = non_empty(&rule.eip712_version)
        .map(str::to_string)
        .or(base.as_ref().map(|a| a.eip712_version.clone()))
        .ok_or("eip712Version is required for a custom asset")?;
    let symbol = non_empty(&rule.asset_symbol)
        .map(str::to_string)
        .or(base.as_ref().map(|a| a.symbol.clone()))
        .unwrap_or_else(|| "unknown".to_string());
    Ok(Asset {
        address,
        symbol,
        decimals,
        eip712_name,
        eip712_version,
    })
}

/// Resolves one rule, declared routes included, and returns the route of the offer's own
/// pattern and price (the last of [`resolve_routes`]; [`Gate::Undeclared`] when the offer
/// declares routes). `Err` holds every problem of this rule.
pub fn resolve_rule(
    cfg: &PricingConfig,
    registry: &Registry,
    index: usize,
    rule: &RouteRule,
) -> Result<Route, Vec<String>> {
    let base = resolve_rule_cached(cfg, registry, index, rule, &mut Shared::default());
    if rule.routes.is_empty() {
        return base;
    }
    let base = base.map(|b| Route {
        gate: Gate::Undeclared,
        ..b
    });
    expand(rule, base.clone())?;
    base
}

/// Every route of one rule in table order (see [`resolve_routes_cached`]).
pub fn resolve_routes(
    cfg: &PricingConfig,
    registry: &Registry,
    index: usize,
    rule: &RouteRule,
) -> Result<Vec<Route>, Vec<String>> {
    resolve_routes_cached(cfg, registry, index, rule, &mut Shared::default())
}

/// Resolves rules one at a time against one file's `chain` and `wallet`, sharing one
/// `Arc<Network>` per chain and one `Arc<Asset>` per asset between them (the verifier's
/// ServiceOffer routes, each resolved on its own so that a broken one does not stop the rest).
pub struct Resolver<'a> {
    cfg: &'a PricingConfig,
    registry: &'a Registry,
    shared: Shared,
}

impl<'a> Resolver<'a> {
    pub fn new(cfg: &'a PricingConfig, registry: &'a Registry) -> Self {
        Resolver {
            cfg,
            registry,
            shared: Shared::default(),
        }
    }

    /// [`resolve_routes`] with the shared networks and assets: every route of `rule`, in
    /// table order.
    pub fn resolve(&mut self, index: usize, rule: &RouteRule) -> Result<Vec<Route>, Vec<String>> {
        resolve_routes_cached(self.cfg, self.registry, index, rule, &mut self.shared)
    }
}

/// What routes of one file share: one `Arc<Network>` per chain name, one `Arc<Asset>` per
/// distinct asset (10,000 offers on one chain hold one copy of each).
#[derive(Default)]
struct Shared {
    networks: HashMap<String, Arc<Network>>,
    assets: Vec<Arc<Asset>>,
}

impl Shared {
    fn asset(&mut self, asset: Asset) -> Arc<Asset> {
        match self.assets.iter().find(|a| ***a == asset) {
            Some(a) => Arc::clone(a),
            None => {
                let a = Arc::new(asset);
                self.assets.push(Arc::clone(&a));
                a
            }
        }
    }
}

/// [`resolve_rule`] sharing one `Arc<Network>` per chain name through `networks`.
fn resolve_rule_cached(
    cfg: &PricingConfig,
    registry: &Registry,
    index: usize,
    rule: &RouteRule,
    shared: &mut Shared,
) -> Result<Route, Vec<String>> {
    let mut problems = Vec::new();
    if !rule.pattern.starts_with('/') {
        problems.push(format!("pattern {:?} must start with '/'", rule.pattern));
    }
    let chain = chain_of(cfg, rule);
    let network = match shared.networks.get(chain) {
        Some(n) => Some(Arc::clone(n)),
        None => match registry.resolve_or_err(chain) {
            Ok(n) => {
                let n = Arc::new(n.clone());
                shared.networks.insert(chain.to_string(), Arc::clone(&n));
                Some(n)
            }
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        },
    };
    let asset = match &network {
        Some(n) => match resolve_asset(rule, n) {
            Ok(a) => Some(shared.asset(a)),
            Err(e) => {
                problems.push(e);
                None
            }
        },
        None => None,
    };
    let amount = match &asset {
        Some(a) => match parse_decimal(&rule.price, a.decimals, Rounding::Exact) {
            Ok(v) if v.is_zero() => {
                problems.push(format!("price {:?} must be greater than 0", rule.price));
                None
            }
            Ok(v) => Some(v),
            Err(e) => {
                problems.push(format!(
                    "price: {e} ({} has {} decimals)",
                    a.symbol, a.decimals
                ));
                None
            }
        },
        None => None,
    };
    let pay_to = match non_empty(&rule.pay_to).or_else(|| non_empty(&cfg.wallet)) {
        Some(s) => match parse_address(s) {
            Some(a) if a != Address::ZERO => Some(a),
            Some(_) => {
                problems.push("payTo must not be the zero address".to_string());
                None
            }
            None => {
                problems.push(format!("payTo {s:?} is not a 0x address (40 hex digits)"));
                None
            }
        },
        None => {
            problems.push("no payTo and no file-level wallet".to_string());
            None
        }
    };
    let max_timeout_seconds = rule
        .max_timeout_seconds
        .unwrap_or(DEFAULT_MAX_TIMEOUT_SECONDS);
    if max_timeout_seconds == 0 {
        problems.push("maxTimeoutSeconds must be greater than 0".to_string());
    }
    if let Some(u) = non_empty(&rule.upstream_url)
        && let Err(e) = check_upstream_url(u)
    {
        problems.push(format!("upstreamURL: {e}"));
    }
    if let Some(p) = non_empty(&rule.strip_prefix)
        && !p.starts_with('/')
    {
        problems.push(format!("stripPrefix {p:?} must start with '/'"));
    }
    if let Some(auth) = &rule.upstream_auth
        && http::HeaderValue::from_str(auth.expose()).is_err()
    {
        problems.push("upstreamAuth is not a valid header value".to_string());
    }
    let (Some(network), Some(asset), Some(amount), Some(pay_to)) = (network, asset, amount, pay_to)
    else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Route {
        index,
        pattern: rule.pattern.clone(),
        offer_namespace: rule.offer_namespace.clone().unwrap_or_default(),
        offer_name: rule.offer_name.clone().unwrap_or_default(),
        description: rule.description.clone().unwrap_or_default(),
        network,
        asset,
        price: rule.price.trim().to_string(),
        amount,
        pay_to,
        max_timeout_seconds,
        upstream_url: non_empty(&rule.upstream_url).map(str::to_string),
        strip_prefix: non_empty(&rule.strip_prefix).map(str::to_string),
        upstream_auth: rule.upstream_auth.clone().filter(|s| !s.is_empty()),
        paused: rule.paused,
        gate: Gate::Paid,
        methods: Vec::new(),
    })
}

/// Every route of one rule, in table order. A rule without declared routes is one paid route
/// (its pattern at its price). A rule with declared routes is one route per declared path
/// (the root `/` is two: `<offer>` and `<offer>/`), most specific first
/// ([`declared::specificity`]), then, unless `/*` is declared, a catch-all on the offer's own
/// pattern with [`Gate::Undeclared`]. `Err` holds every problem of the rule.
fn resolve_routes_cached(
    cfg: &PricingConfig,
    registry: &Registry,
    index: usize,
    rule: &RouteRule,
    shared: &mut Shared,
) -> Result<Vec<Route>, Vec<String>> {
    let base = resolve_rule_cached(cfg, registry, index, rule, shared);
    if rule.routes.is_empty() {
        return base.map(|r| vec![r]);
    }
    expand(rule, base)
}

/// The routes of a rule that declares routes, from its own resolved route (`base`, or its
/// problems): see [`resolve_routes_cached`].
fn expand(rule: &RouteRule, base: Result<Route, Vec<String>>) -> Result<Vec<Route>, Vec<String>> {
    let mut problems = match &base {
        Ok(_) => Vec::new(),
        Err(ps) => ps.clone(),
    };
    let prefix = match Pattern::parse(&rule.pattern) {
        Pattern::Prefix(p) => Some(p),
        _ => {
            problems.push(format!(
                "pattern {:?} must be of the form /PATH/* to declare routes (they are relative to PATH)",
                rule.pattern
            ));
            None
        }
    };
    problems.extend(declared::check_list(&rule.routes));
    let mut checked = Vec::with_capacity(rule.routes.len());
    for (j, entry) in rule.routes.iter().enumerate() {
        match declared::check_entry(entry) {
            Ok((gate, methods, kind)) => checked.push((entry, gate, methods, kind)),
            Err(ps) => problems.extend(ps.into_iter().map(|m| format!("routes[{j}]: {m}"))),
        }
    }
    let (Ok(base), Some(prefix)) = (base, prefix) else {
        return Err(problems);
    };
    // Prices against the offer's asset.
    let mut amounts = Vec::with_capacity(checked.len());
    for (j, (entry, ..)) in checked.iter().enumerate() {
        let Some(price) = &entry.price else {
            amounts.push(None);
            continue;
        };
        let Ok(text) = price.per_request() else {
            amounts.push(None);
            continue;
        };
        match parse_decimal(text, base.asset.decimals, Rounding::Exact) {
            Ok(v) if v.is_zero() => {
                problems.push(format!(
                    "routes[{j}]: price {text:?} must be greater than 0"
                ));
            }
            Ok(v) => amounts.push(Some((text.to_string(), v))),
            Err(e) => problems.push(format!(
                "routes[{j}]: price: {e} ({} has {} decimals)",
                base.asset.symbol, base.asset.decimals
            )),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut order: Vec<usize> = (0..checked.len()).collect();
    order.sort_by_key(|&k| declared::specificity(&checked[k].0.path, checked[k].3));
    let mut routes = Vec::with_capacity(checked.len() + 2);
    let mut whole_offer_declared = false;
    for k in order {
        let (entry, gate, methods, kind) = &checked[k];
        whole_offer_declared |= *kind == PathKind::Subtree && entry.path == "/*";
        let (price, amount) = match &amounts[k] {
            Some((text, v)) => (text.clone(), *v),
            None => (base.price.clone(), base.amount),
        };
        let description = entry
            .summary
            .clone()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| base.description.clone());
        for pattern in declared::patterns_of(&prefix, &entry.path) {
            routes.push(Route {
                pattern,
                price: price.clone(),
                amount,
                description: description.clone(),
                gate: *gate,
                methods: methods.clone(),
                ..base.clone()
            });
        }
    }
    if !whole_offer_declared {
        routes.push(Route {
            gate: Gate::Undeclared,
            ..base
        });
    }
    Ok(routes)
}

/// Resolves every route of the file, in order. Used by the verifier on every (re)load.
pub fn resolve(cfg: &PricingConfig, registry: &Registry) -> Result<Vec<Route>, InvalidOffers> {
    resolve_borrowed(cfg, &cfg.routes, registry)
}

/// Resolves `rules`, taken by value, under the global settings of `cfg` (its own routes are
/// ignored), turning each route into what the caller keeps with `keep`. Same checks and
/// problems, in file order, as [`resolve`]; the result is in file order too.
///
/// Made for a reload of 10,000 offers: the rules are resolved from the last one back and
/// their list shrinks as it goes, and no list of bare routes is built in between, so the
/// parsed file's memory is given back while the new table grows instead of all three
/// existing at once beside the table in service.
pub fn resolve_owned<T>(
    cfg: &PricingConfig,
    mut rules: Vec<RouteRule>,
    registry: &Registry,
    mut keep: impl FnMut(Route) -> T,
) -> Result<Vec<T>, InvalidOffers> {
    let mut kept = Vec::with_capacity(rules.len());
    let mut problems = Vec::new();
    let mut shared = Shared::default();
    while let Some(rule) = rules.pop() {
        let i = rules.len();
        match resolve_routes_cached(cfg, registry, i, &rule, &mut shared) {
            // `kept` is reversed at the end: push this rule's routes last first.
            Ok(routes) if problems.is_empty() => {
                kept.extend(routes.into_iter().rev().map(&mut keep));
            }
            // The file is refused: only its problems matter now.
            Ok(_) => {}
            Err(ps) => problems.extend(ps.into_iter().rev().map(|message| Problem {
                at: where_(i, &rule),
                message,
            })),
        }
        drop(rule);
        if rules.capacity() > 64 && rules.len() <= rules.capacity() / 2 {
            rules.shrink_to_fit();
        }
    }
    kept.reverse();
    problems.reverse();
    finish(cfg, kept, problems)
}

/// Resolves every route of `rules` (borrowed), in order.
fn resolve_borrowed(
    cfg: &PricingConfig,
    rules: &[RouteRule],
    registry: &Registry,
) -> Result<Vec<Route>, InvalidOffers> {
    let mut routes = Vec::with_capacity(rules.len());
    let mut problems = Vec::new();
    let mut shared = Shared::default();
    for (i, rule) in rules.iter().enumerate() {
        match resolve_routes_cached(cfg, registry, i, rule, &mut shared) {
            Ok(rs) => routes.extend(rs),
            Err(ps) => problems.extend(ps.into_iter().map(|message| Problem {
                at: where_(i, rule),
                message,
            })),
        }
    }
    finish(cfg, routes, problems)
}

/// The file-level checks after the routes: the facilitator URL.
fn finish<T>(
    cfg: &PricingConfig,
    kept: Vec<T>,
    mut problems: Vec<Problem>,
) -> Result<Vec<T>, InvalidOffers> {
    if let Some(f) = non_empty(&cfg.facilitator_url)
        && let Err(e) = check_facilitator_url(f)
    {
        problems.push(Problem {
            at: "facilitatorURL".into(),
            message: e,
        });
    }
    if problems.is_empty() {
        Ok(kept)
    } else {
        Err(InvalidOffers(problems))
    }
}

/// Everything [`resolve`] checks plus what a write must guarantee: a file-level `wallet` and
/// `chain` that are valid, offer names and namespaces `[a-z0-9-]{1,63}`, unique patterns and
/// unique offers. Run before every write.
pub fn validate(cfg: &PricingConfig, registry: &Registry) -> Result<Vec<Route>, InvalidOffers> {
    let mut problems = match resolve(cfg, registry) {
        Ok(_) => Vec::new(),
        Err(InvalidOffers(ps)) => ps,
    };
    if let Some(w) = non_empty(&cfg.wallet)
        && parse_address(w).is_none()
    {
        problems.push(Problem {
            at: "wallet".into(),
            message: format!("{w:?} is not a 0x address (40 hex digits)"),
        });
    }
    if let Some(c) = non_empty(&cfg.chain)
        && let Err(e) = registry.resolve_or_err(c)
    {
        problems.push(Problem {
            at: "chain".into(),
            message: e.to_string(),
        });
    }
    let mut patterns = HashSet::new();
    let mut offers = HashSet::new();
    for (i, r) in cfg.routes.iter().enumerate() {
        if !patterns.insert(r.pattern.as_str()) {
            problems.push(Problem {
                at: where_(i, r),
                message: format!(
                    "pattern {:?} is already used by an earlier route",
                    r.pattern
                ),
            });
        }
        if let Some(name) = r.offer_name.as_deref() {
            if !valid_name(name) {
                problems.push(Problem {
                    at: where_(i, r),
                    message: format!(
                        "offer name {name:?} must be 1-63 characters of a-z, 0-9 and '-'"
                    ),
                });
            }
            let ns = non_empty(&r.offer_namespace).unwrap_or(LOCAL_NAMESPACE);
            if !valid_name(ns) {
                problems.push(Problem {
                    at: where_(i, r),
                    message: format!(
                        "offer namespace {ns:?} must be 1-63 characters of a-z, 0-9 and '-'"
                    ),
                });
            }
            if !offers.insert((ns, name)) {
                problems.push(Problem {
                    at: where_(i, r),
                    message: format!("offer {ns}/{name} is defined twice"),
                });
            }
        }
    }
    if problems.is_empty() {
        resolve(cfg, registry)
    } else {
        Err(InvalidOffers(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offers::config::parse;
    use std::path::Path;

    const PAY: &str = "0x2222222222222222222222222222222222222222";
    const WALLET: &str = "0x1111111111111111111111111111111111111111";

    fn cfg(yaml: &str) -> PricingConfig {
        parse(yaml, Path::new("t.yaml")).unwrap()
    }

    #[test]
    fn inherits_the_file_chain_and_wallet() {
        let c = cfg(&format!(
            "wallet: \"{WALLET}\"\nchain: base\nroutes:\n  - pattern: /a/*\n    price: \"0.01\"\n    offerName: a\n"
        ));
        let r = &resolve(&c, &Registry::builtin()).unwrap()[0];
        assert_eq!(r.chain(), "eip155:8453");
        assert_eq!(r.pay_to, WALLET.parse::<Address>().unwrap());
        assert_eq!(r.amount, U256::from(10_000u64));
        assert_eq!(r.asset.symbol, "USDC");
        assert_eq!(r.requirement().network, "eip155:8453");
        assert_eq!(r.requirement().amount, "10000");
        assert_eq!(
            r.requirement().asset,
            "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
        );
        assert_eq!(
            r.requirement().max_timeout_seconds,
            DEFAULT_MAX_TIMEOUT_SECONDS
        );
        let json = r.requirement_value();
        assert_eq!(json["payTo"], WALLET);
        assert_eq!(json["extra"]["version"], "2");
    }

    #[test]
    fn default_chain_is_base_sepolia_and_route_network_wins() {
        let c = cfg(&format!(
            "wallet: \"{WALLET}\"\nroutes:\n  - pattern: /a\n    price: \"1\"\n  - pattern: /b\n    price: \"1\"\n    network: eip155:8453\n    payTo: \"{PAY}\"\n"
        ));
        let rs = resolve(&c, &Registry::builtin()).unwrap();
        assert_eq!(rs[0].chain(), "eip155:84532");
        assert_eq!(
            rs[0].requirement_value()["extra"]["name"],
            rs[0].asset.eip712_name
        );
        assert_eq!(rs[1].chain(), "eip155:8453");
        assert_eq!(rs[1].pay_to, PAY.parse::<Address>().unwrap());
        assert_eq!(rs[1].amount, U256::from(1_000_000u64));
    }

    #[test]
    fn asset_overrides() {
        let c = cfg(&format!(
            "wallet: \"{WALLET}\"\nroutes:\n  - pattern: /a\n    price: \"1.5\"\n    assetAddress: \"0x0a09371a8b011d5110656ceBCc70603e53FD2c78\"\n    assetSymbol: OBOL\n    assetDecimals: 18\n    eip712Name: Obol Network\n    eip712Version: \"1\"\n  - pattern: /b\n    price: \"1\"\n    eip712Name: USD Coin\n"
        ));
        let rs = resolve(&c, &Registry::builtin()).unwrap();
        assert_eq!(rs[0].asset.symbol, "OBOL");
        assert_eq!(rs[0].amount, U256::from(1_500_000_000_000_000_000u128));
        assert_eq!(rs[0].requirement_value()["extra"]["name"], "Obol Network");
        // Partial override: the network's USDC with another EIP-712 name.
        assert_eq!(rs[1].asset.symbol, "USDC");
        assert_eq!(rs[1].asset.eip712_name, "USD Coin");
        // A custom token without decimals is refused.
        let c = cfg(&format!(
            "wallet: \"{WALLET}\"\nroutes:\n  - pattern: /a\n    price: \"1\"\n    assetAddress: \"0x0a09371a8b011d5110656ceBCc70603e53FD2c78\"\n"
        ));
        let err = resolve(&c, &Registry::builtin()).unwrap_err().to_string();
        assert!(err.contains("assetDecimals"), "{err}");
    }

    #[test]
    fn price_resolution_is_exact() {
        let route = |price: &str| {
            let c = cfg(&format!(
                "wallet: \"{WALLET}\"\nroutes:\n  - pattern: /a\n    price: \"{price}\"\n"
            ));
            resolve(&c, &Registry::builtin()).map(|r| r[0].amount)
        };
        assert_eq!(route("0.001").unwrap(), U256::from(1000u64));
        assert_eq!(route("0.000001").unwrap(), U256::from(1u64));
        assert_eq!(route("12").unwrap(), U256::from(12_000_000u64));
        assert!(
            route("0.0000001")
                .unwrap_err()
                .to_string()
                .contains("decimal")
        );
        assert!(
            route("0")
                .unwrap_err()
                .to_string()
                .contains("greater than 0")
        );
        assert!(route("-1").is_err());
        assert!(route("1e-3").is_err());
        assert!(route("").is_err());
    }

    #[test]
    fn resolving_rules_by_value_gives_the_same_routes_and_problems_in_file_order() {
        let mut yaml = format!("wallet: \"{WALLET}\"\nroutes:\n");
        for i in 0..200 {
            yaml.push_str(&format!(
                "  - pattern: /s/{i}/*\n    price: \"0.{:03}\"\n",
                i + 1
            ));
        }
        let good = cfg(&yaml);
        let key = |r: &Route| (r.index, r.pattern.clone(), r.amount);
        let by_value = resolve_owned(
            &good.without_routes(),
            good.routes.clone(),
            &Registry::builtin(),
            |r| key(&r),
        )
        .unwrap();
        let by_ref = resolve(&good, &Registry::builtin()).unwrap();
        assert_eq!(by_value, by_ref.iter().map(key).collect::<Vec<_>>());

        let bad = cfg(
            "facilitatorURL: ftp://x\nroutes:\n  - pattern: a\n    price: x\n  - pattern: /ok\n    price: \"1\"\n  - pattern: b\n    price: \"1\"\n    network: mars\n",
        );
        let by_value = resolve_owned(
            &bad.without_routes(),
            bad.routes.clone(),
            &Registry::builtin(),
            |r| r,
        )
        .unwrap_err();
        let by_ref = resolve(&bad, &Registry::builtin()).unwrap_err();
        assert_eq!(by_value, by_ref);
        assert!(by_ref.0.len() >= 4, "{by_ref}");
        assert_eq!(by_ref.0.last().unwrap().at, "facilitatorURL");
    }

    #[test]
    fn validation_lists_every_problem() {
        let c = cfg(
            "wallet: nope\nchain: mars\nfacilitatorURL: http://facilitator.example.com\nroutes:\n  - pattern: services/x\n    price: abc\n    network: base\n    payTo: \"0x12\"\n    offerName: Bad_Name\n  - pattern: services/x\n    price: \"1\"\n    network: eip155:999999\n    offerName: Bad_Name\n",
        );
        let err = validate(&c, &Registry::builtin()).unwrap_err();
        let text = err.to_string();
        for needle in [
            "wallet",
            "chain",
            "facilitatorURL",
            "must start with '/'",
            "price",
            "payTo",
            "offer name",
            "already used",
            "unknown network",
            "defined twice",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in {text}");
        }
    }

    #[test]
    fn validation_accepts_a_good_file_and_checks_urls() {
        let good = format!(
            "wallet: \"{WALLET}\"\nfacilitatorURL: http://127.0.0.1:4021\nroutes:\n  - pattern: /services/a/*\n    price: \"0.01\"\n    offerNamespace: local\n    offerName: a\n    upstreamURL: http://127.0.0.1:9000\n    stripPrefix: /services/a\n"
        );
        assert!(validate(&cfg(&good), &Registry::builtin()).is_ok());
        let bad = good.replace("http://127.0.0.1:9000", "ftp://x");
        assert!(
            validate(&cfg(&bad), &Registry::builtin())
                .unwrap_err()
                .to_string()
                .contains("upstreamURL")
        );
        assert!(check_facilitator_url("https://x402.gcp.obol.tech").is_ok());
        assert!(check_facilitator_url("http://localhost:1").is_ok());
        assert!(check_facilitator_url("http://[::1]:1").is_ok());
        assert!(check_facilitator_url("http://evil.example").is_err());
        assert!(check_facilitator_url("not a url").is_err());
    }

    #[test]
    fn plain_http_is_decided_on_the_parsed_host_not_a_prefix() {
        for local in [
            "http://127.0.0.1:4021",
            "http://127.3.4.5:4021",
            "http://127.1:4021",
            "http://[::1]:4021",
            "http://localhost:4021",
            "http://LOCALHOST:4021",
            "http://host.k3d.internal:4021",
            "http://host.docker.internal:4021",
        ] {
            assert!(check_facilitator_url(local).is_ok(), "{local}");
        }
        for remote in [
            "http://127.attacker.example:4021",
            "http://127.0.0.1.nip.io:4021",
            "http://localhost.attacker.example:4021",
            "http://host.docker.internal.attacker.example",
            "http://[::ffff:8.8.8.8]:4021",
            "http://128.0.0.1:4021",
            "http://10.0.0.1:4021",
        ] {
            let err = check_facilitator_url(remote).unwrap_err();
            assert!(err.contains("use https"), "{remote}: {err}");
        }
    }

    #[test]
    fn names() {
        assert!(valid_name("demo-1"));
        assert!(valid_name(&"a".repeat(63)));
        assert!(!valid_name(&"a".repeat(64)));
        assert!(!valid_name(""));
        assert!(!valid_name("Demo"));
        assert!(!valid_name("a_b"));
        assert!(!valid_name("a/b"));
        assert!(parse_address(WALLET).is_some());
        assert!(parse_address("0x123").is_none());
        assert!(parse_address("1111111111111111111111111111111111111111").is_none());
    }

    fn offer_with_routes(routes: &str) -> PricingConfig {
        cfg(&format!(
            "wallet: \"{WALLET}\"\nroutes:\n  - pattern: /services/api/*\n    price: \"0.01\"\n    offerNamespace: local\n    offerName: api\n    description: the api\n    routes:\n{routes}"
        ))
    }

    fn table(c: &PricingConfig) -> Vec<(String, Gate, U256)> {
        resolve(c, &Registry::builtin())
            .unwrap()
            .into_iter()
            .map(|r| (r.pattern, r.gate, r.amount))
            .collect()
    }

    #[test]
    fn declared_routes_expand_most_specific_first_then_a_refusing_catch_all() {
        let routes = "      - path: /jobs/*\n        gate: free\n      - path: /submit\n        methods: [POST]\n        price: \"0.5\"\n        summary: submit a job\n      - path: /\n      - path: /jobs/special\n        price: {perRequest: \"2\"}\n";
        let c = offer_with_routes(routes);
        let t = table(&c);
        let cent = U256::from(10_000u64);
        assert_eq!(
            t,
            vec![
                (
                    "/services/api/jobs/special".into(),
                    Gate::Paid,
                    U256::from(2_000_000u64)
                ),
                (
                    "/services/api/submit".into(),
                    Gate::Paid,
                    U256::from(500_000u64)
                ),
                ("/services/api".into(), Gate::Paid, cent),
                ("/services/api/".into(), Gate::Paid, cent),
                ("/services/api/jobs/*".into(), Gate::Free, cent),
                ("/services/api/*".into(), Gate::Undeclared, cent),
            ]
        );
        let rs = resolve(&c, &Registry::builtin()).unwrap();
        assert_eq!(rs[1].methods, vec![http::Method::POST]);
        assert_eq!(rs[1].description, "submit a job");
        assert_eq!(rs[0].description, "the api", "no summary: the offer's");
        assert!(rs.iter().all(|r| r.offer_name == "api" && r.index == 0));
        assert!(
            rs.iter()
                .all(|r| r.strip_prefix.is_none() || r.strip_prefix == rs[0].strip_prefix)
        );

        // The written order does not matter.
        let mut lines: Vec<String> = Vec::new();
        let mut cur = String::new();
        for l in routes.lines() {
            if l.starts_with("      - ") && !cur.is_empty() {
                lines.push(std::mem::take(&mut cur));
            }
            cur.push_str(l);
            cur.push('\n');
        }
        lines.push(cur);
        lines.reverse();
        assert_eq!(table(&offer_with_routes(&lines.concat())), t);

        // Through the matcher: the most specific declared path serves a request.
        let m = crate::offers::Matcher::new(
            rs.iter()
                .map(|r| (Pattern::parse(&r.pattern), (r.pattern.clone(), r.gate)))
                .collect(),
        );
        let at = |p: &str| m.find(p).map(|(_, v)| v.clone());
        assert_eq!(at("/services/api/jobs/special").unwrap().1, Gate::Paid);
        assert_eq!(at("/services/api/jobs/other").unwrap().1, Gate::Free);
        assert_eq!(at("/services/api/jobs").unwrap().1, Gate::Free);
        assert_eq!(at("/services/api/submit").unwrap().1, Gate::Paid);
        assert_eq!(at("/services/api/submit/x").unwrap().1, Gate::Undeclared);
        assert_eq!(at("/services/api/other").unwrap().1, Gate::Undeclared);
        assert_eq!(at("/services/api").unwrap().1, Gate::Paid);

        // The offer's own route (for `sell list`) is the catch-all.
        let own = resolve_rule(&c, &Registry::builtin(), 0, &c.routes[0]).unwrap();
        assert_eq!(
            (own.pattern.as_str(), own.gate),
            ("/services/api/*", Gate::Undeclared)
        );
    }

    #[test]
    fn declaring_the_whole_offer_leaves_no_catch_all() {
        let c = offer_with_routes("      - path: /*\n        gate: free\n      - path: /pay\n");
        let t = table(&c);
        assert_eq!(
            t.iter()
                .map(|(p, g, _)| (p.as_str(), *g))
                .collect::<Vec<_>>(),
            [
                ("/services/api/pay", Gate::Paid),
                ("/services/api/*", Gate::Free)
            ]
        );
        let own = resolve_rule(&c, &Registry::builtin(), 0, &c.routes[0]).unwrap();
        assert_eq!(own.amount, U256::from(10_000u64), "the offer's own price");
    }

    #[test]
    fn an_offer_without_routes_is_one_paid_route() {
        let c = cfg(&format!(
            "wallet: \"{WALLET}\"\nroutes:\n  - pattern: /services/a/*\n    price: \"0.01\"\n"
        ));
        assert_eq!(
            table(&c),
            [(
                "/services/a/*".to_string(),
                Gate::Paid,
                U256::from(10_000u64)
            )]
        );
    }

    #[test]
    fn hostile_route_lists_are_refused_with_every_problem() {
        let bad = |routes: &str| {
            validate(&offer_with_routes(routes), &Registry::builtin())
                .unwrap_err()
                .to_string()
        };
        for (routes, needle) in [
            ("      - path: /a/..\n", "\"..\" segment"),
            ("      - path: /a//b\n", "empty segment"),
            ("      - path: /%2e%2e/x\n", "'%'"),
            (
                "      - path: /a\n      - path: /a\n        gate: free\n",
                "declared twice",
            ),
            (
                "      - path: /a\n        gate: auth\n",
                "gate auth is not supported yet by obol; use paid or free",
            ),
            ("      - path: /a\n        methods: [GET, FETCH]\n", "FETCH"),
            (
                "      - path: /a\n        price: \"0\"\n",
                "must be greater than 0",
            ),
            ("      - path: /a\n        price: \"-1\"\n", "price"),
            ("      - path: /a\n        price: -1\n", "price"),
            ("      - path: /a\n        price: 1e-30\n", "decimal"),
            ("      - path: /a\n        price: \"1e-30\"\n", "price"),
            (
                "      - path: /a\n        price: \"0.0000001\"\n",
                "decimal",
            ),
            (
                "      - path: /a\n        freeQuota: 3\n",
                "unknown key \"freeQuota\"",
            ),
            (
                "      - path: /a\n        gate: free\n        price: \"1\"\n",
                "free route takes no price",
            ),
        ] {
            let err = bad(routes);
            assert!(err.contains(needle), "{routes}: {err}");
            assert!(err.contains("routes[0] (offer api)"), "{err}");
        }
        let many: String = (0..129).map(|i| format!("      - path: /r{i}\n")).collect();
        assert!(bad(&many).contains("129 routes declared; at most 128"));
        let ok: String = (0..128).map(|i| format!("      - path: /r{i}\n")).collect();
        assert_eq!(
            resolve(&offer_with_routes(&ok), &Registry::builtin())
                .unwrap()
                .len(),
            129
        );
        // Routes need an offer pattern with a prefix.
        let c = cfg(&format!(
            "wallet: \"{WALLET}\"\nroutes:\n  - pattern: /exact\n    price: \"1\"\n    routes:\n      - path: /a\n"
        ));
        let err = validate(&c, &Registry::builtin()).unwrap_err().to_string();
        assert!(err.contains("must be of the form /PATH/*"), "{err}");
        // Every problem at once, the offer's and its routes'.
        let c = cfg(
            "routes:\n  - pattern: /s/*\n    price: \"x\"\n    routes:\n      - path: /..\n      - path: /b\n        gate: auth\n",
        );
        let err = validate(&c, &Registry::builtin()).unwrap_err().to_string();
        for needle in ["price", "payTo", "routes[0]", "routes[1]", "gate auth"] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn route_prices_round_trip_in_the_form_written() {
        let c = offer_with_routes(
            "      - path: /a\n        price: {perRequest: \"0.5\"}\n      - path: /b\n        price: 0.25\n      - path: /c\n        price: \"0.125\"\n",
        );
        let text = crate::offers::config::to_yaml(&c).unwrap();
        assert!(
            text.contains("perRequest: '0.5'") || text.contains("perRequest: \"0.5\""),
            "{text}"
        );
        let again = parse(&text, Path::new("t.yaml")).unwrap();
        assert_eq!(again, c);
        let amounts: Vec<U256> = resolve(&c, &Registry::builtin())
            .unwrap()
            .iter()
            .map(|r| r.amount)
            .collect();
        assert_eq!(
            amounts[..3],
            [
                U256::from(500_000u64),
                U256::from(250_000u64),
                U256::from(125_000u64)
            ]
        );
    }

    #[test]
    fn debug_hides_upstream_auth() {
        let c = cfg(&format!(
            "wallet: \"{WALLET}\"\nroutes:\n  - pattern: /a\n    price: \"1\"\n    upstreamAuth: Bearer sk-very-secret\n"
        ));
        let r = &resolve(&c, &Registry::builtin()).unwrap()[0];
        assert!(!format!("{r:?}").contains("sk-very-secret"));
        assert_eq!(
            r.upstream_auth.as_ref().map(Secret::expose),
            Some("Bearer sk-very-secret")
        );
    }
}
