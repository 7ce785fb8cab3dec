//! The payment gate: everything between "this path is a paid route" and "serve it".
//!
//! Order of checks (cheap and local first, so a bad payment never reaches the facilitator):
//! 1. payment header present (`PAYMENT-SIGNATURE`, else `X-PAYMENT`)  — else 402;
//! 2. it decodes (base64 JSON of a v1 or v2 payment)                  — else 400;
//! 3. it answers this route's requirement (v2 `accepted`: scheme, network, amount, asset,
//!    payTo; v1: scheme and network)                                   — else 402;
//! 4. local EIP-3009 checks: signature, recipient, exact amount, time window — else 402;
//! 5. replay guard claim of (chain, asset, from, nonce)               — else 409;
//! 6. facilitator `/verify`: unreachable/timeout/5xx → 503 (retriable), invalid → 402.
//!
//! [`settle`] then turns a verified payment into a receipt, or into the right refusal.

use std::sync::Arc;

use alloy_primitives::Address;
use arc_swap::ArcSwapOption;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Value, json};

use super::replay::{Claim, ReplayGuard, ReplayKey, Replayed};
use super::routes::{LiveRoute, RouteTable};
use crate::offers::Route;
use crate::x402::codec::{PAYMENT_SIGNATURE, X_PAYMENT};
use crate::x402::eip3009::{self, Expected};
use crate::x402::facilitator::FacilitatorError;
use crate::x402::wire::{PaymentPayload, ResourceInfo, SettleResponse};

/// `X-Payment-Payer`: the verified payer, set on granted requests (upstream / Traefik).
pub const X_PAYMENT_PAYER: &str = "x-payment-payer";

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Which x402 version an answer is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    V1,
    V2,
}

/// The outcome of [`evaluate`].
pub enum Decision {
    /// Answer with this (402, 400, 409, 503).
    Refused(Response),
    /// A verified payment, claimed in the replay guard.
    Paid(Box<Paid>),
}

/// A verified payment on its way to being served.
pub struct Paid {
    pub live: Arc<LiveRoute>,
    pub payload: PaymentPayload,
    /// What the facilitator gets as `paymentRequirements` (this route's, never the client's).
    pub requirements: Value,
    pub payer: Address,
    pub claim: Claim,
    pub style: Style,
    pub resource_url: String,
}

impl Paid {
    pub fn route(&self) -> &Route {
        &self.live.route
    }
}

// ---------------------------------------------------------------------------------------------
// responses

/// A JSON error body: `{"error", "reason", "detail"?, "retriable"?}` plus `extra` fields.
pub fn error_json(
    status: StatusCode,
    error: &str,
    reason: &str,
    detail: Option<&str>,
    retriable: Option<bool>,
    extra: Option<Value>,
) -> Response {
    let mut body = json!({"error": error, "reason": reason});
    if let Some(d) = detail {
        body["detail"] = Value::from(d);
    }
    if let Some(r) = retriable {
        body["retriable"] = Value::from(r);
    }
    if let Some(Value::Object(m)) = extra {
        for (k, v) in m {
            body[k] = v;
        }
    }
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html") || v.contains("application/xhtml+xml"))
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The path of an absolute URL (`https://h/a/b?q` -> `/a/b`), without parsing it fully.
fn url_path(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| &url[i + 3..]).unwrap_or(url);
    let path = after_scheme
        .find('/')
        .map(|i| &after_scheme[i..])
        .unwrap_or("/");
    crate::offers::path_of(path)
}

fn description(route: &Route, resource_url: &str) -> String {
    if route.description.is_empty() {
        format!("Payment required for {}", url_path(resource_url))
    } else {
        route.description.clone()
    }
}

