//! A ServiceOffer as a route rule: what `obol serve verifier --route-source kube` serves for
//! each offer in the cluster, and the parsing of `obol sell create --upstream` on a cluster.
//!
//! The rendering follows the obol-stack verifier's ServiceOffer source (reference §3.3):
//! - pattern `trimSuffix(EffectivePath, "/") + "/*"`, stripPrefix the path itself;
//! - price `perRequest`, else `perMTok / 1000` (about 1000 tokens a request, rounded half up
//!   to the asset's decimals), else `perHour` (charged per request, as the old stack did);
//!   `perEpoch` alone is not a price the verifier can charge;
//! - `network` normalised to CAIP-2 (empty: the verifier's `chain`), `payTo` (empty: the
//!   verifier's `wallet`), the asset fields, `maxTimeoutSeconds`;
//! - upstream `http://<service>.<namespace>.svc.cluster.local:<port>`;
//! - `offerNamespace`/`offerName` from the object, `description` from `registration`.
//!
//! Which offers are served ([`render`]): a paused offer (`obol.org/paused: "true"`) becomes a
//! paused route (answered 404 `offer_paused`, never charged); an offer whose `RoutePublished`
//! condition is explicitly `False` is not served at all; an offer whose spec breaks the CRD's
//! rules, names an unknown network or has no usable price is [`Rendered::Invalid`], with a
//! reason and message for its `PaymentGateReady` condition.

use std::fmt;

use super::config::RouteRule;
use crate::k8s::crd;
use crate::k8s::types::{OfferPrice, ServiceOffer};
use crate::x402::amount::{Rounding, format_atomic, parse_decimal};
use crate::x402::networks::Registry;

/// Tokens one request is assumed to use when an offer is priced per million tokens.
pub const APPROX_TOKENS_PER_REQUEST: u64 = 1000;

/// Decimals a `perMTok` price is rounded to when the offer names no asset (USDC's).
const DEFAULT_PRICE_DECIMALS: u8 = 6;

/// Condition reasons the verifier writes (`PaymentGateReady`, `Ready`).
pub mod reason {
    /// The offer is charged for.
    pub const SERVING: &str = "Serving";
    /// Annotation `obol.org/paused: "true"`.
    pub const PAUSED: &str = "Paused";
    /// The spec breaks the CRD's rules (or could not be read at all).
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// No perRequest, perMTok or perHour price.
    pub const NO_PRICE: &str = "NoPrice";
    /// `payment.network` is not a network the verifier knows.
    pub const UNKNOWN_NETWORK: &str = "UnknownNetwork";
    /// An asset the verifier cannot take (permit2).
    pub const UNSUPPORTED_ASSET: &str = "UnsupportedAsset";
    /// Price, payTo or asset do not resolve (e.g. more decimals than the asset has, no payTo
    /// and no verifier wallet).
    pub const INVALID_PAYMENT: &str = "InvalidPayment";
    /// Another offer (earlier in namespace/name order) serves the same path.
    pub const PATH_CONFLICT: &str = "PathConflict";
    /// A declared route with `gate: auth` or `freeQuota` (SIWX sign-in, not implemented by
    /// obol): the offer is not served at all rather than served without the sign-in.
    pub const UNSUPPORTED_GATE: &str = "UnsupportedGate";
}

/// Why an offer cannot be served: a condition reason (CamelCase) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferProblem {
    pub reason: &'static str,
    pub message: String,
}

impl OfferProblem {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        OfferProblem {
            reason,
            message: message.into(),
        }
    }
}

impl fmt::Display for OfferProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

/// How a price was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceModel {
    PerRequest,
    PerMTok,
    PerHour,
}

impl PriceModel {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceModel::PerRequest => "perRequest",
            PriceModel::PerMTok => "perMTok",
            PriceModel::PerHour => "perHour",
        }
    }
}

