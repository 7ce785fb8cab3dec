//! Responding: the 402 answers (v2 body + `PAYMENT-REQUIRED`, the v1 body for v1 payments, an
//! HTML page for browsers), their per-route cache, and the settlement receipt headers. What to
//! answer is decided in [`super::gate`]; other refusals are [`super::refusal::Refusal`]s.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Value, json};

use super::routes::LiveRoute;
use crate::offers::Route;
use crate::x402::wire::{ResourceInfo, SettleResponse};

/// Which x402 version an answer is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    V1,
    V2,
}

/// Whether the client is a browser (it gets the HTML 402 page).
pub fn wants_html(headers: &HeaderMap) -> bool {
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
pub fn requirement_v1(route: &Route, resource_url: &str) -> Option<Value> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