/// The v1 requirement of a route whose network has a v1 name.
fn requirement_v1(route: &Route, resource_url: &str) -> Option<Value> {
    let v1 = route.network.v1_name.as_deref()?;
    let r = route.requirement();
    Some(json!({
        "scheme": r.scheme,
        "network": v1,
        "maxAmountRequired": r.amount,
        "asset": r.asset,
        "payTo": r.pay_to,
        "resource": resource_url,
        "description": description(route, resource_url),
        "mimeType": "application/json",
        "maxTimeoutSeconds": r.max_timeout_seconds,
        "extra": r.extra,
    }))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The 402 answer: v2 body + `PAYMENT-REQUIRED` header (or the v1 body when answering a v1
/// payment), an HTML page for browsers (still 402, same header).
pub fn payment_required(
    route: &Route,
    resource_url: &str,
    error: &str,
    style: Style,
    html: bool,
) -> Response {
    if style == Style::V1
        && let Some(req) = requirement_v1(route, resource_url)
    {
        let body = json!({"x402Version": 1, "error": error, "accepts": [req]});
        let mut resp = (StatusCode::PAYMENT_REQUIRED, axum::Json(body)).into_response();
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return resp;
    }
    let (body, encoded) = render_v2(route, resource_url, error);
    if html {
        let mut resp = v2_response(Body::from(html_page(route, resource_url)), encoded);
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        return resp;
    }
    v2_response(Body::from(body), encoded)
}

/// The error of a 402 to a request without a payment.
pub const PAYMENT_SIGNATURE_REQUIRED: &str = "PAYMENT-SIGNATURE header is required";

/// The v2 402 body and its base64 `PAYMENT-REQUIRED` header value (cached per route by the
/// caller).
fn render_v2(route: &Route, resource_url: &str, error: &str) -> (Bytes, HeaderValue) {
    let resource = ResourceInfo {
        url: resource_url.to_string(),
        description: Some(description(route, resource_url)),
        mime_type: Some("application/json".to_string()),
    };
    let body = format!(
        r#"{{"x402Version":2,"error":{},"resource":{},"accepts":[{}]}}"#,
        serde_json::to_string(error).unwrap_or_else(|_| "\"\"".into()),
        serde_json::to_string(&resource).unwrap_or_else(|_| "{}".into()),
        route.requirement_json(),
    );
    let encoded = HeaderValue::from_maybe_shared(Bytes::from(b64(body.as_bytes())))
        .unwrap_or_else(|_| HeaderValue::from_static(""));
    (Bytes::from(body), encoded)
}

/// A 402 with the v2 headers (JSON content type; the HTML page replaces it).
fn v2_response(body: Body, payment_required: HeaderValue) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::PAYMENT_REQUIRED;
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        HeaderName::from_static(PAYMENT_REQUIRED_LOWER),
        payment_required,
    );
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// `PAYMENT-REQUIRED` as a header name (lower case, as `HeaderName::from_static` wants it).
const PAYMENT_REQUIRED_LOWER: &str = "payment-required";

/// The last unpaid 402 a route rendered, for the resource URL it was rendered for. Clients
/// probe the same URL again and again (an agent before paying, a crawler, a load balancer's
/// health check), and the answer depends only on the route and that URL, so a repeat costs one
/// string comparison and two reference-count increments instead of JSON + base64 rendering.
/// One entry per route: a miss renders and replaces it. A reload builds new routes, so a cached
/// answer never outlives the route it was rendered from.
#[derive(Debug, Default)]
pub struct UnpaidCache(ArcSwapOption<Rendered402>);

#[derive(Debug)]
pub struct Rendered402 {
    resource_url: Box<str>,
    body: Bytes,
    header: HeaderValue,
}

/// The 402 to a request without a payment (v2; the HTML page for browsers), from the route's
/// [`UnpaidCache`] when it was rendered for the same resource URL.
pub fn unpaid(live: &LiveRoute, resource_url: &str, html: bool) -> Response {
    if html {
        return payment_required(
            &live.route,
            resource_url,
            PAYMENT_SIGNATURE_REQUIRED,
            Style::V2,
            true,
        );
    }
    if let Some(hit) = &*live.unpaid.0.load()
        && *hit.resource_url == *resource_url
    {
        return v2_response(Body::from(hit.body.clone()), hit.header.clone());
    }
    let (body, header) = render_v2(&live.route, resource_url, PAYMENT_SIGNATURE_REQUIRED);
    let resp = v2_response(Body::from(body.clone()), header.clone());
    live.unpaid.0.store(Some(Arc::new(Rendered402 {
        resource_url: resource_url.into(),
        body,
        header,
    })));
    resp
}

fn html_page(route: &Route, resource_url: &str) -> String {
    let price = format!("{} {}", route.price, route.asset.symbol);
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Payment required</title></head>\n\
         <body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\">\n\
         <h1>402 Payment required</h1>\n<p>{desc}</p>\n\
         <table>\n<tr><th align=left>Price</th><td>{price}</td></tr>\n\
         <tr><th align=left>Network</th><td>{net} ({caip2})</td></tr>\n\
         <tr><th align=left>Pay to</th><td><code>{pay_to}</code></td></tr>\n\
         <tr><th align=left>Resource</th><td><code>{url}</code></td></tr>\n</table>\n\
         <p>Pay with an x402 client, e.g. <code>obol buy pay {url}</code>. The payment \
         requirements are in the <code>PAYMENT-REQUIRED</code> response header.</p>\n\
         </body></html>\n",
        desc = html_escape(&description(route, resource_url)),
        price = html_escape(&price),
        net = html_escape(&route.network.name),
        caip2 = html_escape(&route.network.caip2),
        pay_to = route.pay_to.to_checksum(None),
        url = html_escape(resource_url),
    )
}