/// What the verifier does with one ServiceOffer.
#[derive(Debug, Clone, PartialEq)]
pub enum Rendered {
    /// Served (or, with `rule.paused`, matched and answered `offer_paused`).
    Route(Box<RouteRule>),
    /// `RoutePublished` is `False`: not served, no route at all.
    Unpublished,
    /// Cannot be served. `pattern` is the path it would be sold under, when that is a valid
    /// path: the verifier answers it 503 (fail closed) instead of letting it through free.
    Invalid {
        pattern: Option<String>,
        problem: OfferProblem,
    },
}

/// The route pattern of an offer path: `trimSuffix(path, "/") + "/*"`.
pub fn offer_pattern(path: &str) -> String {
    format!("{}/*", path.trim_end_matches('/'))
}

/// The price the verifier charges per request, as a decimal string, and how it was given.
/// `decimals`: the asset's, for rounding `perMTok / 1000`.
pub fn price_of(offer: &ServiceOffer, decimals: u8) -> Result<(String, PriceModel), OfferProblem> {
    price_of_price(&offer.spec.payment.price, "spec.payment.price", decimals)
}

/// [`price_of`] for any price object (the offer's or a declared route's), `field` naming it
/// in the messages.
pub fn price_of_price(
    price: &OfferPrice,
    field: &str,
    decimals: u8,
) -> Result<(String, PriceModel), OfferProblem> {
    fn given(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
    if let Some(p) = given(&price.per_request) {
        return Ok((p.to_string(), PriceModel::PerRequest));
    }
    if let Some(p) = given(&price.per_m_tok) {
        let shifted = shift_left(p, 3).ok_or_else(|| {
            OfferProblem::new(
                reason::INVALID_SPEC,
                format!("{field}.perMTok `{p}` is not a decimal amount like 1.5"),
            )
        })?;
        let atomic = parse_decimal(&shifted, decimals, Rounding::HalfUp).map_err(|e| {
            OfferProblem::new(reason::INVALID_PAYMENT, format!("{field}.perMTok: {e}"))
        })?;
        if atomic.is_zero() {
            return Err(OfferProblem::new(
                reason::INVALID_PAYMENT,
                format!(
                    "{field}.perMTok `{p}` is too small: {p}/{APPROX_TOKENS_PER_REQUEST} per request rounds to 0 at {decimals} decimals"
                ),
            ));
        }
        return Ok((format_atomic(atomic, decimals), PriceModel::PerMTok));
    }
    if let Some(p) = given(&price.per_hour) {
        return Ok((p.to_string(), PriceModel::PerHour));
    }
    Err(OfferProblem::new(
        reason::NO_PRICE,
        if price.per_epoch.is_some() {
            format!(
                "{field}: only perEpoch is set, which the verifier cannot charge per request; set perRequest, perMTok or perHour"
            )
        } else {
            format!("no price: set {field}.perRequest (or perMTok, perHour)")
        },
    ))
}

/// `"1.5"` shifted `places` to the left (`"0.0015"` for 3); `None` unless a plain decimal.
fn shift_left(s: &str, places: usize) -> Option<String> {
    if !crd::is_decimal(s) {
        return None;
    }
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = format!("{int}{frac}");
    let point = int.len() as isize - places as isize;
    Some(if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs()))
    } else {
        let (a, b) = digits.split_at(point as usize);
        match b.trim_end_matches('0') {
            "" => a.to_string(),
            b => format!("{a}.{b}"),
        }
    })
}

