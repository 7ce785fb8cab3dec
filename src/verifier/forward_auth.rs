//! ForwardAuth mode: `/verify`, asked by Traefik (or nginx `auth_request`) before it forwards a
//! request. The original request is described by `X-Forwarded-{Uri,Host,Proto,Method}` and
//! its headers (the payment header among them).
//!
//! ForwardAuth never sees the upstream's answer, so by default it verifies only and never
//! settles ("charged" = verified, as in the obol-stack verifier). `--settle-before-grant` (or
//! `verifyOnly: false` in the offers file) settles before answering 200.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::gate::{self, Decision, Settlement, X_PAYMENT_PAYER, error_json};
use super::routes::Lookup;
use crate::offers::path_of;

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// `* /verify`.
pub async fn handle(State(app): State<Arc<AppState>>, req: Request) -> Response {
    // The request's own headers, borrowed: the `HeaderMap` extractor would clone them all.
    let headers = req.headers();
    let Some(uri) = header_str(headers, "x-forwarded-uri") else {
        return error_json(
            StatusCode::FORBIDDEN,
            "forbidden: missing forwarded URI",
            "missing_forwarded_uri",
            Some("/verify is a ForwardAuth endpoint: the proxy must send X-Forwarded-Uri"),
            Some(false),
            None,
        );
    };
    let table = app.table.load_full();
    if !table.loaded {
        // Fail closed: before the first load nothing is known to be free.
        return error_json(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: routes not loaded",
            "not_ready",
            None,
            Some(true),
            None,
        );
    }
    let live = match table.lookup(path_of(uri)) {
        Lookup::Route(live) => Arc::clone(live),
        // A broken offer: fail closed.
        Lookup::Unavailable(u) => return u.response(),
        // Not a paid route: free.
        Lookup::None => return StatusCode::OK.into_response(),
    };
    if live.route.paused {
        return error_json(
            StatusCode::NOT_FOUND,
            "offer paused",
            "offer_paused",
            Some("the seller paused this offer; nothing was charged"),
            Some(false),
            None,
        );
    }
    let host = header_str(headers, "x-forwarded-host")
        .or_else(|| header_str(headers, "host"))
        .unwrap_or("localhost");
    let proto = match header_str(headers, "x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    let resource_url = format!("{proto}://{host}{uri}");
    let paid = match gate::evaluate(&app.replay, &table, &live, headers, &resource_url).await {
        Decision::Refused(r) => return r,
        Decision::Paid(p) => p,
    };
    let payer = paid.payer;
    let mut resp = StatusCode::OK.into_response();
    if table.settle_before_grant {
        match gate::settle(&table, *paid).await {
            Settlement::Settled(receipt) => {
                for (k, v) in gate::receipt_headers(&receipt) {
                    resp.headers_mut().insert(k, v);
                }
            }
            Settlement::Failed(r) => return r,
        }
    } else {
        // Verify-only: the payment is used (held until validBefore) and counted as charged.
        let gate::Paid { claim, .. } = *paid;
        claim.consume();
        live.series.charged(live.route.amount);
    }
    let h = resp.headers_mut();
    if let Some(auth) = &live.route.upstream_auth
        && let Ok(v) = HeaderValue::from_str(auth.expose())
    {
        h.insert(header::AUTHORIZATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&payer.to_checksum(None)) {
        h.insert(X_PAYMENT_PAYER, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