/// Headers carrying a settlement receipt (`PAYMENT-RESPONSE` and `X-PAYMENT-RESPONSE`).
pub fn receipt_headers(settle: &SettleResponse) -> [(HeaderName, HeaderValue); 2] {
    let value = b64(&serde_json::to_vec(settle).unwrap_or_default());
    let value = HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""));
    [
        (HeaderName::from_static("payment-response"), value.clone()),
        (HeaderName::from_static("x-payment-response"), value),
    ]
}

// ---------------------------------------------------------------------------------------------
// evaluation

/// The payment header: `PAYMENT-SIGNATURE` (v2) wins over `X-PAYMENT` (v1, or v2 from the
/// obol-stack buyers). `Some(Err)` when the value is not text.
fn payment_header(headers: &HeaderMap) -> Option<Result<(&'static str, &str), ()>> {
    for name in [PAYMENT_SIGNATURE, X_PAYMENT] {
        if let Some(v) = headers.get(name) {
            return Some(v.to_str().map(|s| (name, s.trim())).map_err(|_| ()));
        }
    }
    None
}

fn same_address(a: Option<&str>, b: Address) -> bool {
    a.and_then(crate::offers::resolve::parse_address) == Some(b)
}

/// Checks that the payment answers this route; returns the requirements the facilitator gets.
fn match_requirement(route: &Route, payload: &PaymentPayload, resource_url: &str) -> Option<Value> {
    let net_ok = |n: &str| {
        n.eq_ignore_ascii_case(&route.network.caip2)
            || route
                .network
                .v1_name
                .as_deref()
                .is_some_and(|v1| n.eq_ignore_ascii_case(v1))
    };
    match payload {
        PaymentPayload::V2(p) => {
            let a = &p.accepted;
            let s = |k: &str| a.get(k).and_then(Value::as_str);
            let amount_ok = s("amount")
                .and_then(|x| crate::x402::amount::parse_atomic(x).ok())
                .is_some_and(|x| x == route.amount);
            (s("scheme") == Some("exact")
                && s("network").is_some_and(net_ok)
                && amount_ok
                && same_address(s("asset"), route.asset.address)
                && same_address(s("payTo"), route.pay_to))
            .then(|| route.requirement_value())
        }
        PaymentPayload::V1(p) => {
            let v1 = route.network.v1_name.as_deref()?;
            (p.scheme == "exact" && p.network.eq_ignore_ascii_case(v1))
                .then(|| requirement_v1(route, resource_url))
                .flatten()
        }
    }
}