/// The route rule of one ServiceOffer (see the module docs), or why it has none. Whether the
/// price fits the asset and who is paid is checked when the rule is resolved against the
/// verifier's base config (its `chain` and `wallet` fill what the offer leaves empty).
pub fn from_service_offer(
    offer: &ServiceOffer,
    registry: &Registry,
) -> Result<RouteRule, OfferProblem> {
    let problems = crd::validate_offer_spec(&offer.spec);
    if !problems.is_empty() {
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(OfferProblem::new(reason::INVALID_SPEC, text.join("; ")));
    }
    let pay = &offer.spec.payment;
    let asset = pay.asset.clone().unwrap_or_default();
    if let Some(m) = asset.transfer_method.as_deref()
        && m != "eip3009"
    {
        return Err(OfferProblem::new(
            reason::UNSUPPORTED_ASSET,
            format!("asset.transferMethod `{m}` is not supported by the verifier (only eip3009)"),
        ));
    }
    let network = match pay
        .network
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(n) => match registry.resolve(n) {
            Some(known) => Some(known.caip2.clone()),
            None => {
                return Err(OfferProblem::new(
                    reason::UNKNOWN_NETWORK,
                    registry
                        .resolve_or_err(n)
                        .err()
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| format!("unknown network `{n}`")),
                ));
            }
        },
    };
    let decimals = asset
        .decimals
        .and_then(|d| u8::try_from(d).ok())
        .unwrap_or(DEFAULT_PRICE_DECIMALS);
    let (price, _model) = price_of(offer, decimals)?;
    let routes = declared_routes(offer, decimals)?;
    let path = offer.effective_path();
    let strip = path.trim_end_matches('/');
    let text = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    Ok(RouteRule {
        pattern: offer_pattern(&path),
        price,
        description: offer
            .spec
            .registration
            .as_ref()
            .and_then(|r| text(&r.description)),
        pay_to: text(&pay.pay_to),
        network,
        upstream_auth: None,
        offer_namespace: Some(offer_namespace(offer)),
        offer_name: Some(offer_name(offer)),
        upstream_url: offer.upstream_url(),
        strip_prefix: (!strip.is_empty()).then(|| strip.to_string()),
        max_timeout_seconds: pay
            .max_timeout_seconds
            .and_then(|t| u64::try_from(t).ok())
            .filter(|t| *t > 0),
        asset_address: text(&asset.address),
        asset_symbol: text(&asset.symbol),
        asset_decimals: asset.decimals.and_then(|d| u8::try_from(d).ok()),
        eip712_name: text(&asset.eip712_name),
        eip712_version: text(&asset.eip712_version),
        paused: offer.is_paused(),
        routes,
        extra: Default::default(),
    })
}

/// `spec.routes` as the rule's declared routes. `gate: auth` and `freeQuota` (SIWX sign-in)
/// make the whole offer unavailable ([`reason::UNSUPPORTED_GATE`]): served without the
/// sign-in it would be free, and not served it is refused. A path without one meaning, a
/// method twice or a path declared twice is [`reason::INVALID_SPEC`]. A route price is
/// charged like the offer's (perRequest, else perMTok/1000, else perHour).
fn declared_routes(
    offer: &ServiceOffer,
    decimals: u8,
) -> Result<Vec<super::declared::RouteEntry>, OfferProblem> {
    use super::declared::{self, RouteEntry, RoutePrice};
    let mut entries = Vec::with_capacity(offer.spec.routes.len());
    let mut invalid = Vec::new();
    for (j, r) in offer.spec.routes.iter().enumerate() {
        let at = format!("spec.routes[{j}]");
        if r.gate.as_deref().map(str::trim) == Some("auth") {
            return Err(OfferProblem::new(
                reason::UNSUPPORTED_GATE,
                format!(
                    "{at} ({}): gate auth is not supported yet by obol; use paid or free",
                    r.path
                ),
            ));
        }
        if r.free_quota.is_some() {
            return Err(OfferProblem::new(
                reason::UNSUPPORTED_GATE,
                format!(
                    "{at} ({}): freeQuota (free calls per signed-in wallet) is not supported yet by obol; remove it",
                    r.path
                ),
            ));
        }
        let price = match &r.price {
            Some(p) => Some(RoutePrice::Decimal(
                price_of_price(p, &format!("{at}.price"), decimals)?.0,
            )),
            None => None,
        };
        let entry = RouteEntry {
            path: r.path.clone(),
            methods: r.methods.clone(),
            gate: r.gate.clone(),
            price,
            summary: r.summary.clone(),
            extra: Default::default(),
        };
        if let Err(ps) = declared::check_entry(&entry) {
            invalid.extend(ps.into_iter().map(|m| format!("{at}: {m}")));
        }
        entries.push(entry);
    }
    invalid.extend(
        declared::check_list(&entries)
            .into_iter()
            .map(|m| format!("spec.routes: {m}")),
    );
    if invalid.is_empty() {
        Ok(entries)
    } else {
        Err(OfferProblem::new(reason::INVALID_SPEC, invalid.join("; ")))
    }
}