/// Runs checks 1-6 for a request that matched the paid, unpaused route `live`.
pub async fn evaluate(
    replay: &Arc<ReplayGuard>,
    table: &RouteTable,
    live: &Arc<LiveRoute>,
    headers: &HeaderMap,
    resource_url: &str,
) -> Decision {
    let route = &live.route;
    let m = &live.series;
    m.request();
    let refuse = |resp: Response| {
        m.failed();
        Decision::Refused(resp)
    };

    let (name, value) = match payment_header(headers) {
        None => {
            m.required();
            return Decision::Refused(unpaid(live, resource_url, wants_html(headers)));
        }
        Some(Err(())) => {
            return refuse(error_json(
                StatusCode::BAD_REQUEST,
                "Invalid payment header",
                "invalid_payment_header",
                Some("the header value is not ASCII text"),
                Some(false),
                None,
            ));
        }
        Some(Ok(nv)) => nv,
    };
    let payload = match PaymentPayload::from_header(name, value) {
        Ok(p) => p,
        Err(e) => {
            return refuse(error_json(
                StatusCode::BAD_REQUEST,
                "Invalid payment header",
                "invalid_payment_header",
                Some(&format!("{name}: {e}")),
                Some(false),
                None,
            ));
        }
    };
    let style = if payload.version() == 1 && route.network.v1_name.is_some() {
        Style::V1
    } else {
        Style::V2
    };
    let Some(requirements) = match_requirement(route, &payload, resource_url) else {
        return refuse(payment_required(
            route,
            resource_url,
            "no_matching_requirement",
            style,
            false,
        ));
    };

    let now = unix_now();
    let expected = Expected::for_asset(
        route.network.chain_id,
        &route.asset,
        route.pay_to,
        route.amount,
        route.max_timeout_seconds,
    );
    let checked = match eip3009::check(payload.evm(), &expected, now) {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(offer = %route.display_name(), reason = e.reason(), "payment refused: {e}");
            return refuse(payment_required(
                route,
                resource_url,
                e.reason(),
                style,
                false,
            ));
        }
    };

    let key = ReplayKey {
        chain_id: route.network.chain_id,
        asset: route.asset.address,
        from: checked.payer,
        nonce: checked.nonce,
    };
    let claim = match replay.claim(key, checked.valid_before, now) {
        Ok(c) => c,
        Err(r) => {
            tracing::info!(offer = %route.display_name(), payer = %checked.payer, "payment refused: {r}");
            return refuse(error_json(
                StatusCode::CONFLICT,
                &r.to_string(),
                "payment_replayed",
                Some(match r {
                    Replayed::InFlight => {
                        "another request is using this payment right now; if it fails, the same payment can be retried"
                    }
                    Replayed::Used => "each payment buys one request; sign a new one",
                }),
                Some(r == Replayed::InFlight),
                None,
            ));
        }
    };

    // A retry of a payment whose settlement outcome was unknown was verified before and may
    // already be settled (then /verify would call it used): go straight to settlement.
    if !claim.retry_of_unsettled() {
        match table.facilitator.verify(&payload, &requirements).await {
            Ok(v) if v.is_valid => {}
            Ok(v) => {
                let reason = v.invalid_reason.unwrap_or_else(|| "payment_invalid".into());
                tracing::info!(offer = %route.display_name(), %reason, "payment invalid (facilitator)");
                return refuse(payment_required(route, resource_url, &reason, style, false));
            }
            Err(FacilitatorError::InvalidPayment {
                reason, message, ..
            }) => {
                tracing::info!(
                    offer = %route.display_name(),
                    %reason,
                    message = message.as_deref().unwrap_or(""),
                    "payment invalid (facilitator)"
                );
                return refuse(payment_required(route, resource_url, &reason, style, false));
            }
            Err(e) => {
                tracing::warn!(offer = %route.display_name(), "payment verification failed: {e}");
                let reason = match e {
                    FacilitatorError::Unreachable { .. }
                    | FacilitatorError::Timeout { .. }
                    | FacilitatorError::Transport { .. } => "facilitator_unreachable",
                    _ => "facilitator_error",
                };
                // The claim is dropped: the buyer may retry with the same payment.
                return Decision::Refused(error_json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Payment verification failed",
                    reason,
                    Some(&e.to_string()),
                    Some(true),
                    Some(json!({
                        "hint": "nothing was charged; retry later with the same payment header",
                    })),
                ));
            }
        }
    }
    m.verified();
    Decision::Paid(Box::new(Paid {
        live: Arc::clone(live),
        payload,
        requirements,
        payer: checked.payer,
        claim,
        style,
        resource_url: resource_url.to_string(),
    }))
}

// ---------------------------------------------------------------------------------------------
// settlement

/// The result of [`settle`].
pub enum Settlement {
    /// Settled: the receipt to attach; the claim is consumed and the charge recorded.
    Settled(SettleResponse),
    /// Not settled, or outcome unknown: answer with this.
    Failed(Response),
}

/// Whether a settle refusal means the authorization's nonce is already used on chain.
fn nonce_used(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    r.contains("nonce_already_used")
        || r.contains("authorization_used")
        || r == "invalid_transaction_state"
        || r.contains("duplicate_settlement")
}

/// Settles a verified payment and records the charge.
pub async fn settle(table: &RouteTable, paid: Paid) -> Settlement {
    let Paid {
        live,
        payload,
        requirements,
        payer,
        claim,
        style,
        resource_url,
    } = paid;
    let route = &live.route;
    let m = &live.series;
    let retry = claim.retry_of_unsettled();
    let charged = |claim: Claim, receipt: SettleResponse| {
        claim.consume();
        m.charged(route.amount);
        Settlement::Settled(receipt)
    };
    match table.facilitator.settle(&payload, &requirements).await {
        Ok(s) if s.success => {
            tracing::info!(
                offer = %route.display_name(),
                payer = %payer,
                amount = %route.amount,
                transaction = %s.transaction,
                "payment settled"
            );
            charged(claim, s)
        }
        Ok(s) => settle_refused(
            route,
            &resource_url,
            style,
            claim,
            m,
            s.error_reason
                .clone()
                .unwrap_or_else(|| "settlement_failed".into()),
            Some(s),
        ),
        Err(FacilitatorError::InvalidPayment {
            reason,
            transaction,
            payer: p,
            ..
        }) => {
            if retry && nonce_used(&reason) {
                // The earlier attempt, whose answer was lost, did settle: the nonce can only
                // have been used by this very authorization (to us, for the full price).
                tracing::warn!(
                    offer = %route.display_name(),
                    payer = %payer,
                    "settlement retry found the authorization already used: the earlier settlement went through"
                );
                let receipt = SettleResponse {
                    success: true,
                    payer: Some(payer.to_checksum(None)),
                    network: route.network.caip2.clone(),
                    amount: Some(route.amount.to_string()),
                    ..Default::default()
                };
                return charged(claim, receipt);
            }
            let receipt = SettleResponse {
                success: false,
                error_reason: Some(reason.clone()),
                payer: p,
                transaction: transaction.unwrap_or_default(),
                network: route.network.caip2.clone(),
                ..Default::default()
            };
            settle_refused(route, &resource_url, style, claim, m, reason, Some(receipt))
        }
        Err(e @ FacilitatorError::Unreachable { .. }) => {
            // Never sent: nothing moved. Release the claim (drop) unless a previous attempt's
            // outcome is still unknown.
            tracing::warn!(offer = %route.display_name(), "settlement not attempted: {e}");
            drop(claim);
            Settlement::Failed(error_json(
                StatusCode::SERVICE_UNAVAILABLE,
                "Payment settlement failed",
                "facilitator_unreachable",
                Some(&e.to_string()),
                Some(true),
                Some(json!({
                    "paymentVerified": true,
                    "paymentSettled": false,
                    "hint": "nothing was charged; retry later with the same payment header",
                })),
            ))
        }
        Err(e @ FacilitatorError::SettlementUnknown { .. })
        | Err(e @ FacilitatorError::Timeout { .. })
        | Err(e @ FacilitatorError::Transport { .. }) => unknown(route, claim, &e),
        Err(e @ FacilitatorError::Facilitator { status, .. }) if status >= 500 => {
            unknown(route, claim, &e)
        }
        Err(e) => {
            tracing::warn!(offer = %route.display_name(), "settlement refused by the facilitator: {e}");
            drop(claim);
            Settlement::Failed(error_json(
                StatusCode::BAD_GATEWAY,
                "Payment settlement failed",
                "facilitator_error",
                Some(&e.to_string()),
                Some(false),
                Some(json!({"paymentVerified": true, "paymentSettled": false})),
            ))
        }
    }
}