fn offer_namespace(offer: &ServiceOffer) -> String {
    offer.metadata.namespace.clone().unwrap_or_default()
}

fn offer_name(offer: &ServiceOffer) -> String {
    offer.metadata.name.clone().unwrap_or_default()
}

/// What the verifier does with `offer`: a paused offer is a paused route; otherwise an offer
/// whose `RoutePublished` condition is `False` is not served; otherwise its route or why it
/// has none.
pub fn render(offer: &ServiceOffer, registry: &Registry) -> Rendered {
    if !offer.is_paused() && offer.route_published() == Some(false) {
        return Rendered::Unpublished;
    }
    match from_service_offer(offer, registry) {
        Ok(rule) => Rendered::Route(Box::new(rule)),
        Err(problem) => {
            let path = offer.effective_path();
            Rendered::Invalid {
                pattern: crd::is_offer_path(&path).then(|| offer_pattern(&path)),
                problem,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// `--upstream` on a cluster

/// An in-cluster Service named by `obol sell create --upstream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRef {
    pub service: String,
    /// `None`: the offer's namespace.
    pub namespace: Option<String>,
    pub port: u16,
}

/// Parses `SERVICE[.NAMESPACE]:PORT`, optionally written as a URL
/// (`http://SERVICE.NAMESPACE.svc.cluster.local:PORT`, with or without `.svc` /
/// `.svc.cluster.local`). The port is required; a path is refused (the offer's path is
/// stripped and the rest forwarded as is).
pub fn parse_service_upstream(s: &str) -> Result<ServiceRef, String> {
    let t = s.trim();
    let rest = t
        .strip_prefix("http://")
        .or_else(|| t.strip_prefix("https://"))
        .unwrap_or(t);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err(format!(
            "`{s}`: name a Service and port without a path, e.g. ollama.llm:11434"
        ));
    }
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Err(format!(
            "`{s}` names no port: use SERVICE[.NAMESPACE]:PORT, e.g. ollama.llm:11434"
        ));
    };
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("`{s}`: port `{port}` is not in 1..65535"))?;
    let host = host
        .strip_suffix(".svc.cluster.local")
        .or_else(|| host.strip_suffix(".svc"))
        .unwrap_or(host);
    let (service, namespace) = match host.split_once('.') {
        Some((svc, ns)) => (svc, Some(ns)),
        None => (host, None),
    };
    let dns_label = |x: &str| {
        (1..=63).contains(&x.len())
            && x.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !x.starts_with('-')
            && !x.ends_with('-')
    };
    if !dns_label(service) {
        return Err(format!(
            "`{s}`: `{service}` is not a Service name (lowercase letters, digits, '-')"
        ));
    }
    if let Some(ns) = namespace
        && !dns_label(ns)
    {
        return Err(format!(
            "`{s}`: `{ns}` is not a namespace name (lowercase letters, digits, '-'); use SERVICE.NAMESPACE:PORT"
        ));
    }
    Ok(ServiceRef {
        service: service.to_string(),
        namespace: namespace.map(str::to_string),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::types::{
        Condition, OfferAsset, OfferPayment, OfferPrice, OfferRegistration, OfferRoute,
        OfferUpstream, ServiceOfferSpec, ServiceOfferStatus, condition,
    };
    use crate::offers::config::PricingConfig;
    use crate::offers::resolve::resolve_rule;
    use alloy_primitives::U256;

    const PAY: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

    fn offer(price: OfferPrice) -> ServiceOffer {
        let mut o = ServiceOffer::new(
            "qwen",
            ServiceOfferSpec {
                offer_type: Some("http".into()),
                upstream: Some(OfferUpstream {
                    service: "ollama".into(),
                    namespace: Some("models".into()),
                    port: Some(11434),
                    health_path: None,
                }),
                payment: OfferPayment {
                    network: Some("base-sepolia".into()),
                    pay_to: Some(PAY.into()),
                    price,
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        o.metadata.namespace = Some("llm".into());
        o
    }

    fn per_request(p: &str) -> OfferPrice {
        OfferPrice {
            per_request: Some(p.into()),
            ..Default::default()
        }
    }

    fn rule(o: &ServiceOffer) -> RouteRule {
        from_service_offer(o, &Registry::builtin()).unwrap()
    }

    #[test]
    fn an_offer_renders_like_the_obol_stack_source() {
        let mut o = offer(per_request("0.001"));
        o.spec.path = Some("/services/qwen/".into());
        o.spec.payment.max_timeout_seconds = Some(120);
        o.spec.registration = Some(OfferRegistration {
            description: Some("a model".into()),
            ..Default::default()
        });
        let r = rule(&o);
        assert_eq!(r.pattern, "/services/qwen/*", "trailing / trimmed, then /*");
        assert_eq!(r.strip_prefix.as_deref(), Some("/services/qwen"));
        assert_eq!(r.price, "0.001");
        assert_eq!(
            r.network.as_deref(),
            Some("eip155:84532"),
            "normalised to CAIP-2"
        );
        assert_eq!(r.pay_to.as_deref(), Some(PAY));
        assert_eq!(r.offer_namespace.as_deref(), Some("llm"));
        assert_eq!(r.offer_name.as_deref(), Some("qwen"));
        assert_eq!(
            r.upstream_url.as_deref(),
            Some("http://ollama.models.svc.cluster.local:11434")
        );
        assert_eq!(r.max_timeout_seconds, Some(120));
        assert_eq!(r.description.as_deref(), Some("a model"));
        assert!(!r.paused);
        assert!(r.upstream_auth.is_none());

        // Default path: /services/<name>.
        let r = rule(&offer(per_request("1")));
        assert_eq!(r.pattern, "/services/qwen/*");
        // The root path serves everything.
        let mut o = offer(per_request("1"));
        o.spec.path = Some("/".into());
        let r = rule(&o);
        assert_eq!(r.pattern, "/*");
        assert_eq!(r.strip_prefix, None);
    }

    #[test]
    fn price_models() {
        // perRequest wins over the others.
        let r = rule(&offer(OfferPrice {
            per_request: Some("0.002".into()),
            per_m_tok: Some("5".into()),
            per_hour: Some("9".into()),
            ..Default::default()
        }));
        assert_eq!(r.price, "0.002");
        // perMTok / 1000, exact.
        let o = offer(OfferPrice {
            per_m_tok: Some("1.5".into()),
            per_hour: Some("9".into()),
            ..Default::default()
        });
        assert_eq!(
            price_of(&o, 6).unwrap(),
            ("0.0015".to_string(), PriceModel::PerMTok)
        );
        assert_eq!(rule(&o).price, "0.0015");
        // ... rounded half up to the asset's decimals.
        let o = offer(OfferPrice {
            per_m_tok: Some("0.0025".into()),
            ..Default::default()
        });
        assert_eq!(rule(&o).price, "0.000003");
        let o = offer(OfferPrice {
            per_m_tok: Some("2000".into()),
            ..Default::default()
        });
        assert_eq!(rule(&o).price, "2");
        // Too small to charge.
        let o = offer(OfferPrice {
            per_m_tok: Some("0.0001".into()),
            ..Default::default()
        });
        let e = from_service_offer(&o, &Registry::builtin()).unwrap_err();
        assert_eq!(e.reason, reason::INVALID_PAYMENT);
        assert!(e.message.contains("rounds to 0"), "{e}");
        // perHour is charged per request.
        let o = offer(OfferPrice {
            per_hour: Some("0.5".into()),
            ..Default::default()
        });
        assert_eq!(
            price_of(&o, 6).unwrap(),
            ("0.5".to_string(), PriceModel::PerHour)
        );
        // perEpoch alone, or nothing: no price.
        let o = offer(OfferPrice {
            per_epoch: Some("1".into()),
            ..Default::default()
        });
        let e = from_service_offer(&o, &Registry::builtin()).unwrap_err();
        assert_eq!(e.reason, reason::NO_PRICE);
        assert!(e.message.contains("perEpoch"), "{e}");
        // An unparsable price breaks the CRD's rules.
        let e = from_service_offer(&offer(per_request("abc")), &Registry::builtin()).unwrap_err();
        assert_eq!(e.reason, reason::INVALID_SPEC);
        assert!(e.message.contains("spec.payment.price.perRequest"), "{e}");
    }

    #[test]
    fn shifting_decimals() {
        assert_eq!(shift_left("1.5", 3).as_deref(), Some("0.0015"));
        assert_eq!(shift_left("1500", 3).as_deref(), Some("1.5"));
        assert_eq!(shift_left("1000", 3).as_deref(), Some("1"));
        assert_eq!(shift_left("12", 3).as_deref(), Some("0.012"));
        assert_eq!(shift_left("0.1", 3).as_deref(), Some("0.0001"));
        assert_eq!(shift_left("x", 3), None);
    }

    #[test]
    fn an_empty_network_inherits_the_verifier_chain_and_wallet() {
        let mut o = offer(per_request("0.01"));
        o.spec.payment.network = None;
        o.spec.payment.pay_to = None;
        let r = rule(&o);
        assert_eq!(r.network, None);
        assert_eq!(r.pay_to, None);
        let base = PricingConfig {
            chain: Some("base".into()),
            wallet: Some(PAY.into()),
            ..Default::default()
        };
        let route = resolve_rule(&base, &Registry::builtin(), 0, &r).unwrap();
        assert_eq!(route.chain(), "eip155:8453", "the verifier's chain");
        assert_eq!(route.amount, U256::from(10_000u64));
        assert_eq!(
            route.pay_to,
            PAY.parse::<alloy_primitives::Address>().unwrap()
        );
        // Without the file's chain: base-sepolia, the default.
        let route = resolve_rule(
            &PricingConfig {
                wallet: Some(PAY.into()),
                ..Default::default()
            },
            &Registry::builtin(),
            0,
            &r,
        )
        .unwrap();
        assert_eq!(route.chain(), "eip155:84532");
        // No payTo anywhere: the rule does not resolve.
        assert!(resolve_rule(&PricingConfig::default(), &Registry::builtin(), 0, &r).is_err());
    }

    #[test]
    fn unknown_networks_and_assets_are_named() {
        let mut o = offer(per_request("0.01"));
        o.spec.payment.network = Some("atlantis".into());
        let e = from_service_offer(&o, &Registry::builtin()).unwrap_err();
        assert_eq!(e.reason, reason::UNKNOWN_NETWORK);
        assert!(e.message.contains("atlantis"), "{e}");

        let mut o = offer(per_request("1"));
        o.spec.payment.asset = Some(OfferAsset {
            address: Some("0x0a09371a8b011d5110656ceBCc70603e53FD2c78".into()),
            symbol: Some("OBOL".into()),
            decimals: Some(18),
            transfer_method: Some("permit2".into()),
            eip712_name: Some("Obol Network".into()),
            eip712_version: Some("1".into()),
        });
        let e = from_service_offer(&o, &Registry::builtin()).unwrap_err();
        assert_eq!(e.reason, reason::UNSUPPORTED_ASSET);
        o.spec.payment.asset.as_mut().unwrap().transfer_method = Some("eip3009".into());
        let r = rule(&o);
        assert_eq!(r.asset_decimals, Some(18));
        assert_eq!(r.asset_symbol.as_deref(), Some("OBOL"));
        assert_eq!(r.eip712_name.as_deref(), Some("Obol Network"));
        let route = resolve_rule(&PricingConfig::default(), &Registry::builtin(), 0, &r).unwrap();
        assert_eq!(route.amount, U256::from(10u64).pow(U256::from(18u64)));

        // A bad payTo breaks the CRD's pattern.
        let mut o = offer(per_request("1"));
        o.spec.payment.pay_to = Some("0x12".into());
        let e = from_service_offer(&o, &Registry::builtin()).unwrap_err();
        assert_eq!(e.reason, reason::INVALID_SPEC);
        assert!(e.message.contains("payTo"), "{e}");
    }

    fn with_route_published(mut o: ServiceOffer, status: &str) -> ServiceOffer {
        o.status = Some(ServiceOfferStatus {
            conditions: vec![Condition::new(condition::ROUTE_PUBLISHED, status, "X", "")],
            ..Default::default()
        });
        o
    }

    #[test]
    fn paused_and_route_published_filtering() {
        let reg = Registry::builtin();
        // Plain: served.
        assert!(matches!(render(&offer(per_request("1")), &reg), Rendered::Route(r) if !r.paused));
        // RoutePublished True or Unknown: served.
        let o = with_route_published(offer(per_request("1")), "True");
        assert!(matches!(render(&o, &reg), Rendered::Route(_)));
        let o = with_route_published(offer(per_request("1")), "Unknown");
        assert!(matches!(render(&o, &reg), Rendered::Route(_)));
        // Explicitly False: not served.
        let o = with_route_published(offer(per_request("1")), "False");
        assert_eq!(render(&o, &reg), Rendered::Unpublished);
        // Paused: a paused route (the documented 404 offer_paused), even when the old
        // controller marked the route unpublished because of the pause.
        let mut o = with_route_published(offer(per_request("1")), "False");
        crate::k8s::children::set_paused(&mut o.metadata, true);
        assert!(matches!(render(&o, &reg), Rendered::Route(r) if r.paused));
        // Broken: invalid, with the pattern to block.
        let o = offer(per_request("nope"));
        match render(&o, &reg) {
            Rendered::Invalid { pattern, problem } => {
                assert_eq!(pattern.as_deref(), Some("/services/qwen/*"));
                assert_eq!(problem.reason, reason::INVALID_SPEC);
            }
            other => panic!("{other:?}"),
        }
        let mut o = offer(per_request("nope"));
        o.spec.path = Some("no-slash".into());
        assert!(matches!(
            render(&o, &reg),
            Rendered::Invalid { pattern: None, .. }
        ));
    }

    fn route(path: &str) -> OfferRoute {
        OfferRoute {
            path: path.into(),
            ..Default::default()
        }
    }

    #[test]
    fn declared_routes_become_the_rules_routes() {
        let mut o = offer(per_request("0.01"));
        o.spec.routes = vec![
            OfferRoute {
                methods: vec!["POST".into()],
                price: Some(per_request("0.5")),
                summary: Some("submit".into()),
                ..route("/submit")
            },
            OfferRoute {
                gate: Some("free".into()),
                ..route("/jobs/*")
            },
            OfferRoute {
                price: Some(OfferPrice {
                    per_m_tok: Some("2".into()),
                    ..Default::default()
                }),
                ..route("/v1/chat/completions")
            },
        ];
        let r = rule(&o);
        assert_eq!(r.routes.len(), 3);
        assert_eq!(r.routes[0].methods, ["POST"]);
        assert_eq!(
            r.routes[0].price,
            Some(crate::offers::RoutePrice::Decimal("0.5".into()))
        );
        assert_eq!(
            r.routes[2].price,
            Some(crate::offers::RoutePrice::Decimal("0.002".into())),
            "perMTok/1000 like the offer's"
        );
        let base = PricingConfig::default();
        let routes =
            crate::offers::resolve::resolve_routes(&base, &Registry::builtin(), 0, &r).unwrap();
        let got: Vec<(&str, crate::offers::Gate, U256)> = routes
            .iter()
            .map(|r| (r.pattern.as_str(), r.gate, r.amount))
            .collect();
        use crate::offers::Gate;
        assert_eq!(
            got,
            [
                (
                    "/services/qwen/v1/chat/completions",
                    Gate::Paid,
                    U256::from(2_000u64)
                ),
                ("/services/qwen/submit", Gate::Paid, U256::from(500_000u64)),
                ("/services/qwen/jobs/*", Gate::Free, U256::from(10_000u64)),
                ("/services/qwen/*", Gate::Undeclared, U256::from(10_000u64)),
            ]
        );
        assert!(
            routes
                .iter()
                .all(|r| r.offer_namespace == "llm" && r.offer_name == "qwen")
        );
    }

    #[test]
    fn an_offer_with_gate_auth_or_free_quota_is_unavailable_never_free() {
        let reg = Registry::builtin();
        for r in [
            OfferRoute {
                gate: Some("auth".into()),
                ..route("/reports/*")
            },
            OfferRoute {
                gate: Some("free".into()),
                free_quota: Some(5),
                ..route("/reports/*")
            },
        ] {
            let mut o = offer(per_request("0.01"));
            o.spec.routes = vec![route("/a"), r];
            match render(&o, &reg) {
                Rendered::Invalid { pattern, problem } => {
                    assert_eq!(pattern.as_deref(), Some("/services/qwen/*"), "blocked");
                    assert_eq!(problem.reason, reason::UNSUPPORTED_GATE);
                    assert!(
                        problem.message.contains("not supported yet by obol"),
                        "{problem}"
                    );
                    assert!(problem.message.contains("spec.routes[1]"), "{problem}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn hostile_declared_routes_make_the_offer_invalid() {
        let reg = Registry::builtin();
        for (routes, needle) in [
            (vec![route("/a/..")], "\"..\" segment"),
            (vec![route("//a")], "empty segment"),
            (vec![route("/a*")], "last segment"),
            (vec![route("/a"), route("/a")], "declared twice"),
            (
                vec![OfferRoute {
                    methods: vec!["GET".into(), "GET".into()],
                    ..route("/a")
                }],
                "twice",
            ),
            (
                vec![OfferRoute {
                    methods: vec!["get".into()],
                    ..route("/a")
                }],
                "spec.routes[0].methods",
            ),
            (
                vec![OfferRoute {
                    price: Some(per_request("1e-30")),
                    ..route("/a")
                }],
                "spec.routes[0].price.perRequest",
            ),
        ] {
            let mut o = offer(per_request("0.01"));
            o.spec.routes = routes;
            match render(&o, &reg) {
                Rendered::Invalid { pattern, problem } => {
                    assert_eq!(pattern.as_deref(), Some("/services/qwen/*"));
                    assert_eq!(problem.reason, reason::INVALID_SPEC);
                    assert!(problem.message.contains(needle), "{needle}: {problem}");
                }
                other => panic!("{needle}: {other:?}"),
            }
        }
        // Too many decimals for the asset: the route does not resolve.
        let mut o = offer(per_request("0.01"));
        o.spec.routes = vec![OfferRoute {
            price: Some(per_request("0.0000001")),
            ..route("/a")
        }];
        let r = rule(&o);
        let e = crate::offers::resolve::resolve_routes(&PricingConfig::default(), &reg, 0, &r)
            .unwrap_err()
            .join("; ");
        assert!(e.contains("routes[0]: price"), "{e}");
    }

    #[test]
    fn service_upstreams() {
        let p = |s: &str| parse_service_upstream(s);
        assert_eq!(
            p("ollama:11434").unwrap(),
            ServiceRef {
                service: "ollama".into(),
                namespace: None,
                port: 11434
            }
        );
        let full = ServiceRef {
            service: "ollama".into(),
            namespace: Some("llm".into()),
            port: 8080,
        };
        for s in [
            "ollama.llm:8080",
            "http://ollama.llm:8080",
            "http://ollama.llm.svc:8080",
            "http://ollama.llm.svc.cluster.local:8080",
            "http://ollama.llm.svc.cluster.local:8080/",
            "ollama.llm.svc.cluster.local:8080",
        ] {
            assert_eq!(p(s).unwrap(), full, "{s}");
        }
        assert!(p("ollama").unwrap_err().contains("no port"));
        assert!(p("ollama:0").is_err());
        assert!(p("ollama:99999").is_err());
        assert!(p("http://ollama.llm:80/v1").unwrap_err().contains("path"));
        assert!(p("Ollama:80").is_err());
        assert!(p("a.b.c:80").is_err(), "namespace with a dot");
        assert!(p("http://127.0.0.1:9000").is_err());
    }
}