fn unknown(route: &Route, claim: Claim, e: &FacilitatorError) -> Settlement {
    tracing::error!(
        offer = %route.display_name(),
        "settlement outcome unknown, the payment may have settled: {e}"
    );
    claim.mark_unsettled();
    let status = if matches!(e, FacilitatorError::SettlementUnknown { detail } if detail.starts_with("no answer"))
        || matches!(e, FacilitatorError::Timeout { .. })
    {
        StatusCode::GATEWAY_TIMEOUT
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Settlement::Failed(error_json(
        status,
        "Payment settlement outcome unknown",
        "settlement_unknown",
        Some(&e.to_string()),
        Some(true),
        Some(json!({
            "paymentVerified": true,
            "paymentSettled": Value::Null,
            "hint": "the payment may have settled; retry with the SAME payment header, never a new signature",
        })),
    ))
}

fn settle_refused(
    route: &Route,
    resource_url: &str,
    style: Style,
    claim: Claim,
    m: &super::metrics::OfferSeries,
    reason: String,
    receipt: Option<SettleResponse>,
) -> Settlement {
    tracing::info!(offer = %route.display_name(), %reason, "settlement refused");
    // Nothing moved: the payment is not used (unless an earlier attempt's outcome is unknown,
    // which dropping the claim preserves).
    drop(claim);
    m.failed();
    let mut resp = payment_required(route, resource_url, &reason, style, false);
    if let Some(r) = receipt {
        for (k, v) in receipt_headers(&r) {
            resp.headers_mut().insert(k, v);
        }
    }
    Settlement::Failed(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_reasons() {
        assert!(nonce_used("invalid_exact_evm_nonce_already_used"));
        assert!(nonce_used("invalid_transaction_state"));
        assert!(!nonce_used("invalid_exact_evm_failed_to_check_nonce"));
        assert!(!nonce_used("insufficient_funds"));
    }

    #[test]
    fn url_paths() {
        assert_eq!(url_path("https://h.example/a/b?q=1"), "/a/b");
        assert_eq!(url_path("http://h:1"), "/");
        assert_eq!(url_path("http://h:1/"), "/");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            html_escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn receipts_go_in_both_headers() {
        let r = SettleResponse {
            success: true,
            transaction: "0xabc".into(),
            network: "eip155:31337".into(),
            ..Default::default()
        };
        let h = receipt_headers(&r);
        assert_eq!(h[0].0.as_str(), "payment-response");
        assert_eq!(h[1].0.as_str(), "x-payment-response");
        let decoded: SettleResponse =
            crate::x402::codec::decode_header(h[0].1.to_str().unwrap()).unwrap();
        assert_eq!(decoded, r);
    }
}
